//! The benchmark contract carried over from the original KITT: static facts in the registry,
//! `run` = warmup iterations + the benchmark's own `execute`, and the result it returns.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

use super::dataset::DatasetError;
use super::{performance, quality, workload};
use crate::engine::RunningEngine;
use crate::engine::client::ClientError;
use crate::engine::generation::GenerationRequest;
use crate::engine::runtime::docker::Progress;
use crate::registry::{BenchmarkInfo, Direction, Registered};
use crate::suite::model::{Sampling, Warmup};

/// How a registered benchmark executes.
#[derive(Debug, Clone, Default)]
pub enum Driver {
    /// Static facts only (test fixtures): running it is an error.
    #[default]
    None,
    Throughput,
    Latency,
    Load,
    Sweep,
    WarmupAnalysis,
    LongContext,
    Memory,
    Quality(quality::Standard),
    Custom,
    /// A benchmark plugin (a subprocess speaking the plugin protocol).
    Plugin(Arc<crate::plugin::PluginRef>),
}

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

/// Why a benchmark could not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("params: {0}")]
    Params(String),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("engine: {0}")]
    Engine(#[from] ClientError),
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
    values: Vec<(String, f64)>,
    dynamic: Vec<Metric>,
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

/// Runs a benchmark: checks params against its schema, sends the warmup requests, then
/// executes it and attaches units and directions to what it measured.
pub async fn run(
    entry: &Registered<BenchmarkInfo>,
    ctx: &BenchContext<'_>,
    params: &Value,
) -> Result<BenchResult, BenchError> {
    let info = &entry.info;
    check_params(entry, params)?;
    let started = Instant::now();
    let warmup = if matches!(info.driver, Driver::WarmupAnalysis) {
        WarmupSummary {
            skipped: Some("warmup_analysis measures the cold start itself".into()),
            ..WarmupSummary::default()
        }
    } else {
        warm_up(ctx, params).await
    };
    let outcome = execute(&info.driver, &info.name, ctx, params).await?;
    let mut result = assemble(info, outcome, warmup, started.elapsed());
    // What the engine did not do as asked: its setup notes, and the sampling settings it
    // ignores. Performance workloads ask for fixed output lengths (`ignore_eos`).
    let mut sampling = ctx.sampling.clone();
    if info.category == crate::registry::Category::Performance {
        sampling.ignore_eos = Some(true);
    }
    let warnings = ctx.engine.warnings(&sampling);
    if !warnings.is_empty() {
        result
            .details
            .insert("engine_warnings".into(), serde_json::json!(warnings));
    }
    Ok(result)
}

/// Checks params against the benchmark's schema, naming each problem and where it is.
pub fn check_params(entry: &Registered<BenchmarkInfo>, params: &Value) -> Result<(), BenchError> {
    let validator = entry
        .validator(&entry.info.params_schema)
        .map_err(|e| BenchError::Params(e.to_string()))?;
    let problems: Vec<String> = validator
        .iter_errors(params)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(BenchError::Params(format!(
            "`{}` params do not fit its schema: {} (see `kitt test show {}`)",
            entry.info.name,
            problems.join("; "),
            entry.info.name
        )))
    }
}

async fn execute(
    driver: &Driver,
    name: &str,
    ctx: &BenchContext<'_>,
    params: &Value,
) -> Result<Outcome, BenchError> {
    match driver {
        Driver::None => Err(BenchError::Failed(format!(
            "benchmark `{name}` has no implementation in this build"
        ))),
        Driver::Throughput => performance::throughput::execute(ctx, params).await,
        Driver::Latency => performance::throughput::execute_latency(ctx, params).await,
        Driver::Load => performance::load::execute(ctx, params).await,
        Driver::Sweep => performance::sweep::execute(ctx, params).await,
        Driver::WarmupAnalysis => performance::warmup_analysis::execute(ctx, params).await,
        Driver::LongContext => performance::long_context::execute(ctx, params).await,
        Driver::Memory => performance::memory::execute(ctx, params).await,
        Driver::Quality(standard) => quality::standard::execute(*standard, ctx, params).await,
        Driver::Custom => quality::custom::execute(ctx, params).await,
        Driver::Plugin(plugin) => crate::plugin::benchmark::execute(plugin, ctx, params).await,
    }
}

/// Sends the node's warmup requests (a count, or for a duration), shaped like the benchmark's
/// own when it has workload params.
async fn warm_up(ctx: &BenchContext<'_>, params: &Value) -> WarmupSummary {
    let count = ctx.warmup.requests.map(u64::from).unwrap_or(0);
    let until = ctx.warmup.duration.map(|d| d.0);
    if count == 0 && until.is_none() {
        return WarmupSummary::default();
    }
    let words = params
        .get("input_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(32)
        .min(100_000) as u32;
    let max_tokens = params
        .get("output_tokens")
        .and_then(Value::as_u64)
        .map(|n| n.min(u64::from(u32::MAX)) as u32)
        .or(ctx.sampling.max_tokens)
        .unwrap_or(16);
    let mut sampling = ctx.sampling.clone();
    sampling.max_tokens = Some(max_tokens);
    let request = GenerationRequest {
        sampling,
        ..GenerationRequest::chat(workload::synthetic_text(words, 0xA11))
    };
    ctx.say(&format!(
        "warmup: {}",
        match until {
            Some(d) => format!("{d:?}"),
            None => format!("{count} requests"),
        }
    ));
    let started = Instant::now();
    let mut summary = WarmupSummary::default();
    loop {
        let done = match until {
            Some(d) => started.elapsed() >= d && summary.requests >= count,
            None => summary.requests >= count,
        };
        if done {
            break;
        }
        summary.requests += 1;
        if ctx.engine.generate(&request).await.is_err() {
            summary.errors += 1;
        }
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary
}

/// Attaches units and directions; outputs that are metrics are filled in by name.
fn assemble(
    info: &BenchmarkInfo,
    outcome: Outcome,
    warmup: WarmupSummary,
    took: Duration,
) -> BenchResult {
    let mut errors = outcome.errors;
    let mut metrics: Vec<Metric> = Vec::new();
    for (name, value) in outcome.values {
        match info.metrics.iter().find(|m| m.name == name) {
            Some(m) => {
                metrics.retain(|x| x.name != name);
                metrics.push(Metric {
                    name,
                    value,
                    unit: m.unit.clone(),
                    direction: m.direction,
                });
            }
            None => errors.push(format!(
                "internal: `{}` reported the undeclared metric `{name}`",
                info.name
            )),
        }
    }
    metrics.extend(outcome.dynamic);
    let mut outputs = outcome.outputs;
    for name in &info.outputs {
        if !outputs.contains_key(name)
            && let Some(m) = metrics.iter().find(|m| &m.name == name)
        {
            outputs.insert(name.clone(), serde_json::json!(m.value));
        }
    }
    BenchResult {
        test_name: info.name.clone(),
        test_version: info.version.clone(),
        passed: outcome.passed,
        metrics,
        outputs,
        errors,
        warmup,
        seconds: took.as_secs_f64(),
        details: outcome.details,
        samples: outcome.samples,
    }
}
