//! GuideLLM's JSON report (`guidellm benchmark --output-path report.json`, v0.2 to v0.7):
//! one leg per benchmark (its strategy and rate), the `successful` distribution of each
//! metric under kitt's names, and the per-request records kept as samples.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{Leg, Run, metric};
use crate::bench::samples::{CAPACITY, Sample};

/// GuideLLM's distribution → kitt's latency family and the factor to ms. GuideLLM's
/// `inter_token_latency_ms` leaves the first token out, as kitt's TPOT does; its
/// `time_per_output_token_ms` counts the first token too and has no kitt name.
pub const LATENCIES: &[(&str, &str, f64)] = &[
    ("time_to_first_token_ms", "ttft", 1.0),
    ("inter_token_latency_ms", "tpot", 1.0),
    ("request_latency", "e2e", 1000.0),
];
/// GuideLLM's distributions whose mean (and max) map to a kitt metric.
pub const MEANS: &[(&str, &str, &str, bool)] = &[
    ("requests_per_second", "requests_per_s", "requests/s", true),
    (
        "output_tokens_per_second",
        "output_tokens_per_s",
        "tokens/s",
        true,
    ),
    ("tokens_per_second", "total_tokens_per_s", "tokens/s", true),
    ("request_concurrency", "concurrency_mean", "requests", true),
    ("prompt_token_count", "prompt_tokens_mean", "tokens", true),
    ("output_token_count", "output_tokens_mean", "tokens", true),
];

/// A report as one run, a leg per benchmark.
pub fn read(doc: &Value) -> Result<Run, String> {
    let benchmarks = doc
        .get("benchmarks")
        .and_then(Value::as_array)
        .ok_or("no `benchmarks` list: not a GuideLLM report")?;
    if benchmarks.is_empty() {
        return Err("the report holds no benchmark".into());
    }
    let version = doc
        .pointer("/metadata/guidellm_version")
        .and_then(Value::as_str)
        .map_or("guidellm".to_string(), |v| format!("guidellm {v}"));
    let mut legs: Vec<Leg> = Vec::new();
    for (i, b) in benchmarks.iter().enumerate() {
        let mut leg = read_benchmark(b).map_err(|e| format!("benchmarks[{i}]: {e}"))?;
        if legs.iter().any(|l| l.name == leg.name) {
            leg.name = format!("{}#{i}", leg.name);
        }
        legs.push(leg);
    }
    let started_at = legs
        .iter()
        .filter_map(|l| l.started_at)
        .fold(f64::INFINITY, f64::min);
    Ok(Run {
        started_at: if started_at.is_finite() {
            started_at
        } else {
            crate::store::time::now()
        },
        tool_version: version,
        legs,
    })
}

