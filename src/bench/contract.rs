//! The benchmark contract carried over from the original KITT: what a benchmark gets to work
//! with, the outcome its `execute` returns, the result `run` makes of it, and its errors.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::{Map, Value};

use super::dataset::DatasetError;
use crate::engine::RunningEngine;
use crate::engine::client::ClientError;
use crate::engine::runtime::docker::Progress;
use crate::registry::Direction;
use crate::suite::model::{Sampling, Warmup};

/// What a benchmark gets to work with.
#[derive(Clone)]
pub struct BenchContext<'a> {
    pub engine: &'a RunningEngine,
    /// The node's sampling settings (suite defaults merged).
    pub sampling: Sampling,
    /// Requests sent before `execute`, not measured.
    pub warmup: Warmup,
    /// Relative dataset paths start here (the suite's directory).
    pub base_dir: PathBuf,
    /// Downloaded datasets are kept here.
    pub cache_dir: PathBuf,
    /// Logs of this run (plugin stderr) go here.
    pub run_dir: PathBuf,
    /// Progress lines for people.
    pub progress: Progress,
    /// Requests or items done so far, and how many there will be, for progress bars.
    pub tally: Arc<Tally>,
    /// What telemetry a performance benchmark records beside its own measurements.
    pub telemetry: crate::telemetry::Settings,
    /// Sets this leg's synthetic prompts apart from every other leg's and run's, so no
    /// prefix cache serves one leg what another sent (the seed still fixes everything else).
    pub salt: u64,
}

/// Work done and expected, updated by a running benchmark and read by progress displays.
#[derive(Debug, Default)]
pub struct Tally {
    done: AtomicU64,
    total: AtomicU64,
}

impl Tally {
    pub fn set(&self, done: u64, total: Option<u64>) {
        self.done.store(done, Ordering::Relaxed);
        if let Some(t) = total {
            self.total.store(t, Ordering::Relaxed);
        }
    }

    /// (done, total); total is 0 when unknown.
    pub fn get(&self) -> (u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
        )
    }
}

impl BenchContext<'_> {
    pub fn say(&self, line: &str) {
        (self.progress)(line);
    }
}

impl BenchError {
    /// A params error without a known place.
    pub fn params(message: impl Into<String>) -> BenchError {
        BenchError::Params {
            message: message.into(),
            pointer: None,
        }
    }
}

/// Why a benchmark could not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The node's params cannot be used; `pointer` (a JSON pointer into them, e.g. `/prompt`)
    /// says where when it is known.
    #[error("params: {message}")]
    Params {
        message: String,
        pointer: Option<String>,
    },
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("engine: {0}")]
    Engine(#[from] ClientError),
    #[error("timed out after {0}")]
    TimedOut(crate::suite::model::Duration),
    #[error("{0}")]
    Failed(String),
}

/// One reported number with its unit and which way is better.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub direction: Direction,
}

/// What `execute` returns: metrics by name (units come from the declared metrics), outputs,
/// errors, details (curves, per-item records), and whether it passed.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub passed: bool,
    pub(super) values: Vec<(String, f64)>,
    pub(super) dynamic: Vec<Metric>,
    pub outputs: Map<String, Value>,
    pub errors: Vec<String>,
    pub details: Map<String, Value>,
    /// Per-request samples of a load, for the store.
    pub samples: Option<super::samples::Reservoir>,
}

impl Outcome {
    /// Sets a declared metric.
    pub fn set(&mut self, name: &str, value: f64) {
        self.values.push((name.to_string(), value));
    }

    /// Sets a metric whose name depends on params (declared by prefix).
    pub fn set_dynamic(&mut self, name: String, value: f64, unit: &str, direction: Direction) {
        self.dynamic.push(Metric {
            name,
            value,
            unit: unit.to_string(),
            direction,
        });
    }

    /// A set metric's value.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    pub fn detail(&mut self, key: &str, value: impl Serialize) {
        self.details.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
    }
}

/// What warmup did before measuring.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WarmupSummary {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    /// Why warmup was skipped, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// A benchmark's result: test name and version, verdict, metrics, outputs and errors.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub test_name: String,
    pub test_version: String,
    pub passed: bool,
    pub metrics: Vec<Metric>,
    pub outputs: Map<String, Value>,
    pub errors: Vec<String>,
    pub warmup: WarmupSummary,
    pub seconds: f64,
    pub details: Map<String, Value>,
    /// Per-request samples (load-generating benchmarks).
    #[serde(skip)]
    pub samples: Option<super::samples::Reservoir>,
    /// Server and client gauges over the measured window (performance benchmarks).
    #[serde(skip)]
    pub telemetry_series: Vec<crate::telemetry::Series>,
}

impl BenchResult {
    /// A metric's value by name.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    }
}
