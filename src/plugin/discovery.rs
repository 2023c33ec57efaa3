//! Finding plugins — `--plugin-dir`/`KITT_PLUGIN_DIR`, `.kitt/plugins/` beside the suite, the
//! user's data directory — and registering them: manifest, kitt version range and params
//! schema checked, names that collide with a built-in or another plugin refused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

use super::PluginRef;
use super::manifest::{Kind, Manifest, Runtime};
use crate::registry::{
    BenchmarkInfo, Category, Direction, EngineInfo, MetricInfo, ModelFormat, Origin, Registry,
    ReporterInfo, ReporterTemplates,
};
use crate::suite::model::RuntimeMode;

static EXTRA_DIRS: OnceLock<Vec<PathBuf>> = OnceLock::new();
static OVERRIDES: OnceLock<Vec<String>> = OnceLock::new();

/// Sets the names a plugin may take over from a built-in or another plugin (once, at
/// start-up; `--override-plugin NAME`).
pub fn set_overrides(names: Vec<String>) {
    let _ = OVERRIDES.set(names);
}

fn overridden(name: &str) -> bool {
    OVERRIDES.get().is_some_and(|o| o.iter().any(|n| n == name))
}

/// Sets the `--plugin-dir` directories (once, at start-up).
pub fn set_extra_dirs(dirs: Vec<PathBuf>) {
    let _ = EXTRA_DIRS.set(dirs);
}

/// Where plugins are looked for, in order: `--plugin-dir`, `KITT_PLUGIN_DIR` (colon
/// separated), `.kitt/plugins/` beside the suite, `<data dir>/plugins`.
pub fn plugin_dirs(suite: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = EXTRA_DIRS.get().cloned().unwrap_or_default();
    if let Some(v) = std::env::var_os("KITT_PLUGIN_DIR") {
        dirs.extend(std::env::split_paths(&v));
    }
    if let Some(dir) = suite.and_then(Path::parent) {
        let base = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        dirs.push(base.join(".kitt/plugins"));
    }
    dirs.push(installed_dir());
    dirs
}

/// Where `kitt plugin install` puts plugins.
pub fn installed_dir() -> PathBuf {
    crate::paths::data_dir().join("plugins")
}

/// A plugin directory found, with its manifest or why it could not be read.
pub struct Discovered {
    pub dir: PathBuf,
    pub manifest: Result<Manifest, String>,
}

/// Every plugin directory (a directory holding `plugin.toml`) under `dirs`.
pub fn discover(dirs: &[PathBuf]) -> Vec<Discovered> {
    let mut found = Vec::new();
    for root in dirs {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        let mut subdirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("plugin.toml").is_file())
            .collect();
        subdirs.sort();
        for dir in subdirs {
            let manifest = Manifest::load(&dir).map_err(|e| e.to_string());
            found.push(Discovered { dir, manifest });
        }
    }
    found
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
    let category = match facts.category.as_str() {
        "performance" => Category::Performance,
        "quality_standard" => Category::QualityStandard,
        _ => Category::QualityCustom,
    };
    Ok(BenchmarkInfo {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        category,
        description: manifest.description.clone(),
        params_schema: params_schema(dir, manifest)?,
        metrics: facts
            .metrics
            .iter()
            .map(|(name, m)| MetricInfo {
                name: name.clone(),
                unit: m.unit.clone(),
                direction: if m.direction == "higher" {
                    Direction::Higher
                } else {
                    Direction::Lower
                },
            })
            .collect(),
        dynamic_metric_prefixes: Vec::new(),
        outputs: facts.outputs.clone(),
        driver: crate::bench::Driver::Plugin(Arc::new(PluginRef {
            dir: dir.to_path_buf(),
            manifest: manifest.clone(),
        })),
    })
}

/// What an engine plugin registers as.
fn engine_info(dir: &Path, manifest: &Manifest) -> Result<EngineInfo, String> {
    let facts = manifest.engine.as_ref().ok_or("no [engine] table")?;
    let formats = facts
        .formats
        .iter()
        .map(|f| match f.as_str() {
            "gguf" => Ok(ModelFormat::Gguf),
            "safetensors" => Ok(ModelFormat::Safetensors),
            "ollama_tag" => Ok(ModelFormat::OllamaTag),
            "server_side" => Ok(ModelFormat::ServerSide),
            other => Err(format!(
                "format `{other}` is not gguf, safetensors, ollama_tag or server_side"
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EngineInfo {
        name: manifest.name.clone(),
        description: manifest.description.clone(),
        formats: if formats.is_empty() {
            vec![ModelFormat::ServerSide]
        } else {
            formats
        },
        default_image: facts.image.clone(),
        default_port: facts.port,
        container_port: facts.container_port,
        health_endpoint: facts.health.clone(),
        modes: vec![RuntimeMode::Native],
        config_schema: params_schema(dir, manifest)?,
        model_required: facts.model_required,
        needs_gpu: false,
        upstream: None,
        driver: crate::engine::launch::Driver::Plugin(Arc::new(PluginRef {
            dir: dir.to_path_buf(),
            manifest: manifest.clone(),
        })),
    })
}

/// What a template-only reporter plugin registers as; its templates must parse.
fn reporter_info(dir: &Path, manifest: &Manifest) -> Result<ReporterInfo, String> {
    let facts = manifest.reporter.as_ref().ok_or("no [reporter] table")?;
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
pub fn register(registry: &mut Registry, found: &Discovered) -> Result<(), String> {
    let manifest = found.manifest.as_ref().map_err(Clone::clone)?;
    let origin = Origin::Plugin(found.dir.clone());
    let replace = overridden(&manifest.name);
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
        (Kind::Reporter, Runtime::Templates) => {
            let info = reporter_info(&found.dir, manifest)?;
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
            "plugin `{}`: a {} plugin cannot use this runtime (reporters are templates-only; engines run as subprocesses)",
            manifest.name,
            format!("{kind:?}").to_lowercase()
        )),
    }
}

/// The built-ins plus every plugin found for `suite`; each plugin that could not be
/// registered comes back as a message naming it.
pub fn load_registry(suite: Option<&Path>) -> (Registry, Vec<String>) {
    let mut registry = Registry::with_builtins();
    let mut problems = Vec::new();
    for found in discover(&plugin_dirs(suite)) {
        if let Err(e) = register(&mut registry, &found) {
            problems.push(format!("plugin {}: {e}", found.dir.display()));
        }
    }
    (registry, problems)
}
