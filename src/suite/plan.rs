//! The executable plan of a checked suite, the one projection `kitt plan` prints and
//! `kitt apply` executes: every leg with its rendered params, settings and spec hash, every
//! engine with its rendered spec, the GPUs it takes and the legs it serves, and the rules the
//! dispatcher obeys. An engine and its legs form a group that can be handed to an executor
//! whole; the groups a group's legs need are listed with it.

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::gpus;
use super::model::{
    Bound, Duration, EngineSpec, GpuRequest, RunIf, RuntimeMode, Sampling, Telemetry, Warmup,
};
use super::render::{ParamValues, render_value};
use super::validate::CheckedSuite;
use crate::registry::{Category, Registry};

/// The documented version of the plan's JSON shape.
pub const PLAN_FORMAT_VERSION: u32 = 2;

/// How long a leg may run when its node sets no `timeout`.
pub const DEFAULT_NODE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

/// Waited before a retry when a node's `retry` sets no `backoff` (doubling each time).
pub const DEFAULT_BACKOFF: std::time::Duration = std::time::Duration::from_secs(5);

/// The rules the dispatcher obeys, in words; `kitt plan` prints them with the plan.
pub const RULES: [&str; 5] = [
    "a leg starts once every leg of the nodes it needs has ended; its run_if decides whether it runs or is skipped",
    "legs running at a time: at most `parallelism`, and at most `max_parallel` of one matrix node",
    "a leg marked `alone` (a performance benchmark) never shares its engine with another running leg; other legs on one engine may run side by side",
    "an engine starts when its first leg is ready and its GPUs are free (or nothing else runs), and stops once its last leg has ended",
    "ready legs start in plan order",
];

/// Why a suite cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("engine `{engine}`: setting {setting} refers to something unknown before the run")]
    Deferred { engine: String, setting: String },
    #[error("engine `{engine}`: {reason}")]
    Engine { engine: String, reason: String },
    #[error("benchmark `{0}` is not registered")]
    UnknownBenchmark(String),
    #[error("engine `{0}` is not declared")]
    UnknownEngine(String),
}

/// What `kitt apply` does, and in what order.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub version: u32,
    pub suite: SuiteRef,
    /// Most legs that run at the same time.
    pub parallelism: usize,
    pub rules: Vec<&'static str>,
    /// Every leg, in plan order.
    pub legs: Vec<PlannedLeg>,
    /// Every engine some leg uses, in suite order.
    pub engines: Vec<PlannedEngine>,
    /// Legs by the length of their chain of needs (a view; the dispatcher goes by needs).
    pub stages: Vec<Stage>,
    /// Container images the docker-mode engines need.
    pub images: Vec<String>,
}

/// The suite a plan is for.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteRef {
    pub name: String,
    pub version: String,
}

/// One run of a benchmark on an engine, ready once its needs are met.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedLeg {
    /// `node` or `node[axis=value,...]`.
    pub id: String,
    pub node: String,
    /// 1 for legs that need nothing, else one more than the deepest leg they need.
    pub stage: usize,
    pub benchmark: String,
    pub benchmark_version: String,
    pub engine: String,
    /// Index of its engine in `Plan::engines`.
    #[serde(skip)]
    pub engine_index: usize,
    /// Runs alone on its engine (performance benchmarks measure the engine undisturbed).
    pub alone: bool,
    /// Ids of the nodes (not legs) it needs.
    pub needs: Vec<String>,
    /// Indices of the legs of those nodes.
    #[serde(skip)]
    pub needs_legs: Vec<usize>,
    pub run_if: RunIf,
    /// A failed sibling leg of the same matrix node skips this one.
    pub fail_fast: bool,
    /// Most legs of its node at once.
    pub max_parallel: Option<u32>,
    pub matrix: Map<String, Value>,
    /// Params with suite params and matrix values rendered; node outputs still `${{ }}`.
    pub params: Value,
    pub sampling: Sampling,
    pub warmup: Warmup,
    /// What a performance leg records beside the client's measurements.
    #[serde(skip_serializing_if = "Telemetry::is_unset")]
    pub telemetry: Telemetry,
    pub timeout: Duration,
    /// Tries in all (1: no retry); transient engine failures are retried.
    pub attempts: u32,
    /// Wait before the first retry, doubled before each next one.
    pub backoff: Duration,
    pub asserts: IndexMap<String, Bound>,
    /// Hash of the resolved spec (benchmark and version, params, engine, sampling, warmup),
    /// for `diff`, `--resume` and `--only-changed`.
    pub spec_hash: String,
}

