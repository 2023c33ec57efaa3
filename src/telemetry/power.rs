//! Power over a leg's window: the engine's GPUs (their energy counters at the window's two
//! ends, power and state sampled between) or, for a CPU engine or a host without a GPU, the
//! CPU's RAPL package counters; energy per generated token from either.

use std::path::Path;

use super::gpu::{self, GpuReading, GpuSource};
use super::rapl::Rapl;
use super::samples::Thinned;
use super::{Figure, Series};
use crate::engine::devices::Devices;
use crate::registry::Direction;

/// What a leg's power is read from.
pub enum Meter {
    Gpus {
        source: Box<dyn GpuSource>,
        indices: Vec<u32>,
    },
    Cpu(Rapl),
}

/// One reading of a meter.
#[derive(Debug, Clone)]
pub enum Reading {
    Gpus(Vec<GpuReading>),
    /// Each package's counter, in microjoules.
    Cpu(Vec<u64>),
}

impl Meter {
    /// The meter for an engine on `devices`: its GPUs through `gpus` (NVML, else
    /// `nvidia-smi`), else RAPL under `powercap`; why there is none when neither reads.
    pub fn open(
        devices: &Devices,
        gpus: impl FnOnce() -> Result<Box<dyn GpuSource>, String>,
        powercap: &Path,
    ) -> Result<Meter, String> {
        let (request, visible) = match devices {
            Devices::Elsewhere(why) => return Err(why.clone()),
            Devices::Local { gpus, visible } => (gpus, visible),
        };
        let gpu_error = match request {
            None => "the engine runs on the CPU".to_string(),
            Some(request) => match gpus().and_then(|source| {
                let indices = gpu::select(request, visible.as_deref(), &source.uuids()?)?;
                Ok((source, indices))
            }) {
                Ok((source, indices)) => return Ok(Meter::Gpus { source, indices }),
                Err(e) => e,
            },
        };
        match Rapl::open(powercap) {
            Ok(rapl) => Ok(Meter::Cpu(rapl)),
            Err(rapl) => Err(format!("GPU: {gpu_error}; CPU RAPL: {rapl}")),
        }
    }

    /// A reading now (blocking: NVML calls, or a `nvidia-smi` process of at most 5 s).
    pub fn read(&self) -> Result<Reading, String> {
        match self {
            Meter::Gpus { source, indices } => source.read(indices).map(Reading::Gpus),
            Meter::Cpu(rapl) => rapl.read().map(Reading::Cpu),
        }
    }

    /// The source, for the result's notes.
    pub fn describe(&self) -> String {
        match self {
            Meter::Gpus { source, indices } => {
                let list: Vec<String> = indices.iter().map(u32::to_string).collect();
                format!("{}, GPU {}", source.name(), list.join(","))
            }
            Meter::Cpu(_) => "RAPL (CPU packages)".into(),
        }
    }
}

/// Sampled power and GPU state over a window.
#[derive(Debug, Default)]
pub struct PowerLog {
    power: Thinned,
    utilization: Thinned,
    power_max: Option<f64>,
    utilization_sum: f64,
    utilization_n: u64,
    clock_sum: f64,
    clock_n: u64,
    memory_max: Option<f64>,
    temperature_max: Option<f64>,
    throttled: u64,
    state_samples: u64,
    /// The previous CPU reading, for power between two samples.
    last_cpu: Option<(f64, Vec<u64>)>,
    pub failures: u64,
    pub first_error: Option<String>,
}

fn max(a: Option<f64>, b: f64) -> Option<f64> {
    Some(a.map_or(b, |a| a.max(b)))
}

impl PowerLog {
    /// Adds the reading taken at `t` seconds into the window.
    pub fn add(&mut self, meter: &Meter, t: f64, reading: Result<Reading, String>) {
        match reading {
            Err(e) => {
                self.failures += 1;
                self.first_error.get_or_insert(e);
            }
            Ok(Reading::Gpus(gpus)) => {
                let powers: Vec<f64> = gpus.iter().filter_map(|g| g.power_w).collect();
                if powers.len() == gpus.len() && !gpus.is_empty() {
                    let total: f64 = powers.iter().sum();
                    self.power.push(t, total);
                    self.power_max = max(self.power_max, total);
                }
                let utils: Vec<f64> = gpus.iter().filter_map(|g| g.utilization_pct).collect();
                if !utils.is_empty() {
                    let mean = utils.iter().sum::<f64>() / utils.len() as f64;
                    self.utilization.push(t, mean);
                    self.utilization_sum += mean;
                    self.utilization_n += 1;
                }
                for g in &gpus {
                    if let Some(c) = g.sm_clock_mhz {
                        self.clock_sum += c;
                        self.clock_n += 1;
                    }
                    if let Some(m) = g.memory_used_mib {
                        self.memory_max = max(self.memory_max, m);
                    }
                    if let Some(c) = g.temperature_c {
                        self.temperature_max = max(self.temperature_max, c);
                    }
                }
                if gpus.iter().any(|g| g.throttled.is_some()) {
                    self.state_samples += 1;
                    if gpus.iter().any(|g| g.throttled == Some(true)) {
                        self.throttled += 1;
                    }
                }
            }
            Ok(Reading::Cpu(counters)) => {
                if let (Meter::Cpu(rapl), Some((t0, before))) = (meter, &self.last_cpu)
                    && t > *t0
                {
                    let watts = rapl.joules_between(before, &counters) / (t - t0);
                    self.power.push(t, watts);
                    self.power_max = max(self.power_max, watts);
                }
                self.last_cpu = Some((t, counters));
            }
        }
    }
}

