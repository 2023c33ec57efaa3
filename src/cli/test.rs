//! `kitt test list | show | run`: the registered benchmarks, one benchmark's params and
//! metrics, and one benchmark run against one engine outside a suite.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Map, Value};

use indexmap::IndexMap;

use super::engine_flags::{EngineFlags, key_values};
use crate::bench;
use crate::exit;
use crate::registry::{BenchmarkInfo, Registered, Registry};
use crate::runner::progress::Progress;
use crate::store::RunStatus;
use crate::suite::model::{RunIf, Sampling, Warmup};
use crate::suite::plan::LegInput;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// List the registered benchmarks.
    List {
        /// Only this category: performance, quality_standard, quality_custom.
        #[arg(long)]
        category: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one benchmark: its params with defaults, and the metrics it reports.
    Show {
        name: String,
        /// Print JSON (the registry entry, params schema included).
        #[arg(long)]
        json: bool,
    },
    /// Run one benchmark against one engine: start it, warm up, measure, stop it.
    Run(Box<RunArgs>),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The benchmark (`kitt test list`).
    name: String,
    /// The registered engine to run it on (`kitt engines list`).
    #[arg(long, default_value = "simulator")]
    engine: String,
    #[command(flatten)]
    flags: EngineFlags,
    /// A benchmark param as KEY=VALUE (JSON values allowed), repeatable.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Warmup requests before measuring.
    #[arg(long, default_value_t = 0)]
    warmup: u32,
    /// Sampling max_tokens for requests that do not set their own.
    #[arg(long)]
    max_tokens: Option<u32>,
    /// Directory relative dataset paths start from (default: the current one).
    #[arg(long)]
    base_dir: Option<PathBuf>,
    /// Whose metric names the engine's `/metrics` page uses (vllm, sglang, tgi, llama.cpp),
    /// for an engine kitt knows no page of, such as `openai`.
    #[arg(long, value_name = "NAME")]
    metrics: Option<String>,
    /// Neither scrape the engine's metrics nor read GPU or CPU power during the leg.
    #[arg(long)]
    no_telemetry: bool,
    /// Between two telemetry samples (default 1s, at least 100ms).
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    telemetry_interval: Option<crate::suite::model::Duration>,
    /// Print the whole result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, globals: &super::Globals) -> anyhow::Result<u8> {
    let registry = globals.registry_for(None);
    match args.command {
        Sub::List { category, json } => list(&registry, category.as_deref(), json),
        Sub::Show { name, json } => show(&registry, &name, json),
        Sub::Run(run) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            // On a worker thread, the run polls its sockets on the thread that reads them.
            let registry = Arc::new(registry);
            let work = runtime.spawn(async move {
                crate::process::interrupt::install();
                run_one(registry, *run).await
            });
            runtime
                .block_on(work)
                .context("the benchmark's task failed")?
        }
    }
}

#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    version: &'a str,
    category: String,
    description: &'a str,
    origin: String,
    params: Vec<String>,
    metrics: Vec<&'a str>,
}

fn list(registry: &Registry, category: Option<&str>, json: bool) -> anyhow::Result<u8> {
    let categories = ["performance", "quality_standard", "quality_custom"];
    if let Some(c) = category
        && !categories.contains(&c)
    {
        crate::errln!(
            "error: no category `{c}`; categories: {}",
            categories.join(", ")
        );
        return Ok(exit::USAGE);
    }
    let rows: Vec<Listed> = registry
        .benchmarks
        .iter()
        .filter(|b| category.is_none_or(|c| b.info.category.to_string() == c))
        .map(|b| Listed {
            name: &b.info.name,
            version: &b.info.version,
            category: b.info.category.to_string(),
            description: &b.info.description,
            origin: b.origin.to_string(),
            params: param_rows(&b.info.params_schema)
                .into_iter()
                .map(|p| p.name)
                .collect(),
            metrics: b.info.metrics.iter().map(|m| m.name.as_str()).collect(),
        })
        .collect();
    let mut out = crate::output::stdout();
    if json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(exit::OK);
    }
    writeln!(
        out,
        "{:<16} {:<8} {:<17} DESCRIPTION",
        "BENCHMARK", "VERSION", "CATEGORY"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:<16} {:<8} {:<17} {}",
            r.name, r.version, r.category, r.description
        )?;
        writeln!(out, "{:<43} params: {}", "", r.params.join(", "))?;
        writeln!(out, "{:<43} metrics: {}", "", summarize_metrics(&r.metrics))?;
    }
    Ok(exit::OK)
}

