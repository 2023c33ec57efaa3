//! Checks kitt's GPU telemetry on a machine with an NVIDIA GPU (run by
//! `examples/bench/gpu-telemetry.sh`): samples every GPU through NVML and through
//! `nvidia-smi` (kitt's two sources) for a while, then prints, per GPU, NVML's power against
//! nvidia-smi's, and the energy counter's increase against mean power × time, each with
//! PASS/FAIL at 5 %. Exits 1 when a check fails, 2 when a source does not work.

use std::time::{Duration, Instant};

use kitt::telemetry::gpu::{self, GpuReading};

fn main() {
    let mut seconds = 30.0_f64;
    let mut interval_ms = 100_u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().and_then(|v| v.parse::<f64>().ok())) {
            ("--seconds", Some(v)) if v > 0.0 => seconds = v,
            ("--interval-ms", Some(v)) if v >= 10.0 => interval_ms = v as u64,
            _ => {
                kitt::errln!("usage: gpu_probe [--seconds S (30)] [--interval-ms M (100)]");
                std::process::exit(2);
            }
        }
    }
    let nvml = gpu::nvml().unwrap_or_else(|e| fail(&format!("NVML: {e}")));
    let smi = gpu::nvidia_smi().unwrap_or_else(|e| fail(&format!("nvidia-smi: {e}")));
    let uuids = nvml.uuids().unwrap_or_else(|e| fail(&format!("NVML: {e}")));
    let smi_uuids = smi
        .uuids()
        .unwrap_or_else(|e| fail(&format!("nvidia-smi: {e}")));
    kitt::outln!("GPUs (NVML):       {uuids:?}");
    kitt::outln!("GPUs (nvidia-smi): {smi_uuids:?}");
    let mut ok = uuids == smi_uuids;
    if !ok {
        kitt::outln!("FAIL: the two sources list different GPUs");
    }
    let all: Vec<u32> = (0..uuids.len() as u32).collect();
    let started = Instant::now();
    let first = nvml
        .read(&all)
        .unwrap_or_else(|e| fail(&format!("NVML: {e}")));
    // (t, NVML readings, nvidia-smi readings taken right after)
    let mut samples: Vec<(f64, Vec<GpuReading>, Vec<GpuReading>)> = Vec::new();
    while started.elapsed().as_secs_f64() < seconds {
        std::thread::sleep(Duration::from_millis(interval_ms));
        let t = started.elapsed().as_secs_f64();
        let a = nvml
            .read(&all)
            .unwrap_or_else(|e| fail(&format!("NVML: {e}")));
        let b = smi
            .read(&all)
            .unwrap_or_else(|e| fail(&format!("nvidia-smi: {e}")));
        samples.push((t, a, b));
    }
    let last = nvml
        .read(&all)
        .unwrap_or_else(|e| fail(&format!("NVML: {e}")));
    let window = started.elapsed().as_secs_f64();
    kitt::outln!(
        "{} samples over {window:.1} s, every {interval_ms} ms",
        samples.len()
    );
    for (i, uuid) in uuids.iter().enumerate() {
        kitt::outln!("\nGPU {i} ({uuid})");
        let power = |s: &[GpuReading]| s[i].power_w;
        let pairs: Vec<(f64, f64)> = samples
            .iter()
            .filter_map(|(_, a, b)| power(a).zip(power(b)))
            .collect();
        let mean = |v: &mut dyn Iterator<Item = f64>| {
            let v: Vec<f64> = v.collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        match (
            mean(&mut pairs.iter().map(|p| p.0)),
            mean(&mut pairs.iter().map(|p| p.1)),
        ) {
            (Some(n), Some(s)) => {
                let pass = (n - s).abs() <= 0.05 * s.max(1.0);
                ok &= pass;
                kitt::outln!(
                    "  mean power: NVML {n:.1} W, nvidia-smi {s:.1} W ({:+.1} %): {}",
                    (n / s - 1.0) * 100.0,
                    verdict(pass)
                );
            }
            _ => kitt::outln!("  power: not reported by both sources"),
        }
        // Energy counter against the trapezoid of NVML's power samples.
        let points: Vec<(f64, f64)> = samples
            .iter()
            .filter_map(|(t, a, _)| Some((*t, power(a)?)))
            .collect();
        let integrated: f64 = points
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum();
        let span = points.last().map_or(0.0, |l| l.0) - points.first().map_or(0.0, |f| f.0);
        match (first[i].energy_j, last[i].energy_j) {
            (Some(a), Some(b)) if span > 0.0 => {
                // The counter covers the whole window; scale the samples' span to it.
                let counted = b - a;
                let from_power = integrated / span * window;
                let pass = (counted - from_power).abs() <= 0.05 * from_power.max(1.0);
                ok &= pass;
                kitt::outln!(
                    "  energy: counter {counted:.1} J, mean power × time {from_power:.1} J ({:+.1} %): {}",
                    (counted / from_power - 1.0) * 100.0,
                    verdict(pass)
                );
            }
            _ => kitt::outln!(
                "  energy: this GPU has no energy counter (kitt then uses power × time)"
            ),
        }
        let last_smi = samples.last().map(|s| &s.2[i]);
        kitt::outln!(
            "  last NVML reading:       {:?}",
            samples.last().map(|s| &s.1[i])
        );
        kitt::outln!("  last nvidia-smi reading: {last_smi:?}");
    }
    kitt::outln!(
        "\n{}",
        if ok {
            "all checks passed"
        } else {
            "some checks FAILED"
        }
    );
    std::process::exit(if ok { 0 } else { 1 });
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

fn fail(why: &str) -> ! {
    kitt::errln!("error: {why}");
    std::process::exit(2);
}
