//! From a checked suite to the legs a run executes: each leg's engine spec with suite params
//! rendered, its node settings, and the hash of its resolved spec (for `diff`, `--resume`
//! and `--only-changed`).

use indexmap::IndexMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::registry::Registry;
use crate::suite::matrix::LegPolicy;
use crate::suite::model::{Bound, EngineSpec, RunIf, Sampling, Warmup};
use crate::suite::render::{ParamValues, render_value};
use crate::suite::validate::CheckedSuite;

/// One leg, ready to run once its needs are met.
#[derive(Debug, Clone)]
pub struct PreparedLeg {
    pub id: String,
    pub node: String,
    pub benchmark: String,
    pub benchmark_version: String,
    pub performance: bool,
    pub engine: String,
    /// Params with suite params and matrix values rendered; node outputs still `${{ }}`.
    pub params: Value,
    pub needs: Vec<String>,
    pub run_if: RunIf,
    pub policy: Option<LegPolicy>,
    pub sampling: Sampling,
    pub warmup: Warmup,
    pub timeout: Option<std::time::Duration>,
    pub attempts: u32,
    pub backoff: std::time::Duration,
    pub asserts: IndexMap<String, Bound>,
    pub spec_hash: String,
}

/// How long a leg may run when its node sets no `timeout`.
pub const DEFAULT_NODE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

/// The legs and engines of a run.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub legs: Vec<PreparedLeg>,
    /// Engine specs with suite params rendered, by instance name.
    pub engines: IndexMap<String, EngineSpec>,
    pub parallelism: usize,
}

/// Renders every suite param in an engine spec.
fn render_engine(spec: &EngineSpec, params: &ParamValues) -> anyhow::Result<EngineSpec> {
    let value = serde_json::to_value(spec)?;
    let (rendered, deferred) = render_value(&value, params, None);
    if let Some(p) = deferred.first() {
        anyhow::bail!("engine setting {p} refers to something unknown before the run");
    }
    Ok(serde_json::from_value(rendered)?)
}

/// A short sha256 of a JSON value's canonical text.
fn hash(value: &Value) -> String {
    let digest = Sha256::digest(value.to_string().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Prepares the legs of a checked suite.
pub fn prepare(checked: &CheckedSuite, registry: &Registry) -> anyhow::Result<Prepared> {
    let params: ParamValues = checked
        .params
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    let mut engines = IndexMap::new();
    for (name, spec) in &checked.suite.engines {
        engines.insert(name.clone(), render_engine(spec, &params)?);
    }
    let mut legs = Vec::new();
    for leg in &checked.legs {
        let body = &checked.suite.nodes[leg.node_index].body;
        let entry = registry
            .benchmarks
            .get(&leg.benchmark)
            .ok_or_else(|| anyhow::anyhow!("benchmark `{}` is not registered", leg.benchmark))?;
        let engine = engines
            .get(&leg.engine)
            .ok_or_else(|| anyhow::anyhow!("engine `{}` is not declared", leg.engine))?;
        let sampling = body.sampling.clone().unwrap_or_default();
        let warmup = body.warmup.clone().unwrap_or_default();
        let spec = json!({
            "benchmark": leg.benchmark,
            "version": entry.info.version,
            "params": leg.params,
            "engine": engine,
            "sampling": sampling,
            "warmup": warmup,
        });
        let retry = body.retry.clone();
        legs.push(PreparedLeg {
            id: leg.id.clone(),
            node: leg.node.clone(),
            benchmark: leg.benchmark.clone(),
            benchmark_version: entry.info.version.clone(),
            performance: entry.info.category == crate::registry::Category::Performance,
            engine: leg.engine.clone(),
            params: Value::Object(leg.params.clone()),
            needs: leg.needs.clone(),
            run_if: leg.run_if,
            policy: leg.policy,
            sampling,
            warmup,
            timeout: Some(body.timeout.map_or(DEFAULT_NODE_TIMEOUT, |d| d.0)),
            attempts: retry.as_ref().map_or(1, |r| r.attempts.max(1)),
            backoff: retry
                .and_then(|r| r.backoff)
                .map_or(std::time::Duration::from_secs(5), |d| d.0),
            asserts: body.assert.clone(),
            spec_hash: hash(&spec),
        });
    }
    Ok(Prepared {
        legs,
        engines,
        parallelism: checked.suite.parallelism.unwrap_or(1).max(1) as usize,
    })
}

impl Prepared {
    /// Indices of the legs of node `id`.
    pub fn legs_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.legs
            .iter()
            .enumerate()
            .filter(move |(_, l)| l.node == node)
            .map(|(i, _)| i)
    }

    /// The legs in `selected` and every leg that needs them, directly or not.
    pub fn with_dependents(&self, selected: &[usize]) -> Vec<usize> {
        let mut nodes: Vec<&str> = selected
            .iter()
            .map(|&i| self.legs[i].node.as_str())
            .collect();
        let mut out: Vec<usize> = selected.to_vec();
        loop {
            let before = out.len();
            for (i, leg) in self.legs.iter().enumerate() {
                if !out.contains(&i) && leg.needs.iter().any(|n| nodes.contains(&n.as_str())) {
                    out.push(i);
                    nodes.push(&leg.node);
                }
            }
            if out.len() == before {
                break;
            }
        }
        out.sort_unstable();
        out
    }
}