/// Metric names, with the latency family folded into one entry.
fn summarize_metrics(names: &[&str]) -> String {
    let latency = names.iter().filter(|n| n.starts_with("ttft_p50")).count() > 0
        && names.contains(&"e2e_max_ms");
    let mut shown: Vec<String> = Vec::new();
    if latency {
        shown.push("{ttft,ttfo,itl,tpot,e2e}_{mean,p50,p90,p95,p99,max}_ms".into());
    }
    for n in names {
        let in_family = latency && crate::bench::performance::is_latency_metric(n);
        if !in_family {
            shown.push(n.to_string());
        }
    }
    shown.join(", ")
}

/// One param as `kitt test show` prints it.
#[derive(Debug, Serialize)]
struct ParamRow {
    name: String,
    kind: String,
    default: Option<String>,
    description: String,
}

fn type_of(schema: &Value) -> String {
    if let Some(c) = schema.get("const") {
        return c.as_str().map_or(c.to_string(), str::to_string);
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(|v| v.as_str().map_or(v.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    if let Some(branches) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        return branches.iter().map(type_of).collect::<Vec<_>>().join(" | ");
    }
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => match schema.get("items") {
            Some(items) => format!("list of {}", type_of(items)),
            None => "list".into(),
        },
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => "any".into(),
    }
}

fn param_rows(schema: &Value) -> Vec<ParamRow> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, s)| ParamRow {
                    name: name.clone(),
                    kind: type_of(s),
                    default: s.get("default").map(|d| d.to_string()).or_else(|| {
                        required
                            .contains(&name.as_str())
                            .then(|| "(required)".to_string())
                    }),
                    description: s
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .replace('\n', " "),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn find<'a>(registry: &'a Registry, name: &str) -> Option<&'a Registered<BenchmarkInfo>> {
    let found = registry.benchmarks.get(name);
    if found.is_none() {
        crate::errln!(
            "error: no benchmark named `{name}`; {}",
            registry.benchmarks.unknown_hint(name)
        );
    }
    found
}

fn show(registry: &Registry, name: &str, json: bool) -> anyhow::Result<u8> {
    let Some(entry) = find(registry, name) else {
        return Ok(exit::USAGE);
    };
    let info = &entry.info;
    let mut out = crate::output::stdout();
    if json {
        serde_json::to_writer_pretty(&mut out, info)?;
        writeln!(out)?;
        return Ok(exit::OK);
    }
    writeln!(out, "{} {} ({})", info.name, info.version, info.category)?;
    writeln!(out, "{}", info.description)?;
    writeln!(out, "origin: {}", entry.origin)?;
    writeln!(out, "\nPARAMS")?;
    for p in param_rows(&info.params_schema) {
        writeln!(
            out,
            "  {:<22} {:<28} {:<12} {}",
            p.name,
            p.kind,
            p.default.as_deref().unwrap_or("-"),
            p.description
        )?;
    }
    writeln!(out, "\nMETRICS")?;
    for m in &info.metrics {
        let better = match m.direction {
            crate::registry::Direction::Higher => "higher is better",
            crate::registry::Direction::Lower => "lower is better",
        };
        writeln!(out, "  {:<34} {:<11} {better}", m.name, m.unit)?;
    }
    for prefix in &info.dynamic_metric_prefixes {
        writeln!(out, "  {prefix}<N>{:<24} (one per param value)", "")?;
    }
    writeln!(out, "\nOUTPUTS\n  {}", info.outputs.join(", "))?;
    Ok(exit::OK)
}

