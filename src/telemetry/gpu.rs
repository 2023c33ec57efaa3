//! NVIDIA GPU readings: NVML through the driver's own library, loaded at run time (no
//! build-time dependency), else `nvidia-smi`'s CSV; which of the host's GPUs an engine uses.

use std::process::Command;
use std::time::Duration;

use crate::suite::model::GpuRequest;

/// One GPU at one moment; `None` where the GPU or the source cannot tell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuReading {
    pub power_w: Option<f64>,
    /// The driver's energy counter since it loaded (Volta and later), in joules.
    pub energy_j: Option<f64>,
    pub utilization_pct: Option<f64>,
    pub memory_used_mib: Option<f64>,
    pub sm_clock_mhz: Option<f64>,
    pub temperature_c: Option<f64>,
    /// Whether a clock-limiting reason other than idling was active (power cap, thermal,
    /// hardware slowdown, ...).
    pub throttled: Option<bool>,
}

/// A source of GPU readings: NVML, `nvidia-smi`, or a test's own.
pub trait GpuSource: Send + Sync {
    /// Which source, for the result's notes.
    fn name(&self) -> &'static str;
    /// The UUIDs of the host's GPUs, by index.
    fn uuids(&self) -> Result<Vec<String>, String>;
    /// Readings of the GPUs at `indices`, in that order.
    fn read(&self, indices: &[u32]) -> Result<Vec<GpuReading>, String>;
}

/// Opens NVML, else `nvidia-smi`; why neither works when none does.
pub fn open() -> Result<Box<dyn GpuSource>, String> {
    let nvml = match nvml() {
        Ok(source) => return Ok(source),
        Err(e) => e,
    };
    nvidia_smi().map_err(|smi| format!("no NVIDIA driver: NVML: {nvml}; nvidia-smi: {smi}"))
}

/// NVML alone (`libnvidia-ml.so`, loaded now).
pub fn nvml() -> Result<Box<dyn GpuSource>, String> {
    nvml_wrapper::Nvml::init()
        .map(|n| Box::new(Nvml(n)) as Box<dyn GpuSource>)
        .map_err(|e| e.to_string())
}

/// `nvidia-smi` alone, once it answered a query.
pub fn nvidia_smi() -> Result<Box<dyn GpuSource>, String> {
    NvidiaSmi::probe().map(|s| Box::new(s) as Box<dyn GpuSource>)
}

/// NVML, the driver's management library.
struct Nvml(nvml_wrapper::Nvml);

impl GpuSource for Nvml {
    fn name(&self) -> &'static str {
        "NVML"
    }

    fn uuids(&self) -> Result<Vec<String>, String> {
        let n = self.0.device_count().map_err(|e| e.to_string())?;
        (0..n)
            .map(|i| {
                self.0
                    .device_by_index(i)
                    .and_then(|d| d.uuid())
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    fn read(&self, indices: &[u32]) -> Result<Vec<GpuReading>, String> {
        use nvml_wrapper::bitmasks::device::ThrottleReasons;
        use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
        indices
            .iter()
            .map(|&i| {
                let d = self
                    .0
                    .device_by_index(i)
                    .map_err(|e| format!("GPU {i}: {e}"))?;
                Ok(GpuReading {
                    power_w: d.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
                    energy_j: d
                        .total_energy_consumption()
                        .ok()
                        .map(|mj| mj as f64 / 1000.0),
                    utilization_pct: d.utilization_rates().ok().map(|u| f64::from(u.gpu)),
                    memory_used_mib: d
                        .memory_info()
                        .ok()
                        .map(|m| m.used as f64 / (1024.0 * 1024.0)),
                    sm_clock_mhz: d.clock_info(Clock::SM).ok().map(f64::from),
                    temperature_c: d.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
                    throttled: d
                        .current_throttle_reasons()
                        .ok()
                        .map(|r| !(r - ThrottleReasons::GPU_IDLE).is_empty()),
                })
            })
            .collect()
    }
}

/// The `nvidia-smi` fields read, in the CSV's order.
const SMI_FIELDS: &str = "index,uuid,power.draw,utilization.gpu,memory.used,clocks.sm,temperature.gpu,clocks_throttle_reasons.active";
/// Longest wait for one `nvidia-smi` call.
const SMI_TIMEOUT: Duration = Duration::from_secs(5);

/// `nvidia-smi --query-gpu`: no energy counter, so energy comes from power over time.
struct NvidiaSmi;

impl NvidiaSmi {
    fn probe() -> Result<NvidiaSmi, String> {
        run_smi().map(|_| NvidiaSmi)
    }

    fn rows(&self) -> Result<Vec<(u32, String, GpuReading)>, String> {
        parse_smi(&run_smi()?)
    }
}

/// One bounded `nvidia-smi` query.
fn run_smi() -> Result<String, String> {
    let mut child = Command::new("nvidia-smi")
        .arg(format!("--query-gpu={SMI_FIELDS}"))
        .arg("--format=csv,noheader,nounits")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let until = std::time::Instant::now() + SMI_TIMEOUT;
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(_) => break,
            None if std::time::Instant::now() >= until => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer in {SMI_TIMEOUT:?}"));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .trim()
            .chars()
            .take(300)
            .collect());
    }
    // A few GPUs' lines: anything past 64 KiB is not nvidia-smi's answer.
    let text = String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(64 * 1024)]);
    Ok(text.into_owned())
}

