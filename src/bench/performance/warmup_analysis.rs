//! `warmup_analysis`: the first requests against a fresh engine compared with its steady
//! state, and how many requests it takes to get there. The node's warmup is skipped.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bench::stats::median;
use crate::bench::workload::{Workload, WorkloadParams};
use crate::bench::{BenchContext, BenchError, Outcome, params};

/// Params of `warmup_analysis`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WarmupParams {
    #[serde(flatten)]
    pub workload: WorkloadParams,
    /// Requests sent one after another; the second half defines the steady state.
    #[serde(default = "default_requests")]
    #[schemars(range(min = 4, max = 10_000))]
    pub requests: u64,
    /// A request is "stable" within this fraction of the steady-state median e2e.
    #[serde(default = "default_tolerance")]
    #[schemars(range(min = 0.0, max = 10.0))]
    pub tolerance: f64,
}

fn default_requests() -> u64 {
    20
}
fn default_tolerance() -> f64 {
    0.2
}

#[derive(Debug, Serialize)]
struct Step {
    index: u64,
    ttft_ms: Option<f64>,
    e2e_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Requests before the series stays within `tolerance` of `steady` for good.
pub fn requests_to_stable(e2e: &[f64], steady: f64, tolerance: f64) -> usize {
    let stable = |v: &f64| (v - steady).abs() <= tolerance * steady;
    match e2e.iter().rposition(|v| !stable(v)) {
        Some(last_unstable) => last_unstable + 1,
        None => 0,
    }
}

pub async fn execute(ctx: &BenchContext<'_>, params: &Value) -> Result<Outcome, BenchError> {
    let p: WarmupParams = params::parse(params)?;
    let workload = Workload::new(&p.workload, ctx).await?;
    ctx.say(&format!(
        "{} requests one at a time from a cold start",
        p.requests
    ));
    let mut steps = Vec::new();
    let mut outcome = Outcome::default();
    for i in 0..p.requests {
        match ctx.engine.generate(&workload.request(i)).await {
            Ok(r) => steps.push(Step {
                index: i,
                ttft_ms: r.ttft.map(ms),
                e2e_ms: ms(r.e2e),
            }),
            Err(e) => outcome.errors.push(format!("request {i}: {e}")),
        }
    }
    if steps.len() < 4 {
        outcome.errors.insert(
            0,
            format!(
                "only {} of {} requests succeeded; at least 4 are needed to tell a steady state",
                steps.len(),
                p.requests
            ),
        );
        outcome.detail("series", &steps);
        return Ok(outcome);
    }
    let half = &steps[steps.len() / 2..];
    let e2e: Vec<f64> = steps.iter().map(|s| s.e2e_ms).collect();
    let steady_e2e = median(&half.iter().map(|s| s.e2e_ms).collect::<Vec<_>>()).unwrap_or(0.0);
    let ttfts: Vec<f64> = half.iter().filter_map(|s| s.ttft_ms).collect();
    if let Some(steady_ttft) = median(&ttfts) {
        outcome.set("steady_ttft_ms", steady_ttft);
    }
    if let Some(first) = steps[0].ttft_ms {
        outcome.set("first_ttft_ms", first);
    }
    outcome.set("first_e2e_ms", steps[0].e2e_ms);
    outcome.set("steady_e2e_ms", steady_e2e);
    if steady_e2e > 0.0 {
        outcome.set("first_to_steady_ratio", steps[0].e2e_ms / steady_e2e);
    }
    outcome.set(
        "requests_to_stable",
        requests_to_stable(&e2e, steady_e2e, p.tolerance) as f64,
    );
    outcome.detail("series", &steps);
    outcome.passed = true;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stability_starts_after_the_last_outlier() {
        assert_eq!(
            requests_to_stable(&[900.0, 300.0, 110.0, 100.0, 95.0], 100.0, 0.2),
            2
        );
        assert_eq!(requests_to_stable(&[100.0, 101.0], 100.0, 0.2), 0);
        assert_eq!(requests_to_stable(&[100.0, 500.0, 100.0], 100.0, 0.2), 2);
    }
}
