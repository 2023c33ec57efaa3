//! vLLM's `vllm bench serve --save-result` JSON (and `benchmarks/benchmark_serving.py`'s):
//! throughputs, the `mean_/median_/p<P>_<metric>_ms` statistics and, with
//! `--save-detailed`, the per-request lists (seconds) kitt keeps as samples.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{Leg, Mapping, Run, mapped, metric, seconds_to_ms};
use crate::bench::samples::{CAPACITY, Sample};

/// Top-level metrics with a kitt name.
pub const METRICS: &[Mapping] = &[
    Mapping {
        from: "request_throughput",
        to: "requests_per_s",
        unit: "requests/s",
        higher: true,
        scale: 1.0,
    },
    Mapping {
        from: "output_throughput",
        to: "output_tokens_per_s",
        unit: "tokens/s",
        higher: true,
        scale: 1.0,
    },
    Mapping {
        from: "total_token_throughput",
        to: "total_tokens_per_s",
        unit: "tokens/s",
        higher: true,
        scale: 1.0,
    },
    Mapping {
        from: "request_goodput",
        to: "goodput",
        unit: "requests/s",
        higher: true,
        scale: 1.0,
    },
    Mapping {
        from: "completed",
        to: "requests",
        unit: "count",
        higher: true,
        scale: 1.0,
    },
    Mapping {
        from: "failed",
        to: "errors",
        unit: "count",
        higher: false,
        scale: 1.0,
    },
    Mapping {
        from: "max_concurrent_requests",
        to: "concurrency_max",
        unit: "requests",
        higher: true,
        scale: 1.0,
    },
];

/// vLLM's latency metric → kitt's (vLLM's TPOT, like kitt's, leaves the first token out;
/// its ITL statistics are over every gap, as kitt's are).
pub const LATENCIES: &[(&str, &str)] = &[
    ("ttft", "ttft"),
    ("tpot", "tpot"),
    ("itl", "itl"),
    ("e2el", "e2e"),
];
/// vLLM's statistic prefix → kitt's suffix.
pub const STATISTICS: &[(&str, &str)] = &[
    ("mean", "mean"),
    ("median", "p50"),
    ("p50", "p50"),
    ("p90", "p90"),
    ("p95", "p95"),
    ("p99", "p99"),
];
/// Keys that describe the run rather than measure it.
const SETUP: &[&str] = &[
    "date",
    "endpoint_type",
    "backend",
    "label",
    "model_id",
    "tokenizer_id",
    "num_prompts",
    "request_rate",
    "burstiness",
    "max_concurrency",
    "duration",
    "total_input_tokens",
    "total_output_tokens",
    "input_lens",
    "output_lens",
    "ttfts",
    "itls",
    "latencies",
    "start_times",
    "queue_times",
    "generated_texts",
    "errors",
    "ramp_up_strategy",
    "ramp_up_start_rps",
    "ramp_up_end_rps",
    "rps_change_events",
];

