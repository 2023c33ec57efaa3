//! Where kitt is put together: the built-in engines, benchmarks and reporters, and the plugins
//! found for a suite, registered through the same calls (a taken name is refused unless
//! `--override-plugin` names it). The registry below holds facts; each entry's implementation
//! is the engine or benchmark layer's own driver.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::plugin::discovery::Search;
use crate::plugin::manifest::{Kind, Manifest, Runtime};
use crate::plugin::{Discovered, PluginRef, discover_all};
use crate::registry::{
    BenchmarkInfo, EngineInfo, Implementation, MetricInfo, ModelFormat, Origin, Registry,
    ReporterInfo, ReporterTemplates, RuntimeMode,
};

/// A registry holding the built-in engines, benchmarks and reporters.
pub fn builtins() -> Registry {
    let mut registry = Registry::empty();
    for engine in crate::engine::profiles::builtin_engines() {
        registry
            .register_engine(engine, Origin::BuiltIn)
            .expect("built-in engine names are unique");
    }
    for benchmark in crate::bench::catalog::builtin_benchmarks() {
        registry
            .register_benchmark(benchmark, Origin::BuiltIn)
            .expect("built-in benchmark names are unique");
    }
    for reporter in crate::report::catalog::builtin_reporters() {
        registry
            .register_reporter(reporter, Origin::BuiltIn)
            .expect("built-in reporter names are unique");
    }
    registry
}

/// The params schema a manifest names, read and checked to be an object schema.
fn params_schema(dir: &Path, manifest: &Manifest) -> Result<Value, String> {
    let Some(file) = &manifest.params_schema else {
        return Ok(json!({"type": "object"}));
    };
    let path = Manifest::file(dir, file, "params_schema")?;
    let text = crate::fsio::read_text(&path, crate::plugin::manifest::MAX_FILE)
        .map_err(|e| format!("cannot read its params schema {}: {e}", path.display()))?;
    let schema: Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}:{}: the params schema is not JSON: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    jsonschema::draft7::new(&schema)
        .map_err(|e| format!("{}: not a valid JSON Schema: {e}", path.display()))?;
    Ok(schema)
}

/// What a plugin registers as, or why it cannot be registered.
fn benchmark_info(dir: &Path, manifest: &Manifest) -> Result<BenchmarkInfo, String> {
    let facts = manifest.benchmark.as_ref().ok_or("no [benchmark] table")?;
    Ok(BenchmarkInfo {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        category: facts.category,
        description: manifest.description.clone(),
        params_schema: params_schema(dir, manifest)?,
        metrics: facts
            .metrics
            .iter()
            .map(|(name, m)| MetricInfo {
                name: name.clone(),
                unit: m.unit.clone(),
                direction: m.direction,
            })
            .collect(),
        dynamic_metric_prefixes: Vec::new(),
        outputs: facts.outputs.clone(),
        driver: Implementation::new(crate::bench::Driver::Plugin(Arc::new(PluginRef {
            dir: dir.to_path_buf(),
            manifest: manifest.clone(),
        }))),
    })
}

/// What an engine plugin registers as.
fn engine_info(dir: &Path, manifest: &Manifest) -> Result<EngineInfo, String> {
    let facts = manifest.engine.as_ref().ok_or("no [engine] table")?;
    Ok(EngineInfo {
        name: manifest.name.clone(),
        description: manifest.description.clone(),
        formats: if facts.formats.is_empty() {
            vec![ModelFormat::ServerSide]
        } else {
            facts.formats.clone()
        },
        default_image: facts.image.clone(),
        default_port: facts.port,
        container_port: facts.container_port,
        health_endpoint: facts.health.clone(),
        modes: vec![RuntimeMode::Native],
        config_schema: params_schema(dir, manifest)?,
        model_required: facts.model_required,
        gpu: crate::registry::GpuUse::None,
        gpu_image: None,
        upstream: None,
        driver: Implementation::new(crate::engine::launch::Driver::Plugin(Arc::new(PluginRef {
            dir: dir.to_path_buf(),
            manifest: manifest.clone(),
        }))),
    })
}

/// What a subprocess reporter plugin registers as.
fn subprocess_reporter_info(dir: &Path, manifest: &Manifest) -> Result<ReporterInfo, String> {
    let facts = manifest.reporter.as_ref().ok_or("no [reporter] table")?;
    if !facts.templates.is_empty() {
        return Err(
            "[reporter] lists templates, which a subprocess reporter does not use: give it `runtime.type = \"templates\"`, or drop `templates`".into(),
        );
    }
    Ok(ReporterInfo {
        name: manifest.name.clone(),
        description: manifest.description.clone(),
        params_schema: params_schema(dir, manifest)?,
        templates: ReporterTemplates::Subprocess {
            dir: dir.to_path_buf(),
        },
    })
}