impl GpuSource for NvidiaSmi {
    fn name(&self) -> &'static str {
        "nvidia-smi"
    }

    fn uuids(&self) -> Result<Vec<String>, String> {
        Ok(self.rows()?.into_iter().map(|(_, uuid, _)| uuid).collect())
    }

    fn read(&self, indices: &[u32]) -> Result<Vec<GpuReading>, String> {
        let rows = self.rows()?;
        indices
            .iter()
            .map(|i| {
                rows.iter()
                    .find(|(index, _, _)| index == i)
                    .map(|(_, _, r)| r.clone())
                    .ok_or_else(|| format!("nvidia-smi lists no GPU {i}"))
            })
            .collect()
    }
}

/// `nvidia-smi --query-gpu=SMI_FIELDS --format=csv,noheader,nounits` lines as (index, UUID,
/// reading); `[N/A]` and `[Not Supported]` read as unknown.
pub fn parse_smi(text: &str) -> Result<Vec<(u32, String, GpuReading)>, String> {
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [
            index,
            uuid,
            power,
            util,
            memory,
            clock,
            temperature,
            throttle,
        ] = fields[..]
        else {
            return Err(format!(
                "nvidia-smi line {}: {} fields, not 8: {line:.200}",
                n + 1,
                fields.len()
            ));
        };
        let number = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
        let index = index
            .parse()
            .map_err(|_| format!("nvidia-smi line {}: index `{index:.40}`", n + 1))?;
        let throttled = u64::from_str_radix(throttle.trim_start_matches("0x"), 16)
            .ok()
            // 0x1 is GPU idle; the other bits limit clocks under load.
            .map(|bits| bits & !0x1 != 0);
        out.push((
            index,
            uuid.to_string(),
            GpuReading {
                power_w: number(power),
                energy_j: None,
                utilization_pct: number(util),
                memory_used_mib: number(memory),
                sm_clock_mhz: number(clock),
                temperature_c: number(temperature),
                throttled,
            },
        ));
    }
    Ok(out)
}

