//! `load`: one load point, closed loop at a concurrency or open loop at a rate, with error
//! rate, send rate, concurrency over time and goodput against per-request SLOs.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::report_load;
use crate::bench::loadgen::{self, LoadReport, LoadSpec, Pattern, RequestSlo, Stop};
use crate::bench::schedule::{Arrival, Extent, Schedule};
use crate::bench::workload::{Workload, WorkloadParams};
use crate::bench::{BenchContext, BenchError, Outcome, params};
use crate::suite::model::Duration as SuiteDuration;

/// Params of `load`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct LoadParams {
    #[serde(flatten)]
    pub workload: WorkloadParams,
    /// Closed loop: streams in flight.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100_000))]
    pub concurrency: Option<u32>,
    /// Open loop: requests per second.
    #[serde(default)]
    #[schemars(range(min = 0.001))]
    pub rate: Option<f64>,
    #[serde(flatten)]
    pub extent: ExtentParams,
    /// Per-request objectives for goodput.
    #[serde(default)]
    pub slo: RequestSlo,
}

/// How long a load point lasts and how an open loop sends: shared by `load` and `sweep`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExtentParams {
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
    /// Requests to send (default 100 when no duration is given).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub requests: Option<u64>,
    /// Send for this long instead of a number of requests.
    #[serde(default)]
    pub duration: Option<SuiteDuration>,
    /// Requests scheduled in this first part of the run are sent but not measured.
    #[serde(default)]
    pub warmup: Option<SuiteDuration>,
    /// With `duration`: requests scheduled in this last part are sent but not measured.
    #[serde(default)]
    pub cooldown: Option<SuiteDuration>,
}

fn one() -> f64 {
    1.0
}

impl ExtentParams {
    /// The point at `concurrency` (closed loop) or `rate` (open loop).
    pub fn point(&self, concurrency: Option<u32>, rate: Option<f64>, slo: &RequestSlo) -> Point {
        Point {
            concurrency,
            rate,
            arrival: self.arrival,
            burstiness: self.burstiness,
            max_concurrency: self.max_concurrency,
            requests: self.requests,
            duration: self.duration.map(|d| d.0),
            warmup: self.warmup.map_or(Duration::ZERO, |d| d.0),
            cooldown: self.cooldown.map_or(Duration::ZERO, |d| d.0),
            slo: slo.clone(),
        }
    }
}

/// One point of load: the loop shape and the extent.
#[derive(Debug, Clone)]
pub struct Point {
    pub concurrency: Option<u32>,
    pub rate: Option<f64>,
    pub arrival: Arrival,
    pub burstiness: f64,
    pub max_concurrency: Option<u32>,
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
    pub warmup: Duration,
    pub cooldown: Duration,
    pub slo: RequestSlo,
}

/// A finished point: what was measured and the hash of what was sent.
pub struct Measured {
    pub report: LoadReport,
    pub schedule_hash: String,
    /// With shared prefixes: the share of prompt tokens a token-exact cache would serve.
    pub expected_prefix_hit_rate: Option<f64>,
}

/// Runs one point of load.
pub async fn run_point(
    ctx: &BenchContext<'_>,
    workload: &Workload,
    seed: u64,
    point: &Point,
) -> Result<Measured, BenchError> {
    let stop = match (point.requests, point.duration) {
        (Some(_), Some(_)) => {
            return Err(BenchError::params(
                "give `requests` or `duration`, not both",
            ));
        }
        (Some(n), None) => Stop::Requests(n),
        (None, Some(d)) => Stop::Duration(d),
        (None, None) => Stop::Requests(100),
    };
    if !point.cooldown.is_zero() && point.duration.is_none() {
        return Err(BenchError::params(
            "`cooldown` needs `duration`: with a request count the end is not known in advance",
        ));
    }
    if let Some(d) = point.duration
        && point.warmup + point.cooldown >= d
    {
        return Err(BenchError::params(format!(
            "`warmup` + `cooldown` leave nothing of the {d:?} `duration` to measure"
        )));
    }
    let (pattern, offsets_for_hash) = match (point.concurrency, point.rate) {
        (Some(_), Some(_)) => {
            return Err(BenchError::params(
                "give `concurrency` (closed loop) or `rate` (open loop), not both",
            ));
        }
        (None, None) => {
            return Err(BenchError::params(
                "give `concurrency` (closed loop: streams in flight) or `rate` (open loop: requests per second)",
            ));
        }
        (Some(c), None) => {
            if point.max_concurrency.is_some() {
                return Err(BenchError::params(
                    "`max_concurrency` caps an open loop; with `concurrency` it means nothing",
                ));
            }
            (Pattern::Closed { concurrency: c }, None)
        }
        (None, Some(rate)) => {
            let extent = match stop {
                Stop::Requests(n) => Extent::Requests(n),
                Stop::Duration(d) => Extent::Within(d),
            };
            let schedule = Schedule::build(rate, point.arrival, point.burstiness, seed, extent)
                .map_err(BenchError::params)?;
            let offsets = schedule.offsets.clone();
            (
                Pattern::Open {
                    schedule,
                    max_concurrency: point.max_concurrency,
                },
                Some(offsets),
            )
        }
    };
    let spec = LoadSpec {
        pattern,
        stop,
        warmup: point.warmup,
        cooldown: point.cooldown,
        slo: point.slo.clone(),
    };
    let hash_count = match (stop, &offsets_for_hash) {
        (_, Some(o)) => o.len() as u64,
        (Stop::Requests(n), None) => n,
        (Stop::Duration(_), None) => 0,
    };
    let shape = format!(
        "{} warmup={:?} cooldown={:?}",
        describe(point, stop),
        point.warmup,
        point.cooldown
    );
    let schedule_hash = workload.digest(&shape, hash_count, offsets_for_hash.as_deref());
    let primes = prime(ctx, workload).await?;
    ctx.say(&describe(point, stop));
    let before = ctx.engine.client_tally().totals();
    let report = loadgen::run(ctx.engine, workload, &spec, &ctx.tally).await;
    let sent = ctx.engine.client_tally().totals().since(&before);
    Ok(Measured {
        report,
        schedule_hash,
        expected_prefix_hit_rate: workload
            .expected_prefix_hit_rate(sent.succeeded + sent.failed, primes),
    })
}

