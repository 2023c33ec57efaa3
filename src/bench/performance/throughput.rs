//! `throughput` (closed loop at a concurrency) and `latency` (one request at a time).

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::report_load;
use crate::bench::loadgen::{self, LoadSpec, Pattern, RequestSlo, Stop};
use crate::bench::workload::{Workload, WorkloadParams};
use crate::bench::{BenchContext, BenchError, Outcome, params};

/// Params of `throughput`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ThroughputParams {
    #[serde(flatten)]
    pub workload: WorkloadParams,
    /// Requests to measure.
    #[serde(default = "default_requests")]
    #[schemars(range(min = 1))]
    pub requests: u64,
    /// Streams in flight.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 100_000))]
    pub concurrency: u32,
}

/// Params of `latency`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct LatencyParams {
    #[serde(flatten)]
    pub workload: WorkloadParams,
    /// Requests to measure, one after another.
    #[serde(default = "default_latency_requests")]
    #[schemars(range(min = 1))]
    pub requests: u64,
}

fn default_requests() -> u64 {
    100
}
fn default_concurrency() -> u32 {
    8
}
fn default_latency_requests() -> u64 {
    20
}

pub async fn execute(ctx: &BenchContext<'_>, params: &Value) -> Result<Outcome, BenchError> {
    let p: ThroughputParams = params::parse(params)?;
    closed_loop(ctx, &p.workload, p.concurrency, p.requests).await
}

pub async fn execute_latency(
    ctx: &BenchContext<'_>,
    params: &Value,
) -> Result<Outcome, BenchError> {
    let p: LatencyParams = params::parse(params)?;
    closed_loop(ctx, &p.workload, 1, p.requests).await
}

async fn closed_loop(
    ctx: &BenchContext<'_>,
    workload: &WorkloadParams,
    concurrency: u32,
    requests: u64,
) -> Result<Outcome, BenchError> {
    let load = Workload::new(workload, ctx).await?;
    let spec = LoadSpec {
        pattern: Pattern::Closed { concurrency },
        stop: Stop::Requests(requests),
        warmup: std::time::Duration::ZERO,
        cooldown: std::time::Duration::ZERO,
        slo: RequestSlo::default(),
    };
    ctx.say(&format!(
        "{requests} requests, {concurrency} in flight, {} → {} tokens",
        workload.input_tokens, workload.output_tokens
    ));
    let report = loadgen::run(ctx.engine, &load, &spec, &ctx.tally).await;
    let mut outcome = Outcome::default();
    report_load(&mut outcome, &report);
    outcome.outputs.insert(
        "schedule_hash".into(),
        load.digest(
            &format!("closed {concurrency} x {requests}"),
            requests,
            None,
        )
        .into(),
    );
    Ok(outcome)
}