/// An engine instance and the legs it serves: a group an executor runs whole.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedEngine {
    pub name: String,
    pub uses: String,
    pub mode: RuntimeMode,
    pub model: Option<String>,
    pub image: Option<String>,
    /// The GPUs it takes (counted by the scheduler; requested for its container).
    pub gpus: Option<GpuRequest>,
    /// The spec as written, suite params rendered (what its legs' spec hashes cover).
    pub spec: EngineSpec,
    /// Its legs, in plan order.
    pub legs: Vec<String>,
    #[serde(skip)]
    pub leg_indices: Vec<usize>,
    /// Engines whose legs some of its legs need (their groups end before those legs start).
    pub after: Vec<String>,
    pub first_stage: usize,
    pub last_stage: usize,
}

/// The legs of one stage.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub stage: usize,
    pub legs: Vec<String>,
}

/// Renders every suite param in an engine spec.
fn render_engine(
    name: &str,
    spec: &EngineSpec,
    params: &ParamValues,
) -> Result<EngineSpec, PlanError> {
    let engine_error = |reason: String| PlanError::Engine {
        engine: name.to_string(),
        reason,
    };
    let value = serde_json::to_value(spec).map_err(|e| engine_error(e.to_string()))?;
    let (rendered, deferred) = render_value(&value, params, None);
    if let Some(p) = deferred.first() {
        return Err(PlanError::Deferred {
            engine: name.to_string(),
            setting: p.clone(),
        });
    }
    serde_json::from_value(rendered).map_err(|e| engine_error(e.to_string()))
}