fn read_benchmark(b: &Value) -> Result<Leg, String> {
    let m = b
        .get("metrics")
        .and_then(Value::as_object)
        .ok_or("no `metrics`")?;
    // v0.4 on: config.strategy and config.backend.model; v0.2/0.3: args.strategy and
    // worker.backend_model.
    let strategy = b
        .pointer("/config/strategy")
        .or_else(|| b.pointer("/args/strategy"))
        .cloned()
        .unwrap_or(Value::Null);
    let kind = strategy
        .get("type_")
        .and_then(Value::as_str)
        .unwrap_or("benchmark");
    let mut name = kind.to_string();
    if let Some(rate) = strategy.get("rate").filter(|r| r.is_number()) {
        name.push_str(&format!("[rate={rate}]"));
    } else if let Some(streams) = strategy.get("streams").filter(|r| r.is_number()) {
        name.push_str(&format!("[streams={streams}]"));
    }
    let model = b
        .pointer("/config/backend/model")
        .or_else(|| b.pointer("/worker/backend_model"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut metrics = Vec::new();
    let mut used = BTreeSet::new();
    let successful = |key: &str| {
        m.get(key)
            .and_then(|d| d.get("successful"))
            .and_then(Value::as_object)
    };
    for (from, to, scale) in LATENCIES {
        let Some(d) = successful(from) else { continue };
        used.insert(*from);
        let stat = |v: Option<&Value>| v.and_then(Value::as_f64).map(|v| v * scale);
        let p = d.get("percentiles");
        for (suffix, value) in [
            ("mean", stat(d.get("mean"))),
            ("p50", stat(d.get("median"))),
            ("p90", stat(p.and_then(|p| p.get("p90")))),
            ("p95", stat(p.and_then(|p| p.get("p95")))),
            ("p99", stat(p.and_then(|p| p.get("p99")))),
            ("max", stat(d.get("max"))),
        ] {
            if let Some(v) = value {
                metrics.push(metric(&format!("{to}_{suffix}_ms"), v, "ms", false));
            }
        }
    }
    for (from, to, unit, higher) in MEANS {
        if let Some(v) = successful(from)
            .and_then(|d| d.get("mean"))
            .and_then(Value::as_f64)
        {
            metrics.push(metric(to, v, unit, *higher));
            used.insert(*from);
        }
    }
    if let Some(v) = successful("request_concurrency")
        .and_then(|d| d.get("max"))
        .and_then(Value::as_f64)
    {
        metrics.push(metric("concurrency_max", v, "requests", true));
    }
    let totals = m
        .get("request_totals")
        .or_else(|| b.get("request_totals"))
        .and_then(Value::as_object);
    if let Some(t) = totals {
        used.insert("request_totals");
        let count = |k: &str| t.get(k).and_then(Value::as_f64);
        if let (Some(ok), Some(errored)) = (count("successful"), count("errored")) {
            metrics.push(metric("requests", ok, "count", true));
            metrics.push(metric("errors", errored, "count", false));
            if ok + errored > 0.0 {
                metrics.push(metric(
                    "error_rate",
                    errored / (ok + errored),
                    "ratio",
                    false,
                ));
            }
        }
    }
    let unmapped: Vec<String> = m
        .iter()
        .filter(|(k, v)| {
            !used.contains(k.as_str())
                && v.get("successful").is_some_and(|s| s.get("mean").is_some())
        })
        .map(|(k, _)| k.clone())
        .collect();
    let started_at = b.get("start_time").and_then(Value::as_f64);
    let params: Map<String, Value> = [("strategy", strategy.clone())]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Ok(Leg {
        name,
        model,
        engine: b
            .pointer("/config/backend/kind")
            .or_else(|| b.pointer("/worker/type_"))
            .and_then(Value::as_str)
            .unwrap_or("openai_http")
            .to_string(),
        params: json!(params),
        metrics,
        samples: samples(b, started_at.unwrap_or(0.0)),
        unmapped,
        started_at,
        seconds: b.get("duration").and_then(Value::as_f64),
    })
}

/// `requests.successful` and `requests.errored` as kitt's samples (v0.4 on: computed
/// fields; v0.2/0.3: start, first-token and end times), at most `CAPACITY`.
fn samples(b: &Value, start: f64) -> Vec<Sample> {
    let list = |k: &str| {
        b.pointer(&format!("/requests/{k}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let f = |r: &Value, k: &str| r.get(k).and_then(Value::as_f64);
    let mut out = Vec::new();
    for (ok, r) in list("successful")
        .iter()
        .map(|r| (true, r))
        .chain(list("errored").iter().map(|r| (false, r)))
        .take(CAPACITY)
    {
        let begin = f(r, "request_start_time").or_else(|| f(r, "start_time"));
        let ttft = f(r, "time_to_first_token_ms")
            .or_else(|| Some((f(r, "first_token_time")? - begin?) * 1000.0));
        let e2e = f(r, "request_latency")
            .or_else(|| Some(f(r, "end_time")? - begin?))
            .map(|s| s * 1000.0);
        let tokens = f(r, "output_tokens").unwrap_or(0.0);
        let tpot = f(r, "inter_token_latency_ms").or_else(|| {
            (tokens > 1.0)
                .then(|| Some((e2e? - ttft?) / (tokens - 1.0)))
                .flatten()
        });
        let nan = |v: Option<f64>| v.map_or(f32::NAN, |v| v as f32);
        out.push(Sample {
            at_ms: begin.map_or(0.0, |t| ((t - start) * 1000.0) as f32),
            ttft_ms: nan(ttft),
            tpot_ms: nan(tpot),
            e2e_ms: nan(e2e),
            tokens: tokens as u32,
            ok,
        });
    }
    out
}
