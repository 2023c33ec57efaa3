//! `sweep`: load points over concurrency or rate, and the highest one that meets the SLOs,
//! found by walking the values in order and, optionally, bisecting the first breach.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::load::{self, ExtentParams, Point};
use crate::bench::loadgen::RequestSlo;
use crate::bench::workload::{Workload, WorkloadParams};
use crate::bench::{BenchContext, BenchError, Outcome, params};
use crate::registry::Direction;

/// What a sweep varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Over {
    Concurrency,
    Rate,
}

/// Params of `sweep`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SweepParams {
    #[serde(flatten)]
    pub workload: WorkloadParams,
    /// The swept variable.
    pub over: Over,
    /// Its values, walked in ascending order.
    #[schemars(length(min = 1, max = 1000))]
    pub values: Vec<f64>,
    /// Per point: length and open-loop settings, as in `load`.
    #[serde(flatten)]
    pub extent: ExtentParams,
    /// Aggregate objectives: a `load` metric → its bound (the highest accepted value of a
    /// lower-is-better metric, the lowest of a higher-is-better one).
    #[serde(default)]
    pub slo: IndexMap<String, f64>,
    /// Per-request objectives for each point's goodput.
    #[serde(default)]
    pub request_slo: RequestSlo,
    /// Bisection steps between the last passing and the first breaching value.
    #[serde(default)]
    #[schemars(range(max = 10))]
    pub refine: u32,
    /// Stop at the first breach (default) or measure every value.
    #[serde(default = "yes")]
    pub stop_on_breach: bool,
}

fn yes() -> bool {
    true
}

/// One measured point of the curve.
#[derive(Debug, Clone, Serialize)]
struct CurvePoint {
    value: f64,
    passed: bool,
    breaches: Vec<String>,
    metrics: IndexMap<String, f64>,
}

/// The load metrics and their directions (what `slo` may name).
pub fn slo_metrics() -> Vec<(String, Direction)> {
    let dir = |higher| {
        if higher {
            Direction::Higher
        } else {
            Direction::Lower
        }
    };
    let mut all: Vec<(String, Direction)> = super::load_metric_names()
        .into_iter()
        .map(|(n, _, h)| (n, dir(h)))
        .collect();
    all.extend(
        load::POINT_METRICS
            .iter()
            .map(|(n, _, h)| (n.to_string(), dir(*h))),
    );
    all
}

/// Metrics kept per curve point.
const CURVE_METRICS: [&str; 10] = [
    "requests_per_s",
    "send_rate",
    "output_tokens_per_s",
    "goodput",
    "error_rate",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "tpot_p50_ms",
    "e2e_p99_ms",
    "concurrency_mean",
];

