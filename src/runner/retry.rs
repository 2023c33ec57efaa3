//! Running one leg's benchmark: within the node's timeout, retrying transient engine
//! failures with a doubling backoff, up to the node's attempts.

use serde_json::Value;

use crate::bench::{self, BenchContext, BenchError, BenchResult};
use crate::registry::Registry;
use crate::suite::model::Duration;
use crate::suite::plan::PlannedLeg;

/// The leg's result or its last error, and the attempts made.
pub async fn run_with_retries(
    registry: &Registry,
    leg: &PlannedLeg,
    ctx: &BenchContext<'_>,
    params: &Value,
) -> (Result<BenchResult, BenchError>, u32) {
    let Some(entry) = registry.benchmarks.get(&leg.benchmark) else {
        let missing = format!("benchmark `{}` is not registered", leg.benchmark);
        return (Err(BenchError::Failed(missing)), 0);
    };
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let outcome =
            match tokio::time::timeout(leg.timeout.0, bench::run(entry, ctx, params)).await {
                Ok(outcome) => outcome,
                Err(_) => return (Err(BenchError::TimedOut(leg.timeout)), attempt),
            };
        match outcome {
            Err(BenchError::Engine(e)) if e.is_transient() && attempt < leg.attempts => {
                let wait = leg.backoff.0 * 2u32.saturating_pow(attempt - 1);
                (ctx.progress)(&format!(
                    "attempt {attempt} failed ({e}); retrying in {}",
                    Duration(wait)
                ));
                tokio::time::sleep(wait).await;
            }
            other => return (other, attempt),
        }
    }
}
