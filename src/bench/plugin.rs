//! Benchmark plugins (a subprocess or a wasm module) run as benchmarks: the node's context is
//! the plugin's host — its `generate` goes through the node's engine, so kitt's client still
//! measures — and the plugin's `run` answer becomes the benchmark's outcome.

use std::time::Duration;

use serde_json::{Value, json};

use super::contract::{BenchContext, BenchError, Outcome};
use crate::engine::generation::{Endpoint, GenerationRequest};
use crate::plugin::PluginRef;
use crate::plugin::error::PluginError;
use crate::plugin::host::Host;
use crate::plugin::manifest::Runtime;
use crate::plugin::protocol::RpcError;
use crate::plugin::subprocess::PluginProcess;
use crate::plugin::wasm::WasmPlugin;

/// A `run` may take this long unless the node's own timeout is shorter.
const RUN_DEADLINE: Duration = Duration::from_secs(6 * 3600);

impl Host for BenchContext<'_> {
    /// Serves a plugin's `generate` through the node's engine, so kitt's client measures it.
    async fn generate(&self, params: &Value) -> Result<Value, RpcError> {
        let prompt = params
            .get("prompt")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                RpcError::new(-32602, "generate needs a string `prompt`", "plugin", false)
            })?;
        let mut sampling = self.sampling.clone();
        if let Some(n) = params.get("max_tokens").and_then(Value::as_u64) {
            sampling.max_tokens = Some(n.min(u64::from(u32::MAX)) as u32);
        }
        if let Some(t) = params.get("temperature").and_then(Value::as_f64) {
            sampling.temperature = Some(t);
        }
        let endpoint = match params.get("endpoint").and_then(Value::as_str) {
            Some("completions") => Endpoint::Completions,
            _ => Endpoint::Chat,
        };
        let request = GenerationRequest {
            endpoint,
            prompt: prompt.to_string(),
            stream: true,
            sampling,
            ..GenerationRequest::default()
        };
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        match self.engine.generate(&request).await {
            Ok(r) => Ok(json!({
                "text": r.text,
                "finish_reason": r.finish_reason,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "count_source": r.count_source,
                "ttft_ms": ms(r.ttft),
                "ttfo_ms": ms(r.ttfo),
                "tpot_ms": ms(r.tpot()),
                "e2e_ms": r.e2e.as_secs_f64() * 1e3,
            })),
            Err(e) => Err(RpcError::new(
                -32000,
                e.to_string(),
                "infra",
                e.is_transient(),
            )),
        }
    }

    fn say(&self, line: &str) {
        (self.progress)(line);
    }

    fn progress(&self, done: u64, total: Option<u64>) {
        self.tally.set(done, total);
    }
}

/// Runs a benchmark plugin's `run` with the node's params, serving its host calls.
pub async fn execute(
    plugin: &PluginRef,
    ctx: &BenchContext<'_>,
    params: &Value,
) -> Result<Outcome, BenchError> {
    let request = run_params(ctx, params);
    let (answer, samples) = match &plugin.manifest.runtime {
        Runtime::Wasm { .. } => {
            let mut module = WasmPlugin::load(&plugin.dir, &plugin.manifest)
                .map_err(|e| BenchError::Failed(e.to_string()))?;
            let answer = module.call("run", request, ctx).await;
            (answer, module.take_samples())
        }
        _ => {
            let mut process = PluginProcess::start(&plugin.dir, &plugin.manifest, &ctx.run_dir)
                .await
                .map_err(|e| BenchError::Failed(e.to_string()))?;
            let answer = process.call("run", request, RUN_DEADLINE, ctx).await;
            let samples = process.take_samples();
            process.stop().await;
            (answer, samples)
        }
    };
    let result = match answer {
        Ok(v) => v,
        Err(PluginError::Reported { plugin, error, .. }) if error.kind() == "user" => {
            return Err(BenchError::Params {
                message: format!("plugin `{plugin}`: {}", error.message),
                pointer: error.data.as_ref().and_then(|d| d.pointer.clone()),
            });
        }
        Err(e) => return Err(BenchError::Failed(e.to_string())),
    };
    outcome(&plugin.manifest.name, &result, &samples)
}

/// The `run` request's params, as the subprocess transport sends them.
fn run_params(ctx: &BenchContext<'_>, params: &Value) -> Value {
    let engine = ctx.engine;
    json!({
        "params": params,
        "sampling": ctx.sampling,
        "engine": {"name": engine.name, "uses": engine.uses, "base_url": engine.base_url,
                   "model": engine.model},
    })
}

/// Reads a `run` result: `{passed, metrics: {name: number}, outputs, errors, details}`.
fn outcome(name: &str, result: &Value, samples: &[(String, f64)]) -> Result<Outcome, BenchError> {
    let bad = |what: &str| {
        BenchError::Failed(format!(
            "plugin `{name}` answered `run` without {what}: {}",
            result.to_string().chars().take(200).collect::<String>()
        ))
    };
    let mut out = Outcome {
        passed: result
            .get("passed")
            .and_then(Value::as_bool)
            .ok_or_else(|| bad("a boolean `passed`"))?,
        ..Outcome::default()
    };
    let metrics = result
        .get("metrics")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("an object `metrics`"))?;
    for (metric, value) in metrics {
        let v = value
            .as_f64()
            .ok_or_else(|| bad(&format!("a number for metric `{metric}`")))?;
        out.set(metric, v);
    }
    if let Some(o) = result.get("outputs").and_then(Value::as_object) {
        out.outputs = o.clone();
    }
    if let Some(errors) = result.get("errors").and_then(Value::as_array) {
        out.errors = errors
            .iter()
            .map(|e| e.as_str().map_or(e.to_string(), str::to_string))
            .collect();
    }
    if let Some(d) = result.get("details").and_then(Value::as_object) {
        out.details = d.clone();
    }
    if !samples.is_empty() {
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for (n, _) in samples {
            *counts.entry(n).or_default() += 1;
        }
        out.detail("samples", counts);
    }
    Ok(out)
}