pub async fn execute(ctx: &BenchContext<'_>, params: &Value) -> Result<Outcome, BenchError> {
    let p: SweepParams = params::parse(params)?;
    let known = slo_metrics();
    let mut slo = Vec::new();
    for (name, bound) in &p.slo {
        let Some((_, direction)) = known.iter().find(|(n, _)| n == name) else {
            return Err(BenchError::params(format!(
                "`slo.{name}` is not a load metric; see `kitt test show load`"
            )));
        };
        slo.push((name.clone(), *bound, *direction));
    }
    let mut values = p.values.clone();
    values.sort_by(f64::total_cmp);
    values.dedup();
    if p.over == Over::Concurrency
        && values
            .iter()
            .any(|v| v.fract() != 0.0 || *v < 1.0 || *v > 100_000.0)
    {
        return Err(BenchError::params(
            "concurrency values are whole numbers from 1 to 100000",
        ));
    }
    // Latency of failed requests is not measured: a point where requests fail breaches
    // unless the SLOs say how many failures are acceptable.
    if !slo.iter().any(|(n, _, _)| n == "error_rate") {
        slo.push(("error_rate".into(), 0.0, Direction::Lower));
    }
    let workload = Workload::new(&p.workload, ctx).await?;
    let mut curve: Vec<CurvePoint> = Vec::new();
    let mut best: Option<(f64, Outcome)> = None;
    let mut first_breach: Option<f64> = None;
    let mut hashes = Vec::new();
    let mut point_errors: Vec<String> = Vec::new();
    let mut stop_reason = "every value was measured".to_string();
    let mut client = ClientCost::default();

    let mut points_sent = 0u64;
    let mut measure = async |value: f64| -> Result<(CurvePoint, Outcome), BenchError> {
        let point = point_for(&p, value);
        points_sent += 1;
        let workload = workload.salted(points_sent);
        let measured = load::run_point(ctx, &workload, p.workload.seed, &point).await?;
        let mut o = Outcome::default();
        load::report_point(&mut o, &measured);
        client.add(&o, &super::client_limits(&measured.report), p.over, value);
        hashes.push(measured.schedule_hash.clone());
        let breaches = breaches(&o, &slo);
        point_errors.extend(
            o.errors
                .iter()
                .map(|e| format!("{:?} {value}: {e}", p.over)),
        );
        let metrics = CURVE_METRICS
            .iter()
            .filter_map(|m| o.get(m).map(|v| (m.to_string(), v)))
            .collect();
        let passed = breaches.is_empty() && o.passed;
        ctx.say(&format!(
            "  {:?} {value}: {}",
            p.over,
            if passed {
                "meets the SLOs".to_string()
            } else {
                format!("breach: {}", breaches.join(", "))
            }
        ));
        Ok((
            CurvePoint {
                value,
                passed,
                breaches,
                metrics,
            },
            o,
        ))
    };

    for &value in &values {
        let (point, o) = measure(value).await?;
        let passed = point.passed;
        curve.push(point);
        if passed {
            if first_breach.is_none() {
                best = Some((value, o));
            }
        } else if first_breach.is_none() {
            first_breach = Some(value);
            if p.stop_on_breach {
                stop_reason = format!("{:?} {value} breached the SLOs", p.over);
                break;
            }
        }
    }
    // Bisect between the last passing value and the first breach.
    if let (Some(hi), Some((lo, _))) = (first_breach, best.as_ref().map(|(v, _)| (*v, ()))) {
        let (mut lo, mut hi) = (lo, hi);
        for _ in 0..p.refine {
            let mid = match p.over {
                Over::Concurrency => ((lo + hi) / 2.0).floor(),
                Over::Rate => (lo + hi) / 2.0,
            };
            if mid <= lo || mid >= hi {
                break;
            }
            let (point, o) = measure(mid).await?;
            if point.passed {
                lo = mid;
                best = Some((mid, o));
            } else {
                hi = mid;
            }
            curve.push(point);
        }
        if p.refine > 0 {
            stop_reason = format!(
                "{stop_reason}; refined to {:?} {lo} (passes) .. {hi} (breaches)",
                p.over
            );
        }
    }
    curve.sort_by(|a, b| a.value.total_cmp(&b.value));

    let mut outcome = Outcome::default();
    let (best_value, best_rate, best_concurrency) = match &best {
        Some((v, o)) => {
            let rate = o.get("requests_per_s").unwrap_or(0.0);
            let conc = match p.over {
                Over::Concurrency => *v,
                Over::Rate => o.get("concurrency_max").unwrap_or(0.0),
            };
            (*v, rate, conc)
        }
        None => (0.0, 0.0, 0.0),
    };
    if best.is_none() {
        stop_reason = format!("no value met the SLOs; {stop_reason}");
    }
    outcome.set("max_value", best_value);
    outcome.set("max_rate", best_rate);
    outcome.set("max_concurrency", best_concurrency);
    // A concurrency is a whole number, and later nodes take it as one (a `load` at the
    // concurrency found): the outputs say `2`, not `2.0`.
    outcome.outputs.insert(
        "max_concurrency".into(),
        json!(best_concurrency.max(0.0).round() as u64),
    );
    if p.over == Over::Concurrency {
        outcome.outputs.insert(
            "max_value".into(),
            json!(best_value.max(0.0).round() as u64),
        );
    }
    outcome.set("points", curve.len() as f64);
    outcome
        .outputs
        .insert("stop_reason".into(), json!(stop_reason));
    outcome.outputs.insert("over".into(), json!(p.over));
    client.report(&mut outcome);
    outcome.detail("curve", &curve);
    outcome.detail("schedule_hashes", &hashes);
    outcome.errors = point_errors;
    outcome.passed = best.is_some();
    if best.is_none() {
        outcome
            .errors
            .insert(0, format!("no {} value met the SLOs", over_name(p.over)));
    }
    Ok(outcome)
}

/// The client's cost over all points: the highest of each figure, and every point where
/// the client was the bottleneck.
#[derive(Default)]
struct ClientCost {
    highest: Vec<(&'static str, f64)>,
    limits: Vec<String>,
}

impl ClientCost {
    const METRICS: [&'static str; 4] = [
        "client_cpu_ms_per_request",
        "client_cpu_cores",
        "client_loop_busy",
        "send_lag_p99_ms",
    ];

    fn add(&mut self, point: &Outcome, limits: &[String], over: Over, value: f64) {
        for name in Self::METRICS {
            if let Some(v) = point.get(name) {
                match self.highest.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, h)) => *h = h.max(v),
                    None => self.highest.push((name, v)),
                }
            }
        }
        self.limits
            .extend(limits.iter().map(|why| format!("{over:?} {value}: {why}")));
    }

    fn report(&self, outcome: &mut Outcome) {
        for (name, v) in &self.highest {
            outcome.set(name, *v);
        }
        super::mark_client_limits(outcome, &self.limits);
    }
}

fn over_name(over: Over) -> &'static str {
    match over {
        Over::Concurrency => "concurrency",
        Over::Rate => "rate",
    }
}

fn point_for(p: &SweepParams, value: f64) -> Point {
    match p.over {
        Over::Concurrency => {
            let mut point = p.extent.point(Some(value as u32), None, &p.request_slo);
            point.max_concurrency = None;
            point
        }
        Over::Rate => p.extent.point(None, Some(value), &p.request_slo),
    }
}

/// Which SLOs a point breaks, as `metric value vs bound` text.
fn breaches(o: &Outcome, slo: &[(String, f64, Direction)]) -> Vec<String> {
    slo.iter()
        .filter_map(|(name, bound, direction)| match o.get(name) {
            None => Some(format!("{name} not measured")),
            Some(v) => {
                let ok = match direction {
                    Direction::Lower => v <= *bound,
                    Direction::Higher => v >= *bound,
                };
                (!ok).then(|| {
                    let op = if *direction == Direction::Lower {
                        "<="
                    } else {
                        ">="
                    };
                    format!("{name} {v:.3} (needs {op} {bound})")
                })
            }
        })
        .collect()
}
