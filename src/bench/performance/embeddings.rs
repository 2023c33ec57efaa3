//! `embeddings`: latency and throughput of `/v1/embeddings` in a closed loop (requests in
//! flight) or an open loop (requests per second), requests of `batch_size` synthetic inputs
//! each (salted like every prompt, so no cache helps).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::bench::pacer::Pacer;
use crate::bench::schedule::{Arrival, Extent, Schedule};
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
    /// Closed loop: requests in flight (default 4 when no `rate` is given).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10_000))]
    pub concurrency: Option<u32>,
    /// Open loop: requests per second; latency then counts from each scheduled send.
    #[serde(default)]
    #[schemars(range(min = 0.001))]
    pub rate: Option<f64>,
    /// Open loop: how gaps between sends are drawn.
    #[serde(default)]
    pub arrival: Arrival,
    /// Gamma arrivals: shape (1 = Poisson, below 1 burstier).
    #[serde(default = "one")]
    #[schemars(range(min = 0.01))]
    pub burstiness: f64,
    /// Open loop: beyond this many in flight, sends queue (and the wait counts as latency).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_concurrency: Option<u32>,
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
/// Requests in flight by default.
const DEFAULT_CONCURRENCY: u32 = 4;
fn one() -> f64 {
    1.0
}
fn default_batch() -> u32 {
    1
}
fn default_input() -> u32 {
    128
}

/// The metrics `embeddings` reports beside [`super::CALL_METRICS`] (name, unit, whether
/// higher is better).
pub const METRICS: [(&str, &str, bool); 11] = [
    ("send_lag_p99_ms", "ms", false),
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

/// Sends one batch released at `due`: (the answer, latency from `due`, how late it went).
async fn embed_at(
    ctx: &BenchContext<'_>,
    batch: Vec<String>,
    due: Instant,
) -> (
    Result<crate::engine::client::Embedded, crate::engine::client::ClientError>,
    Duration,
    Duration,
) {
    let lag = Instant::now().saturating_duration_since(due);
    let answer = ctx.engine.embed(&batch).await;
    (answer, due.elapsed(), lag)
}

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
    // Open loop: the send offsets; in flight, at most the cap (closed loop: the concurrency).
    let (offsets, in_flight): (Option<Vec<Duration>>, u32) = match (p.rate, p.concurrency) {
        (Some(_), Some(_)) => {
            return Err(BenchError::params(
                "give `concurrency` (closed loop) or `rate` (open loop), not both",
            ));
        }
        (Some(rate), None) => (
            Some(
                Schedule::build(
                    rate,
                    p.arrival,
                    p.burstiness,
                    p.seed,
                    Extent::Requests(p.requests),
                )
                .map_err(BenchError::params)?
                .offsets,
            ),
            p.max_concurrency.unwrap_or(u32::MAX),
        ),
        (None, concurrency) => {
            if p.max_concurrency.is_some() {
                return Err(BenchError::params(
                    "`max_concurrency` caps an open loop; with `concurrency` it means nothing",
                ));
            }
            (None, concurrency.unwrap_or(DEFAULT_CONCURRENCY))
        }
    };
    ctx.say(&format!(
        "{} embedding requests of {} inputs, {}, about {} words each",
        p.requests,
        p.batch_size,
        match p.rate {
            Some(rate) => format!("{rate}/s {:?}", p.arrival),
            None => format!("{in_flight} in flight"),
        },
        p.input_tokens
    ));
    let started = Instant::now();
    let pacer = Pacer::new();
    let mut latencies = Latencies::default();
    let mut send_lag = Latencies::default();
    let mut calls = super::Calls::default();
    let (mut tokens, mut counted_inputs) = (0u64, 0u64);
    let mut dims: Vec<usize> = Vec::new();
    // Each request is released at its scheduled time (open loop) or when a slot frees
    // (closed loop), and timed from then; beyond the cap an open loop's sends wait.
    let cap = in_flight as usize;
    let mut pending = FuturesUnordered::new();
    let mut next = 0u64;
    loop {
        if offsets.is_none() {
            while pending.len() < cap && next < p.requests {
                pending.push(embed_at(ctx, inputs(&p, ctx.salt, next), Instant::now()));
                next += 1;
            }
        }
        let due = offsets
            .as_ref()
            .and_then(|o| o.get(next as usize))
            .map(|o| started + *o);
        if pending.is_empty() && due.is_none() {
            break;
        }
        let (answer, latency, lag) = tokio::select! {
            biased;
            Some(answer) = pending.next(), if !pending.is_empty() => answer,
            _ = pacer.sleep_until(due.unwrap_or(started)), if due.is_some() && pending.len() < cap => {
                pending.push(embed_at(ctx, inputs(&p, ctx.salt, next), due.unwrap_or(started)));
                next += 1;
                continue;
            }
        };
        send_lag.record(lag);
        match answer {
            Ok(e) => {
                calls.ok += 1;
                latencies.record(latency);
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
    if let Some(lag) = send_lag.summary().filter(|_| offsets.is_some()) {
        outcome.set("send_lag_p99_ms", lag.p99);
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
