//! Running a registered benchmark: its params checked against its schema, the warmup
//! requests, then its driver's `execute`, with units and directions attached to what it
//! measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::contract::{BenchContext, BenchError, BenchResult, Metric, Outcome, WarmupSummary};
use super::{performance, quality, workload};
use crate::engine::generation::GenerationRequest;
use crate::registry::{BenchmarkInfo, Registered};

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
    Embeddings,
    StructuredOutput,
    Conversation,
    TraceReplay,
    ToolCalls,
    Quality(quality::Standard),
    Custom,
    /// A benchmark plugin (a subprocess speaking the plugin protocol).
    Plugin(Arc<crate::plugin::PluginRef>),
}

impl Driver {
    /// The driver of a registered benchmark (`None` for one registered without one).
    pub fn of(info: &BenchmarkInfo) -> &Driver {
        static NONE: Driver = Driver::None;
        info.driver.get::<Driver>().unwrap_or(&NONE)
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
    let warmup = if matches!(Driver::of(info), Driver::WarmupAnalysis) {
        WarmupSummary {
            skipped: Some("warmup_analysis measures the cold start itself".into()),
            ..WarmupSummary::default()
        }
    } else {
        warm_up(ctx, params).await
    };
    // Performance benchmarks get the server's view of their measured window beside their own.
    let session = match info.category {
        crate::registry::Category::Performance => {
            Some(crate::telemetry::Session::start(ctx.engine, &ctx.telemetry).await)
        }
        _ => None,
    };
    let outcome = execute(Driver::of(info), &info.name, ctx, params).await?;
    let mut result = assemble(info, outcome, warmup, started.elapsed());
    if let Some(session) = session {
        attach_telemetry(&mut result, session.finish().await);
    }
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
        .map_err(|e| BenchError::params(e.to_string()))?;
    let mut first_place = None;
    let problems: Vec<String> = validator
        .iter_errors(params)
        .map(|e| {
            let at = e.instance_path().to_string();
            first_place.get_or_insert_with(|| at.clone());
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
        Err(BenchError::Params {
            message: format!(
                "`{}` params do not fit its schema: {} (see `kitt test show {}`)",
                entry.info.name,
                problems.join("; "),
                entry.info.name
            ),
            pointer: first_place,
        })
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
        Driver::Embeddings => performance::embeddings::execute(ctx, params).await,
        Driver::StructuredOutput => performance::structured::execute(ctx, params).await,
        Driver::Conversation => performance::conversation::execute(ctx, params).await,
        Driver::TraceReplay => performance::trace_replay::execute(ctx, params).await,
        Driver::ToolCalls => performance::tool_calls::execute(ctx, params).await,
        Driver::Quality(standard) => quality::standard::execute(*standard, ctx, params).await,
        Driver::Custom => quality::custom::execute(ctx, params).await,
        Driver::Plugin(plugin) => super::plugin::execute(plugin, ctx, params).await,
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

/// Adds a window's telemetry: its figures as metrics (a benchmark's own figure of the same
/// name wins), its notes under `details.telemetry`, its series for the store.
fn attach_telemetry(result: &mut BenchResult, telemetry: crate::telemetry::LegTelemetry) {
    for f in telemetry.figures {
        if result.metric(&f.name).is_none() {
            result.metrics.push(Metric {
                name: f.name,
                value: f.value,
                unit: f.unit.to_string(),
                direction: f.direction,
            });
        }
    }
    result
        .details
        .insert("telemetry".into(), Value::Object(telemetry.notes));
    result.telemetry_series = telemetry.series;
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
        telemetry_series: Vec::new(),
    }
}