/// Every figure power telemetry may report (name, unit, whether higher is better).
pub const FIGURES: [(&str, &str, bool); 13] = [
    ("gpu_energy_j", "J", false),
    ("gpu_power_mean_w", "W", false),
    ("gpu_power_max_w", "W", false),
    ("gpu_utilization_mean_pct", "%", true),
    ("gpu_memory_used_max_mib", "MiB", false),
    ("gpu_sm_clock_mean_mhz", "MHz", true),
    ("gpu_temperature_max_c", "°C", false),
    ("gpu_throttled_sample_ratio", "ratio", false),
    ("cpu_energy_j", "J", false),
    ("cpu_power_mean_w", "W", false),
    ("energy_j", "J", false),
    ("energy_per_output_token_j", "J/token", false),
    ("output_tokens_per_joule", "tokens/J", true),
];

/// A window's power figures and series, and how its energy was measured.
pub struct PowerSummary {
    pub figures: Vec<Figure>,
    pub series: Vec<Series>,
    pub energy_source: Option<String>,
}

/// Sums up a window of `seconds` between readings `start` and `end`, in which the client
/// received `output_tokens`.
pub fn summarize(
    meter: &Meter,
    start: Option<&Reading>,
    end: Option<&Reading>,
    log: PowerLog,
    seconds: f64,
    output_tokens: u64,
) -> PowerSummary {
    let mut figures = Vec::new();
    let mut set = |name: &str, value: f64| {
        if let Some((_, unit, higher)) = FIGURES.iter().find(|(n, _, _)| *n == name)
            && value.is_finite()
        {
            figures.push(Figure {
                name: name.to_string(),
                value,
                unit,
                direction: if *higher {
                    Direction::Higher
                } else {
                    Direction::Lower
                },
            });
        }
    };
    let mut energy_source = None;
    let energy = match (meter, start, end) {
        (Meter::Gpus { .. }, Some(Reading::Gpus(a)), Some(Reading::Gpus(b))) => {
            let counted: Option<f64> = a
                .iter()
                .zip(b)
                .map(|(a, b)| Some(b.energy_j? - a.energy_j?))
                .sum();
            match counted {
                Some(j) if j >= 0.0 && !a.is_empty() => {
                    energy_source = Some("the GPUs' energy counters".to_string());
                    Some(j)
                }
                _ => {
                    energy_source =
                        Some("sampled GPU power × time (no energy counter)".to_string());
                    trapezoid(&log.power.points)
                }
            }
        }
        (Meter::Cpu(rapl), Some(Reading::Cpu(a)), Some(Reading::Cpu(b))) => {
            energy_source = Some("the CPU packages' RAPL counters".to_string());
            Some(rapl.joules_between(a, b))
        }
        _ => None,
    };
    let gpu = matches!(meter, Meter::Gpus { .. });
    if let Some(j) = energy {
        set(if gpu { "gpu_energy_j" } else { "cpu_energy_j" }, j);
        if seconds > 0.0 {
            set(
                if gpu {
                    "gpu_power_mean_w"
                } else {
                    "cpu_power_mean_w"
                },
                j / seconds,
            );
        }
        set("energy_j", j);
        if output_tokens > 0 && j > 0.0 {
            set("energy_per_output_token_j", j / output_tokens as f64);
            set("output_tokens_per_joule", output_tokens as f64 / j);
        }
    }
    if gpu {
        if let Some(p) = log.power_max {
            set("gpu_power_max_w", p);
        }
        if log.utilization_n > 0 {
            set(
                "gpu_utilization_mean_pct",
                log.utilization_sum / log.utilization_n as f64,
            );
        }
        if let Some(m) = log.memory_max {
            set("gpu_memory_used_max_mib", m);
        }
        if log.clock_n > 0 {
            set("gpu_sm_clock_mean_mhz", log.clock_sum / log.clock_n as f64);
        }
        if let Some(t) = log.temperature_max {
            set("gpu_temperature_max_c", t);
        }
        if log.state_samples > 0 {
            set(
                "gpu_throttled_sample_ratio",
                log.throttled as f64 / log.state_samples as f64,
            );
        }
    }
    let mut series = Vec::new();
    if !log.power.points.is_empty() {
        series.push(Series {
            name: if gpu { "gpu_power_w" } else { "cpu_power_w" }.to_string(),
            unit: "W",
            points: log.power.points,
        });
    }
    if !log.utilization.points.is_empty() {
        series.push(Series {
            name: "gpu_utilization_pct".to_string(),
            unit: "%",
            points: log.utilization.points,
        });
    }
    PowerSummary {
        figures,
        series,
        energy_source,
    }
}

