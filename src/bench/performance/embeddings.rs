//! `embeddings`: latency and throughput of `/v1/embeddings` in a closed loop, requests of
//! `batch_size` synthetic inputs each (salted like every prompt, so no cache helps).

use std::time::Instant;

use futures_util::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::bench::stats::Latencies;
use crate::bench::workload::{draw, synthetic_text};
use crate::bench::{BenchContext, BenchError, Outcome, params};

use crate::seed::mix;

/// Params of `embeddings`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsParams {
    /// Requests to send.
    #[serde(default = "default_requests")]
    #[schemars(range(min = 1, max = 10_000_000))]
    pub requests: u64,
    /// Requests in flight (a closed loop; an open loop at a rate is not built).
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 10_000))]
    pub concurrency: u32,
    /// Inputs in each request.
    #[serde(default = "default_batch")]
    #[schemars(range(min = 1, max = 2048))]
    pub batch_size: u32,
    /// Mean words per input (one common word is about one token).
    #[serde(default = "default_input")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub input_tokens: u32,
    /// Input lengths are drawn uniformly from mean × (1 ± spread); 0 keeps them fixed.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub length_spread: f64,
    /// Seed of lengths and texts.
    #[serde(default)]
    pub seed: u64,
}

fn default_requests() -> u64 {
    100
}
fn default_concurrency() -> u32 {
    4
}
fn default_batch() -> u32 {
    1
}
fn default_input() -> u32 {
    128
}

/// The metrics `embeddings` reports beside [`super::CALL_METRICS`] (name, unit, whether
/// higher is better).
pub const METRICS: [(&str, &str, bool); 10] = [
    ("requests_per_s", "requests/s", true),
    ("inputs_per_s", "inputs/s", true),
    ("input_tokens_per_s", "tokens/s", true),
    ("latency_mean_ms", "ms", false),
    ("latency_p50_ms", "ms", false),
    ("latency_p90_ms", "ms", false),
    ("latency_p99_ms", "ms", false),
    ("latency_max_ms", "ms", false),
    ("input_tokens_mean", "tokens", false),
    ("embedding_dim", "values", true),
];

/// The inputs of request `i`.
fn inputs(p: &EmbeddingsParams, salt: u64, i: u64) -> Vec<String> {
    (0..u64::from(p.batch_size))
        .map(|j| {
            let k = i * u64::from(p.batch_size) + j;
            let words = draw(p.input_tokens, p.length_spread, mix(p.seed, k));
            let text = synthetic_text(words.saturating_sub(1).max(1), mix(p.seed ^ 0xE3B, k));
            format!("{:08x}-{k}: {text}", salt as u32)
        })
        .collect()
}

pub async fn execute(ctx: &BenchContext<'_>, params: &Value) -> Result<Outcome, BenchError> {
    let p: EmbeddingsParams = params::parse(params)?;
    ctx.say(&format!(
        "{} embedding requests of {} inputs, {} in flight, about {} words each",
        p.requests, p.batch_size, p.concurrency, p.input_tokens
    ));
    let started = Instant::now();
    let mut latencies = Latencies::default();
    let mut calls = super::Calls::default();
    let (mut tokens, mut counted_inputs) = (0u64, 0u64);
    let mut dims: Vec<usize> = Vec::new();
    let mut answers = futures_util::stream::iter(0..p.requests)
        .map(|i| {
            let batch = inputs(&p, ctx.salt, i);
            async move { ctx.engine.embed(&batch).await }
        })
        .buffer_unordered(p.concurrency as usize);
    while let Some(answer) = answers.next().await {
        match answer {
            Ok(e) => {
                calls.ok += 1;
                latencies.record(e.latency);
                if let Some(t) = e.prompt_tokens {
                    tokens += t;
                    counted_inputs += e.vectors as u64;
                }
                if !dims.contains(&e.dim) {
                    dims.push(e.dim);
                }
            }
            Err(e) => calls.fail(&e),
        }
        ctx.tally.set(calls.ok + calls.failed, Some(p.requests));
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let ok = calls.ok;
    let mut outcome = calls.outcome(p.requests);
    outcome.set("requests_per_s", ok as f64 / seconds);
    outcome.set(
        "inputs_per_s",
        (ok * u64::from(p.batch_size)) as f64 / seconds,
    );
    if counted_inputs > 0 {
        outcome.set("input_tokens_per_s", tokens as f64 / seconds);
        outcome.set("input_tokens_mean", tokens as f64 / counted_inputs as f64);
    }
    if let Some(s) = latencies.summary() {
        outcome.set("latency_mean_ms", s.mean);
        outcome.set("latency_p50_ms", s.p50);
        outcome.set("latency_p90_ms", s.p90);
        outcome.set("latency_p99_ms", s.p99);
        outcome.set("latency_max_ms", s.max);
    }
    match dims[..] {
        [dim] => outcome.set("embedding_dim", dim as f64),
        [] => {}
        _ => {
            outcome.passed = false;
            outcome.errors.push(format!(
                "the engine answered vectors of different lengths: {dims:?}"
            ));
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_salted_batched_and_of_the_asked_length() {
        let p: EmbeddingsParams =
            serde_json::from_value(serde_json::json!({"batch_size": 3, "input_tokens": 10}))
                .unwrap();
        let a = inputs(&p, 1, 0);
        assert_eq!(a.len(), 3);
        assert!(
            a.iter().all(|t| t.split_whitespace().count() == 10),
            "{a:?}"
        );
        assert_ne!(inputs(&p, 2, 0), a, "another leg's salt");
        assert_ne!(inputs(&p, 1, 1), a, "another request");
        assert_eq!(inputs(&p, 1, 0), a, "reproducible");
    }
}
