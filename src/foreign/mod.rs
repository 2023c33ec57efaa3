//! Other tools' result files read into the store as runs of their own, with their metrics
//! under kitt's names (the mapping tables are in each tool's module and in
//! `docs/open-data.md`), so `results compare`, `report --runs` and `results trend` put them
//! beside kitt's runs. What does not map is kept in the leg's details and said.

pub mod guidellm;
mod json;
pub mod vllm;

use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::bench::samples::{self, Sample};
use crate::registry::Direction;
use crate::store::{MetricRecord, NodeRecord, NodeStatus, RunRecord, RunStatus, Store};

/// Largest result file read, in bytes.
pub const MAX_FILE: u64 = 256 * 1024 * 1024;

/// Which tool wrote a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tool {
    /// `vllm bench serve --save-result` (and `benchmarks/benchmark_serving.py`).
    Vllm,
    /// GuideLLM's JSON report (`guidellm benchmark --output-path report.json`).
    Guidellm,
}

impl Tool {
    /// The suite name imported runs get unless one is given.
    pub fn default_suite(self) -> &'static str {
        match self {
            Tool::Vllm => "vllm-bench-serve",
            Tool::Guidellm => "guidellm",
        }
    }
}

/// One metric's mapping: the tool's name, kitt's, its unit, whether higher is better, and
/// the factor from the tool's unit to kitt's.
#[derive(Debug, Clone, Copy)]
pub struct Mapping {
    pub from: &'static str,
    pub to: &'static str,
    pub unit: &'static str,
    pub higher: bool,
    pub scale: f64,
}

/// A leg read from a foreign file, before it is stored.
#[derive(Debug, Default)]
pub struct Leg {
    pub name: String,
    pub model: Option<String>,
    pub engine: String,
    pub params: Value,
    pub metrics: Vec<MetricRecord>,
    pub samples: Vec<Sample>,
    /// The tool's metrics kitt has no name for.
    pub unmapped: Vec<String>,
    pub started_at: Option<f64>,
    pub seconds: Option<f64>,
}

/// A run read from a foreign file.
#[derive(Debug, Default)]
pub struct Run {
    pub started_at: f64,
    /// The tool and its version, as far as the file says.
    pub tool_version: String,
    pub legs: Vec<Leg>,
}

/// What an import did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Imported {
    pub runs: Vec<String>,
    /// Files whose contents were imported before (the same bytes, the same suite).
    pub already_present: Vec<String>,
    /// Per run, the tool's metrics that have no kitt name.
    pub unmapped: Vec<String>,
}

/// Where imported runs go: the suite they are stored under and, to line a one-benchmark
/// file up with a kitt node for `results compare`, the leg name.
#[derive(Debug, Clone, Copy, Default)]
pub struct Naming<'a> {
    pub suite: Option<&'a str>,
    pub leg: Option<&'a str>,
}

