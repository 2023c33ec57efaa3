//! Performance benchmarks over the shared load generator, and the metrics they all report.

pub mod load;
pub mod long_context;
pub mod memory;
pub mod sweep;
pub mod throughput;
pub mod warmup_analysis;

use serde_json::json;

use super::Outcome;
use super::loadgen::LoadReport;
use super::stats::Latencies;

/// The five latency quantities and their names.
pub const LATENCIES: [&str; 5] = ["ttft", "ttfo", "itl", "tpot", "e2e"];
/// The statistics reported for each.
pub const STATISTICS: [&str; 6] = ["mean", "p50", "p90", "p95", "p99", "max"];

/// Whether `name` is one of the latency statistics (`ttft_p99_ms`, `e2e_mean_ms`, …).
pub fn is_latency_metric(name: &str) -> bool {
    name.strip_suffix("_ms")
        .and_then(|n| n.rsplit_once('_'))
        .is_some_and(|(q, stat)| LATENCIES.contains(&q) && STATISTICS.contains(&stat))
}

fn latency<'a>(r: &'a LoadReport, name: &str) -> &'a Latencies {
    match name {
        "ttft" => &r.ttft,
        "ttfo" => &r.ttfo,
        "itl" => &r.itl,
        "tpot" => &r.tpot,
        _ => &r.e2e,
    }
}

/// Sets the latency, throughput, token and client metrics of a load run, and its details.
pub fn report_load(outcome: &mut Outcome, r: &LoadReport) {
    for name in LATENCIES {
        if let Some(s) = latency(r, name).summary() {
            for (stat, value) in STATISTICS
                .iter()
                .zip([s.mean, s.p50, s.p90, s.p95, s.p99, s.max])
            {
                outcome.set(&format!("{name}_{stat}_ms"), value);
            }
        }
    }
    outcome.set("requests", r.ok as f64);
    outcome.set("errors", r.errors as f64);
    outcome.set("error_rate", r.error_rate());
    outcome.set("requests_per_s", r.requests_per_s());
    outcome.set("output_tokens_per_s", r.output_tokens_per_s());
    outcome.set(
        "output_tokens_per_s_per_request",
        r.per_request_tokens_per_s(),
    );
    if r.ok > 0 {
        outcome.set("output_tokens_mean", r.output_tokens as f64 / r.ok as f64);
        outcome.set("prompt_tokens_mean", r.prompt_tokens as f64 / r.ok as f64);
    }
    let sent = r.measured() + r.excluded;
    if sent > 0 {
        outcome.set(
            "client_cpu_ms_per_request",
            r.cpu.as_secs_f64() * 1e3 / sent as f64,
        );
    }
    if let Some(lag) = r.send_lag.summary() {
        outcome.set("send_lag_p50_ms", lag.p50);
        outcome.set("send_lag_p99_ms", lag.p99);
        outcome.set("send_lag_max_ms", lag.max);
    }
    outcome.detail(
        "requests",
        json!({
            "ok": r.ok, "errors": r.errors, "excluded": r.excluded,
            "window_s": r.window.as_secs_f64(), "wall_s": r.wall.as_secs_f64(),
        }),
    );
    if r.chunk_counted > 0 {
        outcome.detail(
            "token_counts",
            format!(
                "{} of {} requests had no server usage; their output tokens were counted as chunks (exact only at one token per chunk)",
                r.chunk_counted, r.ok
            ),
        );
    } else {
        outcome.detail("token_counts", "server usage");
    }
    if !r.error_examples.is_empty() {
        outcome.detail("error_examples", &r.error_examples);
        for (message, n) in &r.error_examples {
            outcome.errors.push(format!("{n}× {message}"));
        }
    }
    outcome.samples = Some(r.samples.clone());
    outcome.passed = r.ok > 0;
    if r.ok == 0 {
        outcome
            .errors
            .insert(0, "no request succeeded, so nothing was measured".into());
    }
}

/// The metric names `report_load` may set, with units and directions, for the catalog.
pub fn load_metric_names() -> Vec<(String, &'static str, bool)> {
    let mut names = Vec::new();
    for m in LATENCIES {
        for s in STATISTICS {
            names.push((format!("{m}_{s}_ms"), "ms", false));
        }
    }
    for (n, unit, higher) in [
        ("requests", "count", true),
        ("errors", "count", false),
        ("error_rate", "ratio", false),
        ("requests_per_s", "requests/s", true),
        ("output_tokens_per_s", "tokens/s", true),
        ("output_tokens_per_s_per_request", "tokens/s", true),
        ("output_tokens_mean", "tokens", true),
        ("prompt_tokens_mean", "tokens", true),
        ("client_cpu_ms_per_request", "ms", false),
        ("send_lag_p50_ms", "ms", false),
        ("send_lag_p99_ms", "ms", false),
        ("send_lag_max_ms", "ms", false),
    ] {
        names.push((n.to_string(), unit, higher));
    }
    names
}
