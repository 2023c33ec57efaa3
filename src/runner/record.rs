//! What a leg becomes when it ends: its store row, its metrics and assert verdicts, and its
//! line in the summary — built here, in one place, whether it ran, was skipped, failed before
//! it could start, was cancelled or was carried over.

use serde_json::{Map, Value};

use super::asserts;
use crate::bench::{BenchError, BenchResult};
use crate::store::{AssertRecord, MetricRecord, NodeRecord, NodeStatus};
use crate::suite::plan::{PlannedEngine, PlannedLeg};

/// One line of the final summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SummaryRow {
    pub leg: String,
    pub benchmark: String,
    pub engine: String,
    pub status: NodeStatus,
    /// Key metrics when it succeeded, else why not.
    pub key_metrics: String,
    /// `held/total`, empty without asserts.
    pub asserts: String,
    pub seconds: Option<f64>,
}

/// How a leg ended, with everything that is stored about it.
#[derive(Debug, Clone)]
pub struct Ending {
    pub status: NodeStatus,
    pub params: Value,
    pub attempts: u32,
    pub errors: Vec<String>,
    pub outputs: Map<String, Value>,
    pub details: Map<String, Value>,
    pub metrics: Vec<MetricRecord>,
    pub asserts: Vec<AssertRecord>,
    /// Unix seconds, when it ran.
    pub started: Option<f64>,
    pub ended: Option<f64>,
    pub image_digest: Option<String>,
}

impl Ending {
    /// A leg that ends without running (skipped, failed before it could start, cancelled),
    /// or that is running now (`NodeStatus::Running`, the row written when it starts).
    pub fn without_result(status: NodeStatus, leg: &PlannedLeg, reason: Option<&str>) -> Ending {
        Ending {
            status,
            params: leg.params.clone(),
            attempts: 0,
            errors: reason.map(str::to_string).into_iter().collect(),
            outputs: Map::new(),
            details: Map::new(),
            metrics: Vec::new(),
            asserts: Vec::new(),
            started: None,
            ended: None,
            image_digest: None,
        }
    }

    /// A leg whose benchmark returned a result: metrics with units and directions, asserts
    /// checked (ratio bounds against `baseline`), succeeded only when the benchmark passed
    /// and every assert held.
    pub fn from_result(
        leg: &PlannedLeg,
        params: Value,
        result: &BenchResult,
        baseline: Option<(&str, &[MetricRecord])>,
    ) -> Ending {
        let metrics: Vec<MetricRecord> = result
            .metrics
            .iter()
            .map(|m| MetricRecord {
                name: m.name.clone(),
                value: m.value,
                unit: m.unit.clone(),
                direction: m.direction,
            })
            .collect();
        let verdicts = asserts::evaluate(&leg.asserts, &metrics, baseline);
        let mut errors = result.errors.clone();
        errors.extend(
            verdicts
                .iter()
                .filter(|a| !a.passed)
                .map(|a| format!("assert: {}", a.message)),
        );
        let ok = result.passed && verdicts.iter().all(|a| a.passed);
        let mut details = result.details.clone();
        details.insert(
            "warmup".into(),
            serde_json::to_value(&result.warmup).unwrap_or_default(),
        );
        Ending {
            status: if ok {
                NodeStatus::Succeeded
            } else {
                NodeStatus::Failed
            },
            params,
            attempts: 0,
            errors,
            outputs: result.outputs.clone(),
            details,
            metrics,
            asserts: verdicts,
            started: None,
            ended: None,
            image_digest: None,
        }
    }

    /// The asserts that did not hold, as `leg: message`.
    pub fn breaches(&self, leg: &PlannedLeg) -> Vec<String> {
        self.asserts
            .iter()
            .filter(|a| !a.passed)
            .map(|a| format!("{}: {}", leg.id, a.message))
            .collect()
    }

    /// Its row in the store.
    pub fn record(&self, run_id: &str, leg: &PlannedLeg, engine: &PlannedEngine) -> NodeRecord {
        NodeRecord {
            run_id: run_id.to_string(),
            leg: leg.id.clone(),
            node: leg.node.clone(),
            benchmark: leg.benchmark.clone(),
            benchmark_version: leg.benchmark_version.clone(),
            engine: leg.engine.clone(),
            engine_uses: engine.uses.clone(),
            image: engine.spec.image.clone(),
            image_digest: self.image_digest.clone(),
            model: engine.spec.model.clone(),
            params: self.params.clone(),
            spec_hash: leg.spec_hash.clone(),
            status: self.status,
            attempts: self.attempts,
            errors: self.errors.clone(),
            outputs: Value::Object(self.outputs.clone()),
            details: Value::Object(self.details.clone()),
            started_at: self.started,
            ended_at: self.ended,
            seconds: self.started.zip(self.ended).map(|(s, e)| e - s),
        }
    }

    /// Its line in the summary: key metrics when it succeeded, else its first error.
    pub fn summary_row(&self, leg: &PlannedLeg) -> SummaryRow {
        let key_metrics = if self.status == NodeStatus::Succeeded {
            key_metrics(&self.outputs, &self.metrics)
        } else {
            self.errors.first().cloned().unwrap_or_default()
        };
        let asserts = if self.asserts.is_empty() {
            String::new()
        } else {
            let held = self.asserts.iter().filter(|a| a.passed).count();
            format!("{held}/{} held", self.asserts.len())
        };
        SummaryRow {
            leg: leg.id.clone(),
            benchmark: leg.benchmark.clone(),
            engine: leg.engine.clone(),
            status: self.status,
            key_metrics,
            asserts,
            seconds: self.started.zip(self.ended).map(|(s, e)| e - s),
        }
    }
}

/// The line of a leg carried over from an earlier run.
pub fn carried_row(leg: &PlannedLeg, from: &str) -> SummaryRow {
    SummaryRow {
        leg: leg.id.clone(),
        benchmark: leg.benchmark.clone(),
        engine: leg.engine.clone(),
        status: NodeStatus::Reused,
        key_metrics: format!("from run {from}"),
        asserts: String::new(),
        seconds: None,
    }
}

/// The numbers a person looks at first: the benchmark's numeric outputs, else accuracy or
/// throughput.
pub fn key_metrics(outputs: &Map<String, Value>, metrics: &[MetricRecord]) -> String {
    let mut parts: Vec<String> = outputs
        .iter()
        .filter_map(|(k, v)| v.as_f64().map(|n| format!("{k} {}", short(n))))
        .take(3)
        .collect();
    if parts.is_empty() {
        parts = metrics
            .iter()
            .filter(|m| ["accuracy", "requests_per_s", "ttft_p50_ms"].contains(&m.name.as_str()))
            .map(|m| format!("{} {}", m.name, short(m.value)))
            .collect();
    }
    parts.join(", ")
}

fn short(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// A benchmark's error in words; a params error that points into the node's params gets the
/// suite's `file:line:col` of that place.
pub fn located(error: &BenchError, node: &str, locate: &super::Locator) -> String {
    let at = match error {
        BenchError::Params {
            pointer: Some(pointer),
            ..
        } => locate(node, pointer),
        _ => None,
    };
    match at {
        Some(at) => format!("{error} ({at})"),
        None => error.to_string(),
    }
}