/// The host GPUs (indices) an engine uses: those `request` names (every one, the first N,
/// these ids), taken from a `CUDA_VISIBLE_DEVICES` list (indices or UUID prefixes) when one
/// applies. `uuids` are the host's GPUs by index.
pub fn select(
    request: &GpuRequest,
    visible: Option<&str>,
    uuids: &[String],
) -> Result<Vec<u32>, String> {
    let host = uuids.len() as u32;
    let pool: Vec<u32> = match visible.map(str::trim).filter(|v| !v.is_empty()) {
        None => (0..host).collect(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .map(|item| match item.parse::<u32>() {
                Ok(i) if i < host => Ok(i),
                Ok(i) => Err(format!(
                    "CUDA_VISIBLE_DEVICES names GPU {i}; the host has {host}"
                )),
                Err(_) => uuids
                    .iter()
                    .position(|u| {
                        u.starts_with(item) || u.trim_start_matches("GPU-").starts_with(item)
                    })
                    .map(|i| i as u32)
                    .ok_or_else(|| {
                        format!("CUDA_VISIBLE_DEVICES names `{item:.60}`, no GPU of this host")
                    }),
            })
            .collect::<Result<_, _>>()?,
    };
    let chosen: Vec<u32> = match request {
        GpuRequest::All(_) => pool,
        GpuRequest::Count(n) => pool.into_iter().take(*n as usize).collect(),
        GpuRequest::Ids(ids) => {
            if let Some(bad) = ids.iter().find(|i| **i >= host) {
                return Err(format!(
                    "resources.gpus names GPU {bad}; the host has {host}"
                ));
            }
            ids.clone()
        }
    };
    if chosen.is_empty() {
        return Err("the host has no NVIDIA GPU".into());
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::model::AllGpus;

    #[test]
    fn nvidia_smi_csv_parses_with_unknowns_and_throttle_bits() {
        let text = "0, GPU-aaaa-1111, 312.45, 97, 70123, 1980, 66, 0x0000000000000004\n\
                    1, GPU-bbbb-2222, [N/A], 0, 512, 345, 31, 0x0000000000000001\n";
        let rows = parse_smi(text).unwrap();
        assert_eq!(rows.len(), 2);
        let (i, uuid, r) = &rows[0];
        assert_eq!((*i, uuid.as_str()), (0, "GPU-aaaa-1111"));
        assert_eq!(r.power_w, Some(312.45));
        assert_eq!(r.utilization_pct, Some(97.0));
        assert_eq!(r.memory_used_mib, Some(70123.0));
        assert_eq!(r.sm_clock_mhz, Some(1980.0));
        assert_eq!(r.temperature_c, Some(66.0));
        assert_eq!(r.throttled, Some(true), "0x4 is a power cap");
        assert_eq!(r.energy_j, None, "nvidia-smi has no energy counter");
        assert_eq!(rows[1].2.power_w, None);
        assert_eq!(rows[1].2.throttled, Some(false), "idle is not throttling");
        let bad = parse_smi("0, GPU-x, 1\n").unwrap_err();
        assert!(bad.contains("line 1") && bad.contains("3 fields"), "{bad}");
    }

    #[test]
    fn an_engine_uses_the_gpus_asked_for_within_those_visible() {
        let uuids: Vec<String> = ["GPU-aa11", "GPU-bb22", "GPU-cc33", "GPU-dd44"]
            .map(String::from)
            .to_vec();
        let all = GpuRequest::All(AllGpus::All);
        assert_eq!(select(&all, None, &uuids).unwrap(), [0, 1, 2, 3]);
        assert_eq!(select(&GpuRequest::Count(2), None, &uuids).unwrap(), [0, 1]);
        assert_eq!(
            select(&GpuRequest::Ids(vec![3, 1]), None, &uuids).unwrap(),
            [3, 1]
        );
        assert_eq!(select(&all, Some("2,0"), &uuids).unwrap(), [2, 0]);
        assert_eq!(
            select(&GpuRequest::Count(1), Some("GPU-cc33"), &uuids).unwrap(),
            [2]
        );
        assert_eq!(select(&all, Some("dd"), &uuids).unwrap(), [3]);
        assert!(
            select(&all, Some("7"), &uuids)
                .unwrap_err()
                .contains("has 4")
        );
        assert!(
            select(&all, Some("GPU-zz"), &uuids)
                .unwrap_err()
                .contains("no GPU of this host")
        );
        assert!(
            select(&GpuRequest::Ids(vec![9]), None, &uuids)
                .unwrap_err()
                .contains("GPU 9")
        );
        assert!(
            select(&all, None, &[])
                .unwrap_err()
                .contains("no NVIDIA GPU")
        );
    }
}
