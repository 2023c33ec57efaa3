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