/// What a template-only reporter plugin registers as; its templates must parse.
fn reporter_info(dir: &Path, manifest: &Manifest) -> Result<ReporterInfo, String> {
    let facts = manifest.reporter.as_ref().ok_or("no [reporter] table")?;
    if facts.timeout.is_some() {
        return Err(
            "[reporter] timeout is for subprocess reporters; templates have a fixed deadline"
                .into(),
        );
    }
    if facts.templates.is_empty() {
        return Err("[reporter] lists no templates".into());
    }
    for file in &facts.templates {
        Manifest::file(dir, file, "template")?;
    }
    crate::report::render::plugin_environment(&manifest.name, dir, &facts.templates)
        .map_err(|e| e.to_string())?;
    Ok(ReporterInfo {
        name: manifest.name.clone(),
        description: manifest.description.clone(),
        params_schema: params_schema(dir, manifest)?,
        templates: ReporterTemplates::Plugin {
            dir: dir.to_path_buf(),
            files: facts.templates.clone(),
        },
    })
}

/// Registers one discovered plugin. A name taken by a built-in or another plugin is refused
/// naming both, unless `--override-plugin NAME` asked for the plugin to replace it.
pub fn register(
    registry: &mut Registry,
    found: &Discovered,
    search: &Search,
) -> Result<(), String> {
    let manifest = found.manifest.as_ref().map_err(Clone::clone)?;
    let origin = Origin::Plugin(found.dir.clone());
    let replace = search.overrides(&manifest.name);
    match (manifest.kind, &manifest.runtime) {
        (Kind::Benchmark, Runtime::Subprocess { .. } | Runtime::Wasm { .. }) => {
            let info = benchmark_info(&found.dir, manifest)?;
            if replace {
                registry.override_benchmark(info, origin)
            } else {
                registry.register_benchmark(info, origin)
            }
            .map_err(|e| e.to_string())
        }
        (Kind::Engine, Runtime::Subprocess { .. }) => {
            let info = engine_info(&found.dir, manifest)?;
            if replace {
                registry.override_engine(info, origin)
            } else {
                registry.register_engine(info, origin)
            }
            .map_err(|e| e.to_string())
        }
        (Kind::Reporter, Runtime::Templates | Runtime::Subprocess { .. }) => {
            let info = if matches!(manifest.runtime, Runtime::Templates) {
                reporter_info(&found.dir, manifest)?
            } else {
                subprocess_reporter_info(&found.dir, manifest)?
            };
            if replace {
                registry.override_reporter(info, origin)
            } else {
                registry.register_reporter(info, origin)
            }
            .map_err(|e| e.to_string())
        }
        (Kind::Engine, Runtime::Wasm { .. }) => Err(format!(
            "plugin `{}`: an engine must serve HTTP, which a wasm module cannot; use a subprocess",
            manifest.name
        )),
        (kind, _) => Err(format!(
            "plugin `{}`: a {} plugin cannot use this runtime (reporters are templates or subprocesses; engines run as subprocesses)",
            manifest.name,
            format!("{kind:?}").to_lowercase()
        )),
    }
}

/// The built-ins plus every plugin found for `suite`; each plugin that could not be
/// registered comes back as a message naming it.
pub fn registry(search: &Search, suite: Option<&Path>) -> (Registry, Vec<String>) {
    let mut registry = builtins();
    let mut problems = Vec::new();
    for found in discover_all(&search.dirs(suite)) {
        if let Err(e) = register(&mut registry, &found, search) {
            problems.push(format!("plugin {}: {e}", found.dir.display()));
        }
    }
    (registry, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_schemas_all_compile() {
        let r = builtins();
        for e in r.engines.iter() {
            e.validator(&e.info.config_schema).unwrap();
        }
        for b in r.benchmarks.iter() {
            b.validator(&b.info.params_schema).unwrap();
        }
        for rep in r.reporters.iter() {
            rep.validator(&rep.info.params_schema).unwrap();
        }
    }

    #[test]
    fn every_builtin_has_its_layers_implementation() {
        let r = builtins();
        for e in r.engines.iter() {
            assert!(
                e.info
                    .driver
                    .get::<crate::engine::launch::Driver>()
                    .is_some(),
                "{}",
                e.info.name
            );
        }
        for b in r.benchmarks.iter() {
            assert!(
                b.info.driver.get::<crate::bench::Driver>().is_some(),
                "{}",
                b.info.name
            );
        }
    }
}
