//! Running a benchmark plugin (a subprocess or a wasm module): `run` with the node's params
//! (the plugin may call the host's `generate`, so kitt's client still measures), read its
//! result, stop it.

use std::time::Duration;

use serde_json::Value;

use super::PluginRef;
use super::manifest::Runtime;
use super::subprocess::{PluginError, PluginProcess};
use super::wasm::WasmPlugin;
use crate::bench::{BenchContext, BenchError, Outcome};

/// A `run` may take this long unless the node's own timeout is shorter.
const RUN_DEADLINE: Duration = Duration::from_secs(6 * 3600);

pub async fn execute(
    plugin: &PluginRef,
    ctx: &BenchContext<'_>,
    params: &Value,
) -> Result<Outcome, BenchError> {
    let request = super::wasm::run_params(ctx, params);
    let (answer, samples) = match &plugin.manifest.runtime {
        Runtime::Wasm { .. } => {
            let module = WasmPlugin::load(&plugin.dir, &plugin.manifest)
                .map_err(|e| BenchError::Failed(e.to_string()))?;
            (module.call("run", request, Some(ctx)).await, Vec::new())
        }
        _ => {
            let mut process = PluginProcess::start(&plugin.dir, &plugin.manifest, &ctx.run_dir)
                .await
                .map_err(|e| BenchError::Failed(e.to_string()))?;
            let answer = process.call("run", request, RUN_DEADLINE, Some(ctx)).await;
            let samples = std::mem::take(&mut process.samples);
            process.stop().await;
            (answer, samples)
        }
    };
    let result = match answer {
        Ok(v) => v,
        Err(PluginError::Reported { plugin, error, .. }) if error.kind() == "user" => {
            let at = error
                .data
                .as_ref()
                .and_then(|d| d.pointer.clone())
                .map_or(String::new(), |p| format!(" at params{p}"));
            return Err(BenchError::Params(format!(
                "plugin `{plugin}`{at}: {}",
                error.message
            )));
        }
        Err(e) => return Err(BenchError::Failed(e.to_string())),
    };
    outcome(&plugin.manifest.name, &result, &samples)
}

/// Reads a `run` result: `{passed, metrics: {name: number}, outputs, errors, details}`.
fn outcome(name: &str, result: &Value, samples: &[(String, f64)]) -> Result<Outcome, BenchError> {
    let bad = |what: &str| {
        BenchError::Failed(format!(
            "plugin `{name}` answered `run` without {what}: {}",
            result.to_string().chars().take(200).collect::<String>()
        ))
    };
    let mut out = Outcome::default();
    out.passed = result
        .get("passed")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad("a boolean `passed`"))?;
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
