//! The report context: one versioned document about a stored run — run, suite, verdict,
//! nodes with params, metrics (unit, direction) and asserts, engines, fingerprint. Every
//! template renders from it, and the `json` reporter writes it as it is
//! (`schemas/results.schema.json`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::store::read::RunResults;
use crate::store::time::format_utc;
use crate::store::{AssertRecord, MetricRecord, NodeStatus, RunStatus, SeriesRecord};

/// The version of this document's shape.
pub const FORMAT_VERSION: u32 = 1;

/// Everything a report shows about one run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Report {
    pub format_version: u32,
    pub run: RunInfo,
    pub suite: SuiteInfo,
    /// passed, failed or interrupted.
    pub verdict: String,
    pub counts: Counts,
    /// Breached asserts, failed nodes first.
    pub failed_asserts: Vec<FailedAssert>,
    pub nodes: Vec<Node>,
    /// Benchmarks that ran on more than one engine.
    pub side_by_side: Vec<SideBySide>,
    pub engines: Vec<Engine>,
    pub fingerprint: Fingerprint,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RunInfo {
    pub id: String,
    pub status: RunStatus,
    /// UTC, `YYYY-MM-DD HH:MM:SS`.
    pub started: String,
    pub ended: Option<String>,
    pub seconds: Option<f64>,
    pub kitt_version: String,
    pub suite_path: String,
    pub suite_digest: String,
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    pub params: Value,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SuiteInfo {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct Counts {
    pub nodes: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    pub cancelled: usize,
    pub reused: usize,
    pub asserts: usize,
    pub asserts_failed: usize,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FailedAssert {
    pub node: String,
    pub metric: String,
    pub measured: Option<f64>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Node {
    /// `node` or `node[axis=value]`.
    pub id: String,
    pub node: String,
    pub benchmark: String,
    pub benchmark_version: String,
    pub engine: String,
    pub status: NodeStatus,
    pub seconds: Option<f64>,
    pub params: Value,
    pub errors: Vec<String>,
    pub outputs: Value,
    pub metrics: Vec<MetricRecord>,
    /// Metric name → value, for templates.
    pub values: BTreeMap<String, f64>,
    pub asserts: Vec<AssertRecord>,
    /// Sweeps: each measured point (`value`, `passed`, `breaches`, `metrics`).
    pub curve: Option<Value>,
    /// What makes the figures less than they seem, e.g. kitt's client was the bottleneck.
    pub warnings: Vec<String>,
    /// The leg's telemetry time series on one time axis; absent when it sampled none.
    pub telemetry: Option<Telemetry>,
}

/// A leg's telemetry series, for charts on one time axis.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Telemetry {
    /// The last sample's time: the axis runs from 0 to here, in seconds.
    pub window_s: f64,
    pub series: Vec<TelemetrySeries>,
}

/// One series with its largest value, so a template can scale it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TelemetrySeries {
    #[serde(flatten)]
    pub series: SeriesRecord,
    /// The largest value, at least 1e-9 so a template can divide by it.
    pub max: f64,
}

impl Telemetry {
    /// The charts' view of a leg's stored series; none when no series has a point.
    fn of(series: &[SeriesRecord]) -> Option<Telemetry> {
        let last = |s: &SeriesRecord| s.points.last().map(|p| p.0);
        let window_s = series
            .iter()
            .filter_map(last)
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))))?;
        let series = series
            .iter()
            .filter(|s| !s.points.is_empty())
            .map(|s| TelemetrySeries {
                max: s.points.iter().map(|p| p.1).fold(1e-9, f64::max),
                series: s.clone(),
            })
            .collect();
        Some(Telemetry {
            window_s: window_s.max(1e-9),
            series,
        })
    }
}

