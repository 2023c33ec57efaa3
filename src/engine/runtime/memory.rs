//! An engine's memory use: GPU memory through nvidia-smi when there is a GPU, otherwise the
//! container's stats, the native process group's resident memory, or (for the in-process
//! simulator) kitt's own.

use serde::Serialize;

use super::Handle;

/// One reading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    pub bytes: u64,
    pub source: Source,
}

/// Where a reading comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Used memory summed over every GPU nvidia-smi lists.
    Gpu,
    /// The container's memory (usage less inactive page cache).
    Container,
    /// Resident memory of the engine's process group.
    ProcessGroup,
    /// kitt's own resident memory: the simulator serves from inside kitt.
    KittProcess,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::Gpu => "GPU memory used (nvidia-smi, all GPUs)",
            Source::Container => "container memory (docker stats)",
            Source::ProcessGroup => "resident memory of the engine's process group",
            Source::KittProcess => {
                "resident memory of kitt's own process (the simulator runs inside it)"
            }
        }
    }
}

/// Reads the engine's memory now.
pub async fn sample(handle: &Handle) -> Result<Sample, String> {
    if let Some(bytes) = gpu_used_bytes().await {
        return Ok(Sample {
            bytes,
            source: Source::Gpu,
        });
    }
    match handle {
        Handle::Docker(c) => Ok(Sample {
            bytes: c.memory_bytes().await?,
            source: Source::Container,
        }),
        Handle::Native(p) => Ok(Sample {
            bytes: group_rss(p.pid())?,
            source: Source::ProcessGroup,
        }),
        Handle::Plugin(p) => Ok(Sample {
            bytes: group_rss(p.pid())?,
            source: Source::ProcessGroup,
        }),
        Handle::Simulator(_) => Ok(Sample {
            bytes: rss_of("self")?,
            source: Source::KittProcess,
        }),
        Handle::External => Err(
            "an external engine runs elsewhere and this machine has no GPU to read: kitt cannot see its memory"
                .into(),
        ),
    }
}

/// GPU memory used over all GPUs, when nvidia-smi runs and lists one.
async fn gpu_used_bytes() -> Option<u64> {
    let out = tokio::process::Command::new("nvidia-smi")
        .args(["--query-gpu=memory.used", "--format=csv,noheader,nounits"])
        .output()
        .await
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_nvidia_smi_used(&String::from_utf8_lossy(&out.stdout))
}

/// Sums the MiB figures of `nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits`.
pub fn parse_nvidia_smi_used(text: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut any = false;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mib: u64 = line.parse().ok()?;
        total += mib * 1024 * 1024;
        any = true;
    }
    any.then_some(total)
}

/// Resident memory of `/proc/<pid>`, in bytes.
fn rss_of(pid: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| format!("/proc/{pid}/status has no VmRSS"))
}

/// Resident memory summed over every process in process group `pgid`.
fn group_rss(pgid: i32) -> Result<u64, String> {
    let entries = std::fs::read_dir("/proc").map_err(|e| format!("cannot list /proc: {e}"))?;
    let mut total = 0u64;
    let mut found = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state ppid pgrp ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let pgrp = rest
            .split_whitespace()
            .nth(2)
            .and_then(|p| p.parse::<i32>().ok());
        if pgrp == Some(pgid)
            && let Ok(bytes) = rss_of(pid)
        {
            total += bytes;
            found = true;
        }
    }
    if found {
        Ok(total)
    } else {
        Err(format!("no process of group {pgid} is running"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_used_memory_sums_over_gpus() {
        assert_eq!(
            parse_nvidia_smi_used("1024\n 2048 \n"),
            Some(3072 * 1024 * 1024)
        );
        assert_eq!(parse_nvidia_smi_used(""), None);
        assert_eq!(parse_nvidia_smi_used("[N/A]\n"), None);
    }

    #[test]
    fn own_resident_memory_is_read() {
        assert!(rss_of("self").unwrap() > 1024 * 1024);
        let pgid = nix::unistd::getpgrp().as_raw();
        assert!(group_rss(pgid).unwrap() >= rss_of("self").unwrap());
    }
}
