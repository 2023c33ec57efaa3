//! Who runs a run: the host, the process id and that process's start time, plus a heartbeat
//! the owner refreshes, so a run whose process died reads as abandoned, not running.

use std::time::Duration;

/// How often a running kitt refreshes its run's heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// A heartbeat older than this means the owner on another host is gone.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(60);

/// The process that owns a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub host: String,
    pub pid: i32,
    /// The process's start time in clock ticks since boot (with the pid, one process).
    pub start: u64,
}

impl Owner {
    /// This process.
    pub fn me() -> Owner {
        let pid = std::process::id() as i32;
        Owner {
            host: host(),
            pid,
            start: crate::process::procfs::stat(pid).map_or(0, |s| s.start_ticks),
        }
    }

    /// Whether the owner still runs: on this host, its process is alive; on another, its
    /// heartbeat (Unix seconds) is fresh.
    pub fn alive(&self, heartbeat: Option<f64>, now: f64) -> bool {
        if self.host == host() {
            return crate::process::procfs::alive(self.pid, self.start);
        }
        heartbeat.is_some_and(|h| now - h < HEARTBEAT_STALE.as_secs_f64())
    }
}

impl Owner {
    /// The owner as a label value, `host:pid:start`.
    pub fn label(&self) -> String {
        format!("{}:{}:{}", self.host, self.pid, self.start)
    }

    /// Reads a label written by [`Owner::label`] (or the older `host:pid`, whose start time
    /// is unknown and then not compared).
    pub fn from_label(label: &str) -> Option<Owner> {
        let mut parts = label.rsplitn(3, ':');
        let last = parts.next()?;
        let middle = parts.next()?;
        match parts.next() {
            Some(host) => Some(Owner {
                host: host.to_string(),
                pid: middle.parse().ok()?,
                start: last.parse().ok()?,
            }),
            None => Some(Owner {
                host: middle.to_string(),
                pid: last.parse().ok()?,
                start: 0,
            }),
        }
    }

    /// Whether the owner's process runs, as far as this host can tell: on another host it
    /// cannot, and the owner is taken to be alive.
    pub fn alive_here(&self) -> bool {
        if self.host != host() {
            return true;
        }
        match self.start {
            0 => crate::process::procfs::stat(self.pid).is_some(),
            start => crate::process::procfs::alive(self.pid, start),
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} on {}", self.pid, self.host)
    }
}

/// This machine's host name.
pub fn host() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_old_ones_read() {
        let me = Owner::me();
        assert_eq!(Owner::from_label(&me.label()), Some(me.clone()));
        assert!(me.alive_here());
        let old = Owner::from_label("box:42").unwrap();
        assert_eq!((old.host.as_str(), old.pid, old.start), ("box", 42, 0));
        assert_eq!(Owner::from_label(""), None);
        let gone = Owner {
            start: me.start + 1,
            ..me
        };
        assert!(!gone.alive_here());
    }
}