/// Runs one benchmark on one engine: a one-leg plan through the same runner as a suite,
/// its params checked before any engine starts.
async fn run_one(registry: Arc<Registry>, args: RunArgs) -> anyhow::Result<u8> {
    let Some(entry) = find(&registry, &args.name) else {
        return Ok(exit::USAGE);
    };
    let params = Value::Object(key_values(&args.params, "--param")?);
    // Params are checked before an engine is started (which can take minutes).
    if let Err(e) = bench::check_params(entry, &params) {
        crate::errln!("error: `{}`: {e}", args.name);
        return Ok(exit::USAGE);
    }
    let mut spec = args.flags.spec(&args.engine)?;
    if let Some(name) = &args.metrics {
        let naming = serde_json::from_value(Value::String(name.clone())).map_err(|_| {
            anyhow::anyhow!(
                "--metrics `{name}`: kitt reads the names of vllm, sglang, tgi or llama.cpp"
            )
        })?;
        spec.telemetry = Some(crate::suite::model::Telemetry {
            metrics: Some(naming),
            ..Default::default()
        });
    }
    let base_dir = match args.base_dir {
        Some(d) => d,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let leg = LegInput {
        id: args.name.clone(),
        node: args.name.clone(),
        benchmark: args.name.clone(),
        engine: spec.uses.clone(),
        needs: Vec::new(),
        run_if: RunIf::Success,
        fail_fast: false,
        max_parallel: None,
        matrix: Map::new(),
        params,
        sampling: Sampling {
            max_tokens: args.max_tokens,
            ..Sampling::default()
        },
        warmup: Warmup {
            requests: Some(args.warmup),
            duration: None,
        },
        telemetry: crate::suite::model::Telemetry {
            interval: args.telemetry_interval,
            server: args.no_telemetry.then_some(false),
            gpu: args.no_telemetry.then_some(false),
            ..Default::default()
        },
        timeout: None,
        attempts: 1,
        backoff: None,
        asserts: IndexMap::new(),
    };
    let finished = crate::runner::run_one(
        registry.clone(),
        leg,
        spec,
        base_dir,
        Progress::new(true),
        crate::process::interrupt::interrupted(),
    )
    .await?;
    if finished.status == RunStatus::Interrupted || crate::process::interrupt::seen() {
        return Ok(exit::INTERRUPTED);
    }
    let result = match finished.results.into_iter().next() {
        Some((_, Ok(result))) => result,
        Some((_, Err(e))) => {
            crate::errln!("error: `{}`: {e}", args.name);
            return Ok(exit::FAILED);
        }
        None => {
            // It never ran: its engine did not start.
            for f in &finished.failures {
                crate::errln!("error: {f}");
            }
            return Ok(if finished.engines_unavailable {
                exit::UNAVAILABLE
            } else {
                exit::FAILED
            });
        }
    };
    print_result(&result, args.json)?;
    Ok(if result.passed {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// A benchmark's result: whole as JSON, or its metrics, string outputs, errors and warnings.
fn print_result(result: &bench::BenchResult, json: bool) -> anyhow::Result<()> {
    let mut out = crate::output::stdout();
    if json {
        serde_json::to_writer_pretty(&mut out, result)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} {}: {}",
        result.test_name,
        result.test_version,
        if result.passed { "passed" } else { "FAILED" }
    )?;
    for m in &result.metrics {
        writeln!(out, "  {:<34} {:>14.3} {}", m.name, m.value, m.unit)?;
    }
    for (k, v) in result.outputs.iter().filter(|(_, v)| v.is_string()) {
        writeln!(out, "  {k}: {}", v.as_str().unwrap_or_default())?;
    }
    for e in &result.errors {
        writeln!(out, "  error: {e}")?;
    }
    let warnings = result
        .details
        .get("engine_warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    for w in warnings {
        writeln!(out, "  warning: {w}")?;
    }
    Ok(())
}

/// A telemetry interval such as `250ms`, at least the shortest kitt samples at.
fn parse_interval(text: &str) -> Result<crate::suite::model::Duration, String> {
    let d: crate::suite::model::Duration = serde_json::from_value(Value::String(text.into()))
        .map_err(|_| format!("`{text}` is no duration such as 500ms or 2s"))?;
    let least = crate::suite::model::MIN_TELEMETRY_INTERVAL;
    if d.0 < least {
        return Err(format!(
            "{:?} is below the shortest interval, {least:?}",
            d.0
        ));
    }
    Ok(d)
}
