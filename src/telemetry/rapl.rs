//! The CPU's energy counters through Linux powercap (RAPL, `/sys/class/powercap`): one
//! counter per package, read at a window's two ends, wrap-around handled.

use std::path::{Path, PathBuf};

/// Where Linux exposes powercap zones.
pub const POWERCAP: &str = "/sys/class/powercap";

/// The package-level RAPL zones of a host.
#[derive(Debug, Clone)]
pub struct Rapl {
    zones: Vec<Zone>,
}

#[derive(Debug, Clone)]
struct Zone {
    energy: PathBuf,
    /// The counter wraps to 0 past this many microjoules.
    range_uj: u64,
}

impl Rapl {
    /// The package zones under `root` (`intel-rapl:N`, not their `:N:M` subzones, which
    /// the package already counts); why none can be read when none can.
    pub fn open(root: &Path) -> Result<Rapl, String> {
        let entries = std::fs::read_dir(root).map_err(|e| format!("no {}: {e}", root.display()))?;
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("rapl:") && n.matches(':').count() == 1)
            .collect();
        names.sort();
        if names.is_empty() {
            return Err(format!("{} has no RAPL package zone", root.display()));
        }
        let mut zones = Vec::new();
        for name in names {
            let dir = root.join(&name);
            let energy = dir.join("energy_uj");
            read_uj(&energy)?;
            let range_uj = read_uj(&dir.join("max_energy_range_uj")).unwrap_or(u64::MAX);
            zones.push(Zone { energy, range_uj });
        }
        Ok(Rapl { zones })
    }

    /// Every zone's counter, in microjoules.
    pub fn read(&self) -> Result<Vec<u64>, String> {
        self.zones.iter().map(|z| read_uj(&z.energy)).collect()
    }

    /// Joules spent between two readings, counting each counter's wrap (once at most: RAPL
    /// ranges last minutes to hours at package power).
    pub fn joules_between(&self, start: &[u64], end: &[u64]) -> f64 {
        self.zones
            .iter()
            .zip(start.iter().zip(end))
            .map(|(z, (&a, &b))| {
                let uj = if b >= a {
                    b - a
                } else {
                    z.range_uj.saturating_sub(a).saturating_add(b)
                };
                uj as f64 / 1e6
            })
            .sum()
    }
}

/// One counter file (a number; root-only on kernels since 5.10 unless the admin opened it).
fn read_uj(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.trim().parse().map_err(|_| {
        format!(
            "{} holds `{:.40}`, not a counter",
            path.display(),
            text.trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(root: &Path, name: &str, uj: u64, range: u64) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("energy_uj"), format!("{uj}\n")).unwrap();
        std::fs::write(dir.join("max_energy_range_uj"), format!("{range}\n")).unwrap();
    }

    #[test]
    fn package_counters_sum_and_wrap() {
        let root = tempfile::tempdir().unwrap();
        zone(root.path(), "intel-rapl:0", 1_000_000, 10_000_000);
        zone(root.path(), "intel-rapl:1", 9_500_000, 10_000_000);
        zone(root.path(), "intel-rapl:0:0", 5, 10); // a subzone, counted by its package
        let rapl = Rapl::open(root.path()).unwrap();
        let start = rapl.read().unwrap();
        assert_eq!(start, [1_000_000, 9_500_000]);
        zone(root.path(), "intel-rapl:0", 3_500_000, 10_000_000);
        zone(root.path(), "intel-rapl:1", 500_000, 10_000_000); // wrapped
        let end = rapl.read().unwrap();
        let joules = rapl.joules_between(&start, &end);
        assert!((joules - (2.5 + 1.0)).abs() < 1e-9, "{joules}");
    }

    #[test]
    fn a_host_without_rapl_says_why() {
        let root = tempfile::tempdir().unwrap();
        assert!(
            Rapl::open(root.path())
                .unwrap_err()
                .contains("no RAPL package zone")
        );
        assert!(
            Rapl::open(&root.path().join("absent"))
                .unwrap_err()
                .starts_with("no ")
        );
        zone(root.path(), "intel-rapl:0", 1, 10);
        std::fs::write(root.path().join("intel-rapl:0/energy_uj"), "garbage").unwrap();
        assert!(
            Rapl::open(root.path())
                .unwrap_err()
                .contains("not a counter")
        );
    }
}
