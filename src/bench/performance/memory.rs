//! `memory`: the engine's memory sampled before and during a closed-loop load: GPU memory
//! through nvidia-smi when there is a GPU, else the container's, the process group's, or
//! (simulator) kitt's own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::report_load;
use crate::bench::loadgen::{self, LoadSpec, Pattern, RequestSlo, Stop};
use crate::bench::workload::{Workload, WorkloadParams};
use crate::bench::{BenchContext, BenchError, Outcome, params};
use crate::suite::model::Duration as SuiteDuration;

/// Params of `memory`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct MemoryParams {
    #[serde(flatten)]
    pub workload: WorkloadParams,
    /// Streams in flight during the load.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 100_000))]
    pub concurrency: u32,
    /// Requests sent while sampling.
    #[serde(default = "default_requests")]
    #[schemars(range(min = 1))]
    pub requests: u64,
    /// Time between samples (at least 10ms).
    #[serde(default = "default_interval")]
    pub interval: SuiteDuration,
}

fn default_concurrency() -> u32 {
    4
}
fn default_requests() -> u64 {
    40
}
fn default_interval() -> SuiteDuration {
    SuiteDuration(Duration::from_millis(250))
}

#[derive(Debug, Serialize)]
struct Reading {
    t_s: f64,
    mib: f64,
}

const MIB: f64 = 1024.0 * 1024.0;
/// Shorter intervals would measure the sampler more than the engine.
const MIN_INTERVAL: Duration = Duration::from_millis(10);

pub async fn execute(ctx: &BenchContext<'_>, params: &Value) -> Result<Outcome, BenchError> {
    let p: MemoryParams = params::parse(params)?;
    let baseline = ctx
        .engine
        .memory()
        .await
        .map_err(|e| BenchError::Failed(format!("cannot read the engine's memory: {e}")))?;
    ctx.say(&format!(
        "memory from {}; baseline {:.1} MiB",
        baseline.source.describe(),
        baseline.bytes as f64 / MIB
    ));
    let workload = Workload::new(&p.workload, ctx).await?;
    let spec = LoadSpec {
        pattern: Pattern::Closed {
            concurrency: p.concurrency,
        },
        stop: Stop::Requests(p.requests),
        warmup: Duration::ZERO,
        cooldown: Duration::ZERO,
        slo: RequestSlo::default(),
    };
    let done = AtomicBool::new(false);
    let started = std::time::Instant::now();
    let load = async {
        let report = loadgen::run(ctx.engine, &workload, &spec, &ctx.tally).await;
        done.store(true, Ordering::Relaxed);
        report
    };
    let sampler = async {
        let mut readings = Vec::new();
        let mut failures = Vec::new();
        while !done.load(Ordering::Relaxed) {
            match ctx.engine.memory().await {
                // Figures from two sources do not mix: keep the baseline's.
                Ok(s) if s.source == baseline.source => readings.push(Reading {
                    t_s: started.elapsed().as_secs_f64(),
                    mib: s.bytes as f64 / MIB,
                }),
                Ok(s) => failures.push(format!(
                    "a reading came from {} instead of {}",
                    s.source.describe(),
                    baseline.source.describe()
                )),
                Err(e) => failures.push(e),
            }
            tokio::time::sleep(p.interval.0.max(MIN_INTERVAL)).await;
        }
        (readings, failures)
    };
    let (report, (readings, failures)) = tokio::join!(load, sampler);
    let mut outcome = Outcome::default();
    report_load(&mut outcome, &report);
    let base = baseline.bytes as f64 / MIB;
    outcome.set("memory_baseline_mib", base);
    if !readings.is_empty() {
        let peak = readings.iter().map(|r| r.mib).fold(base, f64::max);
        let mean = readings.iter().map(|r| r.mib).sum::<f64>() / readings.len() as f64;
        outcome.set("memory_peak_mib", peak);
        outcome.set("memory_mean_mib", mean);
        outcome.set("memory_growth_mib", peak - base);
    }
    outcome.set("memory_samples", readings.len() as f64);
    outcome
        .outputs
        .insert("memory_source".into(), baseline.source.describe().into());
    outcome.detail("readings", &readings);
    if let Some(first) = failures.first() {
        outcome
            .errors
            .push(format!("{} samples failed, e.g.: {first}", failures.len()));
    }
    outcome.passed = outcome.passed && !readings.is_empty();
    Ok(outcome)
}