/// The area under (t, watts) points, in joules; none from fewer than two points.
fn trapezoid(points: &[(f64, f64)]) -> Option<f64> {
    (points.len() >= 2).then(|| {
        points
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::model::{AllGpus, GpuRequest};
    use std::sync::Mutex;

    /// A GPU whose readings a test scripts: each `read` takes the next.
    struct Scripted {
        uuids: Vec<String>,
        readings: Mutex<Vec<Vec<GpuReading>>>,
    }

    impl GpuSource for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn uuids(&self) -> Result<Vec<String>, String> {
            Ok(self.uuids.clone())
        }
        fn read(&self, indices: &[u32]) -> Result<Vec<GpuReading>, String> {
            let mut all = self.readings.lock().unwrap();
            if all.is_empty() {
                return Err("driver gone".into());
            }
            let next = all.remove(0);
            Ok(indices.iter().map(|i| next[*i as usize].clone()).collect())
        }
    }

    fn gpu(power: f64, energy: Option<f64>, util: f64, throttled: bool) -> GpuReading {
        GpuReading {
            power_w: Some(power),
            energy_j: energy,
            utilization_pct: Some(util),
            memory_used_mib: Some(1000.0 + util),
            sm_clock_mhz: Some(1500.0),
            temperature_c: Some(40.0 + util / 10.0),
            throttled: Some(throttled),
        }
    }

    fn two_gpus(script: Vec<Vec<GpuReading>>) -> Box<dyn GpuSource> {
        Box::new(Scripted {
            uuids: vec!["GPU-a".into(), "GPU-b".into(), "GPU-c".into()],
            readings: Mutex::new(script),
        })
    }

    #[test]
    fn gpu_energy_comes_from_the_counter_and_gives_energy_per_token() {
        let script = vec![
            // start, two samples, end; GPU 2 is not the engine's and must not count.
            vec![
                gpu(100.0, Some(1000.0), 0.0, false),
                gpu(100.0, Some(50.0), 0.0, false),
                gpu(900.0, Some(0.0), 0.0, false),
            ],
            vec![
                gpu(300.0, None, 80.0, false),
                gpu(200.0, None, 60.0, true),
                gpu(900.0, None, 0.0, true),
            ],
            vec![
                gpu(310.0, None, 90.0, false),
                gpu(190.0, None, 70.0, false),
                gpu(900.0, None, 0.0, true),
            ],
            vec![
                gpu(120.0, Some(2500.0), 10.0, false),
                gpu(110.0, Some(1050.0), 5.0, false),
                gpu(900.0, Some(9e9), 0.0, false),
            ],
        ];
        let devices = Devices::Local {
            gpus: Some(GpuRequest::Count(2)),
            visible: None,
        };
        let meter = Meter::open(&devices, || Ok(two_gpus(script)), Path::new("/absent")).unwrap();
        assert_eq!(meter.describe(), "scripted, GPU 0,1");
        let start = meter.read().unwrap();
        let mut log = PowerLog::default();
        log.add(&meter, 1.0, meter.read());
        log.add(&meter, 2.0, meter.read());
        let end = meter.read().unwrap();
        let s = summarize(&meter, Some(&start), Some(&end), log, 10.0, 500);
        let value = |name: &str| s.figures.iter().find(|f| f.name == name).map(|f| f.value);
        // (2500 - 1000) + (1050 - 50) J over 10 s; 500 tokens.
        assert_eq!(value("gpu_energy_j"), Some(2500.0));
        assert_eq!(value("energy_j"), Some(2500.0));
        assert_eq!(value("gpu_power_mean_w"), Some(250.0));
        assert_eq!(value("energy_per_output_token_j"), Some(5.0));
        assert_eq!(value("output_tokens_per_joule"), Some(0.2));
        assert_eq!(value("gpu_power_max_w"), Some(500.0));
        assert_eq!(value("gpu_utilization_mean_pct"), Some(75.0));
        assert_eq!(value("gpu_memory_used_max_mib"), Some(1090.0));
        assert_eq!(value("gpu_temperature_max_c"), Some(49.0));
        assert_eq!(value("gpu_throttled_sample_ratio"), Some(0.5));
        assert_eq!(
            s.energy_source.as_deref(),
            Some("the GPUs' energy counters")
        );
        let power = s.series.iter().find(|x| x.name == "gpu_power_w").unwrap();
        assert_eq!(power.points, [(1.0, 500.0), (2.0, 500.0)]);
        assert!(value("cpu_energy_j").is_none());
    }

    #[test]
    fn without_an_energy_counter_energy_is_power_over_time() {
        let plain = |p: f64| gpu(p, None, 50.0, false);
        let script = vec![
            vec![plain(100.0)],
            vec![plain(100.0)],
            vec![plain(300.0)],
            vec![plain(0.0)],
        ];
        let source = Box::new(Scripted {
            uuids: vec!["GPU-a".into()],
            readings: Mutex::new(script),
        });
        let devices = Devices::Local {
            gpus: Some(GpuRequest::All(AllGpus::All)),
            visible: None,
        };
        let meter = Meter::open(&devices, || Ok(source), Path::new("/absent")).unwrap();
        let start = meter.read().unwrap();
        let mut log = PowerLog::default();
        log.add(&meter, 0.0, meter.read());
        log.add(&meter, 2.0, meter.read());
        log.add(&meter, 3.0, Err("a late answer".into()));
        assert_eq!(
            (log.failures, log.first_error.as_deref()),
            (1, Some("a late answer"))
        );
        let end = meter.read().unwrap();
        let s = summarize(&meter, Some(&start), Some(&end), log, 3.0, 10);
        let value = |name: &str| s.figures.iter().find(|f| f.name == name).map(|f| f.value);
        // The samples (0 s, 100 W) and (2 s, 300 W): 400 J, not a counter's figure.
        assert_eq!(value("gpu_energy_j"), Some(400.0));
        assert_eq!(value("energy_per_output_token_j"), Some(40.0));
        assert_eq!(
            s.energy_source.as_deref(),
            Some("sampled GPU power × time (no energy counter)")
        );
        // A failed reading at an end: no energy at all, rather than a guess.
        let s = summarize(&meter, Some(&start), None, PowerLog::default(), 3.0, 10);
        assert!(s.figures.iter().all(|f| f.name != "energy_j"));
        assert!(meter.read().is_err(), "the script ran out");
        assert_eq!(trapezoid(&[(0.0, 100.0), (2.0, 300.0)]), Some(400.0));
    }

    #[test]
    fn no_meter_says_why_and_a_cpu_engine_reads_rapl() {
        let far = Devices::Elsewhere("the engine answers at http://10.0.0.1".into());
        let why = Meter::open(&far, || unreachable!(), Path::new("/absent"))
            .err()
            .unwrap();
        assert!(why.contains("10.0.0.1"));
        let gpu_engine = Devices::Local {
            gpus: Some(GpuRequest::All(AllGpus::All)),
            visible: None,
        };
        let why = Meter::open(
            &gpu_engine,
            || Err("no NVIDIA driver".into()),
            Path::new("/absent"),
        )
        .err()
        .unwrap();
        assert!(
            why.starts_with("GPU: no NVIDIA driver; CPU RAPL: no /absent"),
            "{why}"
        );
        let root = tempfile::tempdir().unwrap();
        let zone = root.path().join("intel-rapl:0");
        std::fs::create_dir_all(&zone).unwrap();
        std::fs::write(zone.join("energy_uj"), "1000000").unwrap();
        let cpu = Devices::Local {
            gpus: None,
            visible: None,
        };
        let meter = Meter::open(&cpu, || unreachable!(), root.path()).unwrap();
        let start = meter.read().unwrap();
        let mut log = PowerLog::default();
        log.add(&meter, 0.0, meter.read());
        std::fs::write(zone.join("energy_uj"), "31000000").unwrap();
        log.add(&meter, 1.0, meter.read());
        let end = meter.read().unwrap();
        let s = summarize(&meter, Some(&start), Some(&end), log, 2.0, 60);
        let value = |name: &str| s.figures.iter().find(|f| f.name == name).map(|f| f.value);
        assert_eq!(value("cpu_energy_j"), Some(30.0));
        assert_eq!(value("cpu_power_mean_w"), Some(15.0));
        assert_eq!(value("energy_per_output_token_j"), Some(0.5));
        assert_eq!(s.series[0].name, "cpu_power_w");
        assert_eq!(s.series[0].points, [(1.0, 30.0)]);
    }
}
