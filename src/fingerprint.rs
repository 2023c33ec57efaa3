//! The hardware fingerprint stored with every run: GPUs and driver (nvidia-smi), CPU model
//! and cores, memory, OS and kernel, as a readable summary and a stable short hash.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// What the machine is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fingerprint {
    pub gpus: Vec<Gpu>,
    pub driver: Option<String>,
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub os: String,
    pub kernel: String,
}

/// One GPU as nvidia-smi names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gpu {
    pub name: String,
    pub memory_mib: u64,
}

impl Fingerprint {
    /// Reads this machine.
    pub fn detect() -> Fingerprint {
        let (gpus, driver) = std::process::Command::new("nvidia-smi")
            .args([
                "--query-gpu=name,memory.total,driver_version",
                "--format=csv,noheader,nounits",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| parse_nvidia_smi(&String::from_utf8_lossy(&o.stdout)))
            .unwrap_or_default();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown CPU".to_string(), |(_, v)| v.trim().to_string());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map_or(0.0, |kb| (kb / 1024.0 / 1024.0 * 10.0).round() / 10.0);
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_string())
            .unwrap_or_default();
        Fingerprint {
            gpus,
            driver,
            cpu,
            cores,
            memory_gib,
            os,
            kernel,
        }
    }

    /// One line a person reads.
    pub fn summary(&self) -> String {
        let gpus = if self.gpus.is_empty() {
            "no GPU".to_string()
        } else {
            let mut names: Vec<String> = Vec::new();
            for g in &self.gpus {
                names.push(format!("{} ({} MiB)", g.name, g.memory_mib));
            }
            format!(
                "{} GPU{}: {}, driver {}",
                self.gpus.len(),
                if self.gpus.len() == 1 { "" } else { "s" },
                names.join(", "),
                self.driver.as_deref().unwrap_or("?")
            )
        };
        format!(
            "{gpus}; {} × {}; {} GiB; {}; kernel {}",
            self.cores, self.cpu, self.memory_gib, self.os, self.kernel
        )
    }

    /// A stable short hash of the summary: equal hashes mean the same hardware and software.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.summary().as_bytes());
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// GPUs and the driver from `nvidia-smi --query-gpu=name,memory.total,driver_version
/// --format=csv,noheader,nounits`.
pub fn parse_nvidia_smi(text: &str) -> (Vec<Gpu>, Option<String>) {
    let mut gpus = Vec::new();
    let mut driver = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if let [name, memory, version] = fields.as_slice() {
            gpus.push(Gpu {
                name: name.to_string(),
                memory_mib: memory.parse().unwrap_or(0),
            });
            driver = Some(version.to_string());
        }
    }
    (gpus, driver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_lines_become_gpus_and_a_driver() {
        let (gpus, driver) = parse_nvidia_smi(
            "NVIDIA H100 80GB HBM3, 81559, 550.54.15\nNVIDIA H100 80GB HBM3, 81559, 550.54.15\n",
        );
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].memory_mib, 81559);
        assert_eq!(driver.as_deref(), Some("550.54.15"));
        assert_eq!(parse_nvidia_smi(""), (vec![], None));
    }

    #[test]
    fn the_hash_is_stable_and_follows_the_summary() {
        let a = Fingerprint::detect();
        assert_eq!(a.hash(), Fingerprint::detect().hash());
        assert_eq!(a.hash().len(), 12);
        let mut b = a.clone();
        b.cores += 1;
        assert_ne!(a.hash(), b.hash());
        assert!(a.summary().contains(&a.kernel));
    }
}