/// Nodes running the same benchmark on different engines, to show side by side.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SideBySide {
    pub benchmark: String,
    /// Node ids, one per engine.
    pub nodes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Engine {
    pub name: String,
    pub uses: String,
    pub image: Option<String>,
    pub image_digest: Option<String>,
    pub model: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Fingerprint {
    pub hash: String,
    pub summary: String,
}

impl Report {
    /// The report of a stored run.
    pub fn from_results(r: &RunResults) -> Report {
        let run = &r.run;
        let mut counts = Counts {
            nodes: r.nodes.len(),
            ..Counts::default()
        };
        let mut failed_asserts = Vec::new();
        let mut engines: Vec<Engine> = Vec::new();
        let mut nodes = Vec::new();
        for n in &r.nodes {
            let node = &n.node;
            match node.status {
                NodeStatus::Succeeded => counts.succeeded += 1,
                NodeStatus::Failed => counts.failed += 1,
                NodeStatus::Skipped => counts.skipped += 1,
                NodeStatus::Cancelled => counts.cancelled += 1,
                NodeStatus::Reused => counts.reused += 1,
                NodeStatus::Running | NodeStatus::Abandoned => {}
            }
            counts.asserts += n.asserts.len();
            for a in n.asserts.iter().filter(|a| !a.passed) {
                counts.asserts_failed += 1;
                failed_asserts.push(FailedAssert {
                    node: node.leg.clone(),
                    metric: a.metric.clone(),
                    measured: a.measured,
                    message: a.message.clone(),
                });
            }
            if !engines.iter().any(|e| e.name == node.engine) {
                engines.push(Engine {
                    name: node.engine.clone(),
                    uses: node.engine_uses.clone(),
                    image: node.image.clone(),
                    image_digest: node.image_digest.clone(),
                    model: node.model.clone(),
                });
            }
            nodes.push(Node {
                id: node.leg.clone(),
                node: node.node.clone(),
                benchmark: node.benchmark.clone(),
                benchmark_version: node.benchmark_version.clone(),
                engine: node.engine.clone(),
                status: node.status,
                seconds: node.seconds,
                params: node.params.clone(),
                errors: node.errors.clone(),
                outputs: node.outputs.clone(),
                metrics: n.metrics.clone(),
                values: n
                    .metrics
                    .iter()
                    .map(|m| (m.name.clone(), m.value))
                    .collect(),
                asserts: n.asserts.clone(),
                curve: node.details.get("curve").cloned(),
                warnings: warnings(&node.details),
                telemetry: Telemetry::of(&n.series),
            });
        }
        let verdict = match run.status {
            RunStatus::Succeeded => "passed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Running | RunStatus::Abandoned => "incomplete",
            RunStatus::Failed => "failed",
        };
        let mut side_by_side: Vec<SideBySide> = Vec::new();
        for n in &nodes {
            let engines_of = |b: &str| {
                let mut e: Vec<&str> = nodes
                    .iter()
                    .filter(|m| m.benchmark == b)
                    .map(|m| m.engine.as_str())
                    .collect();
                e.sort_unstable();
                e.dedup();
                e.len()
            };
            if engines_of(&n.benchmark) > 1 {
                match side_by_side.iter_mut().find(|s| s.benchmark == n.benchmark) {
                    Some(s) => s.nodes.push(n.id.clone()),
                    None => side_by_side.push(SideBySide {
                        benchmark: n.benchmark.clone(),
                        nodes: vec![n.id.clone()],
                    }),
                }
            }
        }
        Report {
            format_version: FORMAT_VERSION,
            run: RunInfo {
                id: run.id.clone(),
                status: run.status,
                started: format_utc(run.started_at),
                ended: run.ended_at.map(format_utc),
                seconds: run.ended_at.map(|e| e - run.started_at),
                kitt_version: run.kitt_version.clone(),
                suite_path: run.suite_path.clone(),
                suite_digest: run.digest.clone(),
                git_commit: run.git_commit.clone(),
                git_dirty: run.git_dirty,
                params: run.params.clone(),
            },
            suite: SuiteInfo {
                name: run.suite.clone(),
                version: run.suite_version.clone(),
            },
            verdict: verdict.into(),
            counts,
            failed_asserts,
            nodes,
            side_by_side,
            engines,
            fingerprint: Fingerprint {
                hash: run.fingerprint.clone(),
                summary: run.fingerprint_summary.clone(),
            },
        }
    }
}

/// The committed results schema (a test keeps it equal to what the types generate).
pub const RESULTS_SCHEMA: &str = include_str!("../../schemas/results.schema.json");

/// Generates the results document's JSON Schema.
pub fn generate_schema() -> Value {
    crate::suite::schema::generate::<Report>()
}

/// A node's warnings, from what its benchmark recorded in the details.
fn warnings(details: &Value) -> Vec<String> {
    let mut out: Vec<String> = details
        .get("engine_warnings")
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Some(why) = details.get("client_limited").and_then(Value::as_array) {
        let why: Vec<&str> = why.iter().filter_map(Value::as_str).collect();
        out.push(format!(
            "client_limited: kitt's client, not the engine, was the bottleneck, so these figures describe the client ({})",
            why.join("; ")
        ));
    }
    out
}