/// Reads `file` as `tool` wrote it and stores its runs as `naming` says.
pub fn import(
    store: &mut Store,
    tool: Tool,
    file: &Path,
    naming: Naming<'_>,
) -> anyhow::Result<Imported> {
    let suite = naming.suite;
    let bytes = crate::fsio::read_bytes(file, MAX_FILE)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let suite = suite.unwrap_or(tool.default_suite());
    let mut imported = Imported::default();
    let existing = store.runs(Some(suite), usize::MAX >> 1)?;
    if let Some(r) = existing.iter().find(|r| r.digest == digest) {
        imported.already_present.push(r.id.clone());
        return Ok(imported);
    }
    let text = crate::fsio::utf8(bytes).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let documents = json::documents(&text).map_err(|e| {
        crate::exit::usage(format!(
            "{}: not a {tool:?} result file: {e}",
            file.display()
        ))
    })?;
    let mut runs = Vec::new();
    for (line, doc) in documents {
        let run = match tool {
            Tool::Vllm => vllm::read(&doc),
            Tool::Guidellm => guidellm::read(&doc),
        }
        .map_err(|e| crate::exit::usage(format!("{}:{line}: {e}", file.display())))?;
        let mut run = run;
        if let Some(leg) = naming.leg {
            if run.legs.len() != 1 {
                return Err(crate::exit::usage(format!(
                    "{}:{line}: --leg names a run's one leg, and this one has {} ({}); leave --leg out",
                    file.display(),
                    run.legs.len(),
                    run.legs
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            run.legs[0].name = leg.to_string();
        }
        runs.push(run);
    }
    for run in runs {
        let id = crate::engine::runtime::new_run_id();
        store.insert_run(&RunRecord {
            id: id.clone(),
            suite: suite.to_string(),
            suite_version: run.tool_version.clone(),
            suite_path: file.display().to_string(),
            digest: digest.clone(),
            git_commit: None,
            git_dirty: None,
            started_at: run.started_at,
            ended_at: run
                .legs
                .iter()
                .filter_map(|l| Some(l.started_at? + l.seconds?))
                .reduce(f64::max),
            status: RunStatus::Succeeded,
            kitt_version: env!("CARGO_PKG_VERSION").to_string(),
            fingerprint: "unknown".into(),
            fingerprint_summary: format!(
                "imported from {}; the machine is not recorded",
                run.tool_version
            ),
            params: json!({}),
            owner: None,
            heartbeat_at: None,
        })?;
        for leg in &run.legs {
            let spec: String = Sha256::digest(leg.params.to_string().as_bytes())
                .iter()
                .take(8)
                .map(|b| format!("{b:02x}"))
                .collect();
            let node = NodeRecord {
                run_id: id.clone(),
                leg: leg.name.clone(),
                node: leg.name.clone(),
                benchmark: suite.to_string(),
                benchmark_version: run.tool_version.clone(),
                engine: leg.engine.clone(),
                engine_uses: "imported".into(),
                image: None,
                image_digest: None,
                model: leg.model.clone(),
                params: leg.params.clone(),
                spec_hash: spec,
                status: NodeStatus::Succeeded,
                attempts: 1,
                errors: vec![],
                outputs: json!({}),
                details: json!({"imported_from": {"tool": run.tool_version, "file": file.display().to_string()},
                                "unmapped_metrics": leg.unmapped}),
                started_at: leg.started_at,
                ended_at: leg.started_at.zip(leg.seconds).map(|(a, s)| a + s),
                seconds: leg.seconds,
            };
            let encoded = samples::encode(&leg.samples);
            let kept = (!leg.samples.is_empty()).then_some((
                samples::FORMAT,
                leg.samples.len() as u64,
                encoded.as_slice(),
            ));
            store.put_node(&node, &leg.metrics, &[], kept)?;
            if !leg.unmapped.is_empty() {
                imported
                    .unmapped
                    .push(format!("{id} {}: {}", leg.name, leg.unmapped.join(", ")));
            }
        }
        imported.runs.push(id);
    }
    Ok(imported)
}

/// The metrics of `object` named in `table`, in kitt's names and units.
fn mapped(object: &serde_json::Map<String, Value>, table: &[Mapping]) -> Vec<MetricRecord> {
    table
        .iter()
        .filter_map(|m| {
            let value = object.get(m.from)?.as_f64()?;
            Some(metric(m.to, value * m.scale, m.unit, m.higher))
        })
        .collect()
}

fn metric(name: &str, value: f64, unit: &str, higher: bool) -> MetricRecord {
    MetricRecord {
        name: name.to_string(),
        value,
        unit: unit.to_string(),
        direction: if higher {
            Direction::Higher
        } else {
            Direction::Lower
        },
    }
}

/// A value in seconds as milliseconds (NaN when absent).
fn seconds_to_ms(v: Option<&Value>) -> f32 {
    v.and_then(Value::as_f64)
        .map_or(f32::NAN, |s| (s * 1000.0) as f32)
}