/// One result object as a run with one leg.
pub fn read(doc: &Value) -> Result<Run, String> {
    let o = doc.as_object().ok_or("a vLLM result is a JSON object")?;
    if !o.contains_key("request_throughput") || !o.contains_key("duration") {
        return Err(
            "no `request_throughput` and `duration`: not a `vllm bench serve --save-result` file"
                .into(),
        );
    }
    let mut used: BTreeSet<String> = SETUP.iter().map(|s| s.to_string()).collect();
    let mut metrics = mapped(o, METRICS);
    used.extend(METRICS.iter().map(|m| m.from.to_string()));
    // A goodput of null (no --goodput) maps to nothing.
    for (from, to) in LATENCIES {
        for (stat, suffix) in STATISTICS {
            let key = format!("{stat}_{from}_ms");
            if let Some(v) = o.get(&key).and_then(Value::as_f64) {
                let name = format!("{to}_{suffix}_ms");
                if !metrics.iter().any(|m| m.name == name) {
                    metrics.push(metric(&name, v, "ms", false));
                }
                used.insert(key);
            }
        }
    }
    let completed = o.get("completed").and_then(Value::as_f64).unwrap_or(0.0);
    let failed = o.get("failed").and_then(Value::as_f64).unwrap_or(0.0);
    if completed + failed > 0.0 && o.contains_key("failed") {
        metrics.push(metric(
            "error_rate",
            failed / (completed + failed),
            "ratio",
            false,
        ));
    }
    if completed > 0.0 {
        for (total, name) in [
            ("total_input_tokens", "prompt_tokens_mean"),
            ("total_output_tokens", "output_tokens_mean"),
        ] {
            if let Some(t) = o.get(total).and_then(Value::as_f64) {
                metrics.push(metric(name, t / completed, "tokens", true));
            }
        }
    }
    let unmapped: Vec<String> = o
        .iter()
        .filter(|(k, v)| v.is_number() && !used.contains(k.as_str()))
        .map(|(k, _)| k.clone())
        .collect();
    let rate = match o.get("request_rate") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "inf".into(),
    };
    let mut name = o
        .get("label")
        .and_then(Value::as_str)
        .unwrap_or("serve")
        .to_string();
    name.push_str(&format!("[request_rate={rate}"));
    if let Some(c) = o.get("max_concurrency").and_then(Value::as_u64) {
        name.push_str(&format!(",max_concurrency={c}"));
    }
    name.push(']');
    let params: Map<String, Value> = [
        "num_prompts",
        "request_rate",
        "burstiness",
        "max_concurrency",
        "backend",
        "endpoint_type",
        "tokenizer_id",
    ]
    .iter()
    .filter_map(|k| o.get(*k).map(|v| (k.to_string(), v.clone())))
    .collect();
    let started_at = o
        .get("date")
        .and_then(Value::as_str)
        .and_then(parse_date)
        .unwrap_or_else(crate::store::time::now);
    Ok(Run {
        started_at,
        tool_version: "vllm bench serve".into(),
        legs: vec![Leg {
            name,
            model: o
                .get("model_id")
                .and_then(Value::as_str)
                .map(str::to_string),
            engine: o
                .get("backend")
                .and_then(Value::as_str)
                .unwrap_or("vllm")
                .to_string(),
            params: json!(params),
            metrics,
            samples: samples(o),
            unmapped,
            started_at: Some(started_at),
            seconds: o.get("duration").and_then(Value::as_f64),
        }],
    })
}

/// vLLM's `date`, `YYYYmmdd-HHMMSS` in the benchmarking machine's local time (no zone is
/// written): read as UTC.
fn parse_date(date: &str) -> Option<f64> {
    let (d, t) = date.split_once('-')?;
    if d.len() != 8 || t.len() != 6 || !d.is_ascii() || !t.is_ascii() {
        return None;
    }
    crate::store::time::parse_utc(&format!(
        "{}-{}-{} {}:{}:{}",
        &d[..4],
        &d[4..6],
        &d[6..],
        &t[..2],
        &t[2..4],
        &t[4..]
    ))
}

/// The per-request lists (`--save-detailed`), as kitt's samples: at most `CAPACITY`.
fn samples(o: &Map<String, Value>) -> Vec<Sample> {
    let list = |k: &str| o.get(k).and_then(Value::as_array);
    let (Some(ttfts), Some(latencies)) = (list("ttfts"), list("latencies")) else {
        return Vec::new();
    };
    let starts = list("start_times");
    let first = starts
        .map(|s| {
            s.iter()
                .filter_map(Value::as_f64)
                .fold(f64::INFINITY, f64::min)
        })
        .unwrap_or(0.0);
    let outputs = list("output_lens");
    let errors = list("errors");
    (0..ttfts.len().min(latencies.len()).min(CAPACITY))
        .map(|i| {
            let tokens = outputs
                .and_then(|v| v.get(i))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let ok = errors
                .and_then(|v| v.get(i))
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            let ttft = seconds_to_ms(ttfts.get(i));
            let e2e = seconds_to_ms(latencies.get(i));
            Sample {
                at_ms: starts
                    .and_then(|s| s.get(i))
                    .and_then(Value::as_f64)
                    .map_or(0.0, |s| ((s - first) * 1000.0) as f32),
                ttft_ms: ttft,
                tpot_ms: if tokens > 1 {
                    (e2e - ttft) / (tokens - 1) as f32
                } else {
                    f32::NAN
                },
                e2e_ms: e2e,
                tokens: u32::try_from(tokens).unwrap_or(u32::MAX),
                ok,
            }
        })
        .collect()
}