/// A short sha256 of a JSON value's canonical text.
fn hash(value: &Value) -> String {
    let digest = Sha256::digest(value.to_string().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds the plan of a checked suite. `machine_gpus` is the number of GPUs of this machine,
/// when known (engines that use a GPU when there is one take them all).
pub fn plan(
    checked: &CheckedSuite,
    registry: &Registry,
    machine_gpus: Option<usize>,
) -> Result<Plan, PlanError> {
    let params: ParamValues = checked
        .params
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    let mut builder = Builder::new(registry, machine_gpus);
    for leg in &checked.legs {
        let name = &leg.engine;
        if builder.engine_index(name).is_none() {
            let declared = checked
                .suite
                .engines
                .get(name)
                .ok_or_else(|| PlanError::UnknownEngine(name.clone()))?;
            let spec = render_engine(name, declared, &params)?;
            builder.add_engine(name, spec)?;
        }
        let body = &checked.suite.nodes[leg.node_index].body;
        let engine_telemetry = checked
            .suite
            .engines
            .get(name)
            .and_then(|e| e.telemetry.clone())
            .unwrap_or_default();
        let telemetry = body
            .telemetry
            .clone()
            .unwrap_or_default()
            .over(&engine_telemetry)
            .over(&checked.suite.telemetry.clone().unwrap_or_default());
        builder.add_leg(LegInput {
            telemetry,
            id: leg.id.clone(),
            node: leg.node.clone(),
            benchmark: leg.benchmark.clone(),
            engine: name.clone(),
            needs: leg.needs.clone(),
            run_if: leg.run_if,
            fail_fast: leg.policy.is_some_and(|p| p.fail_fast),
            max_parallel: leg.policy.and_then(|p| p.max_parallel),
            matrix: leg.matrix.clone(),
            params: Value::Object(leg.params.clone()),
            sampling: body.sampling.clone().unwrap_or_default(),
            warmup: body.warmup.clone().unwrap_or_default(),
            timeout: body.timeout.map(|d| d.0),
            attempts: body.retry.as_ref().map_or(1, |r| r.attempts.max(1)),
            backoff: body.retry.as_ref().and_then(|r| r.backoff).map(|d| d.0),
            asserts: body.assert.clone(),
        })?;
    }
    Ok(builder.finish(
        SuiteRef {
            name: checked.suite.metadata.name.clone(),
            version: checked.suite.metadata.version.clone(),
        },
        checked.suite.parallelism.unwrap_or(1).max(1) as usize,
    ))
}

/// What a leg is made of before the plan knows its place.
pub struct LegInput {
    pub id: String,
    pub node: String,
    pub benchmark: String,
    pub engine: String,
    pub needs: Vec<String>,
    pub run_if: RunIf,
    pub fail_fast: bool,
    pub max_parallel: Option<u32>,
    pub matrix: Map<String, Value>,
    pub params: Value,
    pub sampling: Sampling,
    pub warmup: Warmup,
    /// Its telemetry settings, node over engine over suite.
    pub telemetry: Telemetry,
    pub timeout: Option<std::time::Duration>,
    pub attempts: u32,
    pub backoff: Option<std::time::Duration>,
    pub asserts: IndexMap<String, Bound>,
}

/// Builds a plan leg by leg (a suite's, or the one leg of `kitt test run`).
pub struct Builder<'a> {
    registry: &'a Registry,
    machine_gpus: Option<usize>,
    legs: Vec<PlannedLeg>,
    engines: Vec<PlannedEngine>,
}

impl<'a> Builder<'a> {
    pub fn new(registry: &'a Registry, machine_gpus: Option<usize>) -> Self {
        Builder {
            registry,
            machine_gpus,
            legs: Vec::new(),
            engines: Vec::new(),
        }
    }

    fn engine_index(&self, name: &str) -> Option<usize> {
        self.engines.iter().position(|e| e.name == name)
    }

    /// Adds an engine instance with its rendered spec.
    pub fn add_engine(&mut self, name: &str, spec: EngineSpec) -> Result<(), PlanError> {
        let entry = self
            .registry
            .engines
            .get(&spec.uses)
            .ok_or_else(|| PlanError::Engine {
                engine: name.to_string(),
                reason: format!("no engine named `{}` is registered", spec.uses),
            })?;
        let info = &entry.info;
        let mode = spec
            .mode
            .or_else(|| info.modes.first().copied())
            .unwrap_or(RuntimeMode::External);
        let asked = spec.resources.as_ref().and_then(|r| r.gpus.clone());
        let gpus = match mode {
            // An external server's GPUs are not this machine's to count.
            RuntimeMode::External => None,
            _ => gpus::gpu_request(info, asked, self.machine_gpus).0,
        };
        let image = match mode {
            RuntimeMode::Docker => spec.image.clone().or_else(|| info.default_image.clone()),
            _ => None,
        };
        self.engines.push(PlannedEngine {
            name: name.to_string(),
            uses: info.name.clone(),
            mode,
            model: spec.model.clone(),
            image,
            gpus,
            spec,
            legs: Vec::new(),
            leg_indices: Vec::new(),
            after: Vec::new(),
            first_stage: 0,
            last_stage: 0,
        });
        Ok(())
    }

    /// Adds a leg on an engine added before.
    pub fn add_leg(&mut self, leg: LegInput) -> Result<(), PlanError> {
        let entry = self
            .registry
            .benchmarks
            .get(&leg.benchmark)
            .ok_or_else(|| PlanError::UnknownBenchmark(leg.benchmark.clone()))?;
        let engine_index = self
            .engine_index(&leg.engine)
            .ok_or_else(|| PlanError::UnknownEngine(leg.engine.clone()))?;
        let needs_legs: Vec<usize> = self
            .legs
            .iter()
            .enumerate()
            .filter(|(_, l)| leg.needs.contains(&l.node))
            .map(|(i, _)| i)
            .collect();
        let stage = needs_legs
            .iter()
            .map(|&i| self.legs[i].stage)
            .max()
            .unwrap_or(0)
            + 1;
        let engine = &mut self.engines[engine_index];
        let spec_hash = hash(&json!({
            "benchmark": leg.benchmark,
            "version": entry.info.version,
            "params": leg.params,
            "engine": engine.spec,
            "sampling": leg.sampling,
            "warmup": leg.warmup,
        }));
        let index = self.legs.len();
        engine.legs.push(leg.id.clone());
        engine.leg_indices.push(index);
        self.legs.push(PlannedLeg {
            id: leg.id,
            node: leg.node,
            stage,
            benchmark: leg.benchmark,
            benchmark_version: entry.info.version.clone(),
            engine: leg.engine,
            engine_index,
            alone: entry.info.category == Category::Performance,
            needs: leg.needs,
            needs_legs,
            run_if: leg.run_if,
            fail_fast: leg.fail_fast,
            max_parallel: leg.max_parallel,
            matrix: leg.matrix,
            params: leg.params,
            sampling: leg.sampling,
            warmup: leg.warmup,
            telemetry: leg.telemetry,
            timeout: Duration(leg.timeout.unwrap_or(DEFAULT_NODE_TIMEOUT)),
            attempts: leg.attempts.max(1),
            backoff: Duration(leg.backoff.unwrap_or(DEFAULT_BACKOFF)),
            asserts: leg.asserts,
            spec_hash,
        });
        Ok(())
    }

    /// The plan: engines that serve no leg left out, stages and groups' order filled in.
    pub fn finish(mut self, suite: SuiteRef, parallelism: usize) -> Plan {
        // Drop unused engines, renumbering the legs' engine indices.
        let used: Vec<usize> = (0..self.engines.len())
            .filter(|&e| !self.engines[e].leg_indices.is_empty())
            .collect();
        self.engines = used
            .iter()
            .map(|&e| self.engines[e].clone())
            .collect::<Vec<_>>();
        for leg in &mut self.legs {
            leg.engine_index = used
                .iter()
                .position(|&e| e == leg.engine_index)
                .unwrap_or(leg.engine_index);
        }
        for e in 0..self.engines.len() {
            let legs = &self.engines[e].leg_indices;
            let stages = legs.iter().map(|&i| self.legs[i].stage);
            let first = stages.clone().min().unwrap_or(1);
            let last = stages.max().unwrap_or(1);
            let mut after: Vec<String> = Vec::new();
            for &i in legs {
                for &j in &self.legs[i].needs_legs {
                    let other = &self.legs[j].engine;
                    if *other != self.engines[e].name && !after.contains(other) {
                        after.push(other.clone());
                    }
                }
            }
            let engine = &mut self.engines[e];
            engine.first_stage = first;
            engine.last_stage = last;
            engine.after = after;
        }
        let stage_count = self.legs.iter().map(|l| l.stage).max().unwrap_or(0);
        let stages = (1..=stage_count)
            .map(|stage| Stage {
                stage,
                legs: self
                    .legs
                    .iter()
                    .filter(|l| l.stage == stage)
                    .map(|l| l.id.clone())
                    .collect(),
            })
            .collect();
        let mut images: Vec<String> = self
            .engines
            .iter()
            .filter_map(|e| e.image.clone())
            .collect();
        images.sort();
        images.dedup();
        Plan {
            version: PLAN_FORMAT_VERSION,
            suite,
            parallelism: parallelism.max(1),
            rules: RULES.to_vec(),
            legs: self.legs,
            engines: self.engines,
            stages,
            images,
        }
    }
}

impl Plan {
    /// Number of legs in the plan.
    pub fn leg_count(&self) -> usize {
        self.legs.len()
    }

    /// Indices of the legs of node `node`.
    pub fn legs_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.legs
            .iter()
            .enumerate()
            .filter(move |(_, l)| l.node == node)
            .map(|(i, _)| i)
    }

    /// The legs in `selected` and every leg that needs them, directly or not.
    pub fn with_dependents(&self, selected: &[usize]) -> Vec<usize> {
        let mut out: Vec<usize> = selected.to_vec();
        loop {
            let before = out.len();
            for (i, leg) in self.legs.iter().enumerate() {
                if !out.contains(&i) && leg.needs_legs.iter().any(|j| out.contains(j)) {
                    out.push(i);
                }
            }
            if out.len() == before {
                break;
            }
        }
        out.sort_unstable();
        out
    }

    /// The GPUs engine `e` takes on a machine with `machine_gpus` of them.
    pub fn gpus_of(&self, e: usize, machine_gpus: usize) -> usize {
        gpus::count(self.engines[e].gpus.as_ref(), machine_gpus)
    }

    /// The plan as text for people.
    pub fn render_text(&self) -> String {
        let mut out = format!(
            "Plan for suite `{}` {}: {} run{} in {} stage{} (parallelism {})\n",
            self.suite.name,
            self.suite.version,
            self.leg_count(),
            plural(self.leg_count()),
            self.stages.len(),
            plural(self.stages.len()),
            self.parallelism
        );
        let width = self
            .legs
            .iter()
            .map(|l| l.id.chars().count())
            .max()
            .unwrap_or(0);
        for stage in &self.stages {
            out.push_str(&format!("\nstage {}\n", stage.stage));
            for e in self.engines.iter().filter(|e| e.first_stage == stage.stage) {
                out.push_str(&format!(
                    "  + start engine {} ({}, {}{})\n",
                    e.name,
                    e.uses,
                    e.mode,
                    describe_engine(e)
                ));
            }
            for leg in self.legs.iter().filter(|l| l.stage == stage.stage) {
                let needs = if leg.needs.is_empty() {
                    String::new()
                } else {
                    format!("  needs {}", leg.needs.join(", "))
                };
                let run_if = match leg.run_if {
                    RunIf::Success => String::new(),
                    RunIf::Failure => "  (runs if a needed node failed)".into(),
                    RunIf::Always => "  (runs always)".into(),
                };
                let alone = if leg.alone { "  alone" } else { "" };
                out.push_str(&format!(
                    "  - {:<width$}  {} on {}{alone}{needs}{run_if}\n",
                    leg.id, leg.benchmark, leg.engine
                ));
            }
            for e in self.engines.iter().filter(|e| e.last_stage == stage.stage) {
                out.push_str(&format!("  - stop engine {}\n", e.name));
            }
        }
        out.push_str(&format!(
            "\nImages needed: {}\n",
            if self.images.is_empty() {
                "none".to_string()
            } else {
                self.images.join(", ")
            }
        ));
        out.push_str("\nHow it runs:\n");
        for rule in &self.rules {
            let rule = rule.replace("`parallelism`", &self.parallelism.to_string());
            out.push_str(&format!("  - {rule}\n"));
        }
        out
    }

    /// The plan as a Graphviz digraph: legs as boxes, `needs` as edges, stages as ranks.
    pub fn render_dot(&self) -> String {
        let mut out = format!(
            "digraph {} {{\n  rankdir=LR;\n  node [shape=box];\n",
            quote(&self.suite.name)
        );
        for stage in &self.stages {
            out.push_str(&format!(
                "  subgraph cluster_stage_{} {{\n    label={};\n",
                stage.stage,
                quote(&format!("stage {}", stage.stage))
            ));
            for leg in self.legs.iter().filter(|l| l.stage == stage.stage) {
                out.push_str(&format!(
                    "    {} [label={}];\n",
                    quote(&leg.id),
                    quote(&format!("{}\n{} on {}", leg.id, leg.benchmark, leg.engine))
                ));
            }
            out.push_str("  }\n");
        }
        for leg in &self.legs {
            for &from in &leg.needs_legs {
                out.push_str(&format!(
                    "  {} -> {};\n",
                    quote(&self.legs[from].id),
                    quote(&leg.id)
                ));
            }
        }
        out.push_str("}\n");
        out
    }
}

impl PlannedEngine {
    /// The spec to start it with: as written, with the planned mode.
    pub fn launch_spec(&self) -> EngineSpec {
        EngineSpec {
            mode: Some(self.mode),
            ..self.spec.clone()
        }
    }
}

fn describe_engine(e: &PlannedEngine) -> String {
    let mut s = String::new();
    if let Some(m) = &e.model {
        s.push_str(&format!(", model {m}"));
    }
    if let Some(i) = &e.image {
        s.push_str(&format!(", image {i}"));
    }
    match &e.gpus {
        Some(GpuRequest::All(_)) => s.push_str(", all GPUs"),
        Some(GpuRequest::Count(n)) => s.push_str(&format!(", {n} GPU{}", plural(*n as usize))),
        Some(GpuRequest::Ids(ids)) => s.push_str(&format!(
            ", GPUs {}",
            ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        )),
        None => {}
    }
    s
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A Graphviz quoted id.
fn quote(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}