/// Sends the shared prefixes' priming requests, one after another; how many.
async fn prime(ctx: &BenchContext<'_>, workload: &Workload) -> Result<u64, BenchError> {
    let primes = workload.priming();
    if primes.is_empty() {
        return Ok(0);
    }
    ctx.say(&format!("priming {} shared prefixes", primes.len()));
    for (g, request) in primes.iter().enumerate() {
        ctx.engine
            .generate(request)
            .await
            .map_err(|e| BenchError::Failed(format!("priming shared prefix {g}: {e}")))?;
    }
    Ok(primes.len() as u64)
}

fn describe(point: &Point, stop: Stop) -> String {
    let shape = match (point.concurrency, point.rate) {
        (Some(c), _) => format!("closed loop, {c} in flight"),
        (_, Some(r)) => format!(
            "open loop, {r}/s {:?}{}",
            point.arrival,
            point
                .max_concurrency
                .map_or(String::new(), |m| format!(", at most {m} in flight"))
        ),
        _ => String::new(),
    };
    let extent = match stop {
        Stop::Requests(n) => format!("{n} requests"),
        Stop::Duration(d) => format!("{d:?}"),
    };
    format!("load: {shape}, {extent}")
}

/// Sets the load-point metrics beyond the latency ones.
pub fn report_point(outcome: &mut Outcome, m: &Measured) {
    let r = &m.report;
    report_load(outcome, r);
    outcome.set("send_rate", r.send_rate());
    // Goodput and throughput are completion rates over one window, so goodput ≤ throughput
    // and their ratio is the share of successful requests that met every objective.
    outcome.set("goodput", r.goodput());
    outcome.set(
        "goodput_ratio",
        if r.ok > 0 {
            r.good as f64 / r.ok as f64
        } else {
            0.0
        },
    );
    outcome.set("concurrency_mean", r.concurrency_mean);
    outcome.set("concurrency_max", r.concurrency_max as f64);
    if let Some(rate) = m.expected_prefix_hit_rate {
        outcome.set("expected_prefix_cache_hit_rate", rate);
    }
    if let Some(q) = r.queue_wait.summary() {
        outcome.set("queue_wait_p99_ms", q.p99);
    }
    outcome
        .outputs
        .insert("schedule_hash".into(), m.schedule_hash.clone().into());
    outcome.detail(
        "concurrency_timeline",
        r.timeline
            .iter()
            .map(|(t, n)| json!([t, n]))
            .collect::<Vec<_>>(),
    );
}

/// The metrics `report_point` adds, for the catalog.
pub const POINT_METRICS: [(&str, &str, bool); 7] = [
    ("expected_prefix_cache_hit_rate", "ratio", true),
    ("send_rate", "requests/s", true),
    ("goodput", "requests/s", true),
    ("goodput_ratio", "ratio", true),
    ("concurrency_mean", "requests", true),
    ("concurrency_max", "requests", true),
    ("queue_wait_p99_ms", "ms", false),
];

pub async fn execute(ctx: &BenchContext<'_>, params: &Value) -> Result<Outcome, BenchError> {
    let p: LoadParams = params::parse(params)?;
    let workload = Workload::new(&p.workload, ctx).await?;
    let point = p.extent.point(p.concurrency, p.rate, &p.slo);
    let measured = run_point(ctx, &workload, p.workload.seed, &point).await?;
    let mut outcome = Outcome::default();
    report_point(&mut outcome, &measured);
    Ok(outcome)
}
