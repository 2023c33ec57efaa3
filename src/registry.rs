//! Engines, benchmarks and reporters by name. Built-ins and plugins register through the
//! same `register_*` calls, which refuse a name that is already taken.

use std::any::Any;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use jsonschema::Validator;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a registered entry came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "path")]
pub enum Origin {
    BuiltIn,
    Plugin(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in"),
            Origin::Plugin(p) => write!(f, "plugin at {}", p.display()),
        }
    }
}

/// A model format an engine loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelFormat {
    /// A single `.gguf` file.
    Gguf,
    /// A Hugging Face directory (or hub id) of safetensors weights.
    Safetensors,
    /// An Ollama model tag such as `llama3.1:8b`.
    OllamaTag,
    /// Whatever the remote server was started with; kitt only passes the name along.
    ServerSide,
}

impl fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelFormat::Gguf => "gguf",
            ModelFormat::Safetensors => "safetensors",
            ModelFormat::OllamaTag => "ollama tag",
            ModelFormat::ServerSide => "server-side model name",
        })
    }
}

/// How an engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeMode {
    /// In a container, through the Docker API.
    Docker,
    /// The engine's own binary in a local process.
    Native,
    /// Already running at `url`; nothing is started or stopped.
    External,
}

impl fmt::Display for RuntimeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuntimeMode::Docker => "docker",
            RuntimeMode::Native => "native",
            RuntimeMode::External => "external",
        })
    }
}

/// How an entry is implemented, opaque to the registry: the layer that runs the entry stores
/// its own type here (`engine::launch::Driver`, `bench::Driver`) and reads it back by type, so
/// the registry holds facts and names no layer above it.
#[derive(Clone, Default)]
pub struct Implementation(Option<Arc<dyn Any + Send + Sync>>);

impl Implementation {
    /// An implementation of type `T`.
    pub fn new<T: Any + Send + Sync>(driver: T) -> Self {
        Implementation(Some(Arc::new(driver)))
    }

    /// The implementation, when it is a `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.as_deref()?.downcast_ref()
    }
}

impl EngineInfo {
    /// Whether it cannot start without a GPU.
    pub fn needs_gpu(&self) -> bool {
        self.gpu == GpuUse::Required
    }
}

impl fmt::Debug for Implementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Implementation(..)"
        } else {
            "Implementation(none)"
        })
    }
}

/// How much an engine needs a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuUse {
    /// It cannot start without one: containers get every GPU unless `resources.gpus` says
    /// otherwise, and the scheduler counts them.
    Required,
    /// It uses a GPU when it gets one and silently runs on the CPU otherwise.
    Optional,
    /// It never uses one.
    None,
}

/// The static facts of an engine: what the engine contract says without starting anything.
#[derive(Debug, Clone, Serialize)]
pub struct EngineInfo {
    pub name: String,
    pub description: String,
    pub formats: Vec<ModelFormat>,
    pub default_image: Option<String>,
    pub default_port: u16,
    pub container_port: u16,
    pub health_endpoint: String,
    /// Supported runtimes, the default first.
    pub modes: Vec<RuntimeMode>,
    /// Schema of the engine's `config:` settings.
    pub config_schema: Value,
    /// Whether an engine instance must name a model.
    pub model_required: bool,
    /// How much the engine needs a GPU (checked by `kitt engines check`; GPUs are requested
    /// and counted by this).
    pub gpu: GpuUse,
    /// The image of its GPU build, when its default image is the CPU build.
    pub gpu_image: Option<String>,
    /// The upstream release the engine's profile was checked against.
    pub upstream: Option<String>,
    /// The implementation: how the engine is started and spoken to.
    #[serde(skip)]
    pub driver: Implementation,
}

/// Whether more of a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Higher,
    Lower,
}

/// A metric a benchmark reports.
#[derive(Debug, Clone, Serialize)]
pub struct MetricInfo {
    pub name: String,
    pub unit: String,
    pub direction: Direction,
}

/// Benchmark categories, as in the original KITT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Performance,
    QualityStandard,
    QualityCustom,
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Category::Performance => "performance",
            Category::QualityStandard => "quality_standard",
            Category::QualityCustom => "quality_custom",
        })
    }
}

/// The static facts of a benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct BenchmarkInfo {
    pub name: String,
    pub version: String,
    pub category: Category,
    pub description: String,
    pub params_schema: Value,
    pub metrics: Vec<MetricInfo>,
    /// Metric names produced at run time whose set depends on params (e.g. per-leg values);
    /// asserts on names with these prefixes are accepted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dynamic_metric_prefixes: Vec<String>,
    /// Outputs later nodes may read as `${{ nodes.ID.outputs.NAME }}`.
    pub outputs: Vec<String>,
    /// The implementation: how the benchmark executes.
    #[serde(skip)]
    pub driver: Implementation,
}

/// The static facts of a reporter.
#[derive(Debug, Clone, Serialize)]
pub struct ReporterInfo {
    pub name: String,
    pub description: String,
    pub params_schema: Value,
    /// Where the reporter's templates come from.
    #[serde(skip)]
    pub templates: ReporterTemplates,
}

/// A reporter's templates: kitt's own, or a template-only plugin's files.
#[derive(Debug, Clone, Default)]
pub enum ReporterTemplates {
    /// Built into kitt (`json` is written directly).
    #[default]
    BuiltIn,
    /// `files` in `dir`; the first is the entry point.
    Plugin { dir: PathBuf, files: Vec<String> },
    /// A subprocess reporter plugin in `dir`: it gets the report document in a `report`
    /// call and answers with the text kitt writes (and may send it anywhere itself).
    Subprocess { dir: PathBuf },
}

/// Anything the registry holds.
pub trait Entry {
    /// The name suites use.
    fn name(&self) -> &str;
    /// What kind of thing this is, for messages ("engine").
    const KIND: &'static str;
    /// The JSON Schema of its settings (engine `config:`, node or report `params:`).
    fn schema(&self) -> &Value;
}

impl Entry for EngineInfo {
    fn name(&self) -> &str {
        &self.name
    }
    const KIND: &'static str = "engine";
    fn schema(&self) -> &Value {
        &self.config_schema
    }
}

impl Entry for BenchmarkInfo {
    fn name(&self) -> &str {
        &self.name
    }
    const KIND: &'static str = "benchmark";
    fn schema(&self) -> &Value {
        &self.params_schema
    }
}

impl Entry for ReporterInfo {
    fn name(&self) -> &str {
        &self.name
    }
    const KIND: &'static str = "reporter";
    fn schema(&self) -> &Value {
        &self.params_schema
    }
}

/// An entry with its origin and its compiled params schema.
#[derive(Debug)]
pub struct Registered<T> {
    pub info: T,
    pub origin: Origin,
    validator: OnceLock<Result<Validator, String>>,
}

impl<T> Registered<T> {
    fn new(info: T, origin: Origin) -> Self {
        Registered {
            info,
            origin,
            validator: OnceLock::new(),
        }
    }

    /// The compiled validator of `schema`, compiled on first use.
    pub fn validator(&self, schema: &Value) -> Result<&Validator, &str> {
        self.validator
            .get_or_init(|| {
                jsonschema::draft7::new(schema).map_err(|e| format!("invalid params schema: {e}"))
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

/// Why an entry could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{kind} `{name}` from {new} collides with the {kind} of the same name from {existing}")]
    Collision {
        kind: &'static str,
        name: String,
        existing: Origin,
        new: Origin,
    },
    #[error("{kind} `{name}` from {origin} has an invalid params schema: {reason}")]
    InvalidSchema {
        kind: &'static str,
        name: String,
        origin: Origin,
        reason: String,
    },
}

/// Entries of one kind by name, in registration order.
#[derive(Debug)]
pub struct Catalog<T> {
    entries: IndexMap<String, Registered<T>>,
}

impl<T> Default for Catalog<T> {
    fn default() -> Self {
        Catalog {
            entries: IndexMap::new(),
        }
    }
}

impl<T: Entry> Catalog<T> {
    fn register(&mut self, info: T, origin: Origin) -> Result<(), RegistryError> {
        if let Some(existing) = self.entries.get(info.name()) {
            return Err(RegistryError::Collision {
                kind: T::KIND,
                name: info.name().to_string(),
                existing: existing.origin.clone(),
                new: origin,
            });
        }
        self.entries
            .insert(info.name().to_string(), Registered::new(info, origin));
        Ok(())
    }

    /// Checks the entry's schema, then registers it — in place of one of the same name when
    /// `replace` (an explicit override), else refusing a taken name.
    fn add(&mut self, info: T, origin: Origin, replace: bool) -> Result<(), RegistryError> {
        check_schema(T::KIND, info.name(), info.schema(), &origin)?;
        if replace {
            self.entries
                .insert(info.name().to_string(), Registered::new(info, origin));
            Ok(())
        } else {
            self.register(info, origin)
        }
    }

    /// The entry with this name.
    pub fn get(&self, name: &str) -> Option<&Registered<T>> {
        self.entries.get(name)
    }

    /// All entries in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Registered<T>> {
        self.entries.values()
    }

    /// The registered name closest to `name`, when one is close enough to be a typo.
    pub fn suggest(&self, name: &str) -> Option<&str> {
        suggest(name, self.entries.keys().map(String::as_str))
    }

    /// The hint for a name nobody registered: a close match, else every registered name.
    pub fn unknown_hint(&self, name: &str) -> String {
        match self.suggest(name) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("registered {}s: {}", T::KIND, self.names()),
        }
    }

    /// The names, comma separated, for "known: ..." hints.
    pub fn names(&self) -> String {
        self.entries
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The closest candidate to `name` by Jaro-Winkler similarity, if it is close enough.
pub fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Every engine, benchmark and reporter kitt knows by name.
#[derive(Debug, Default)]
pub struct Registry {
    pub engines: Catalog<EngineInfo>,
    pub benchmarks: Catalog<BenchmarkInfo>,
    pub reporters: Catalog<ReporterInfo>,
}

impl Registry {
    /// A registry holding nothing (tests register fixtures into it).
    pub fn empty() -> Self {
        Registry::default()
    }

    /// Registers an engine.
    pub fn register_engine(
        &mut self,
        info: EngineInfo,
        origin: Origin,
    ) -> Result<(), RegistryError> {
        self.engines.add(info, origin, false)
    }

    /// Registers a benchmark.
    pub fn register_benchmark(
        &mut self,
        info: BenchmarkInfo,
        origin: Origin,
    ) -> Result<(), RegistryError> {
        self.benchmarks.add(info, origin, false)
    }

    /// Registers a reporter.
    pub fn register_reporter(
        &mut self,
        info: ReporterInfo,
        origin: Origin,
    ) -> Result<(), RegistryError> {
        self.reporters.add(info, origin, false)
    }

    /// Registers an engine in place of one of the same name; for plugins the user explicitly
    /// chose to override with.
    pub fn override_engine(
        &mut self,
        info: EngineInfo,
        origin: Origin,
    ) -> Result<(), RegistryError> {
        self.engines.add(info, origin, true)
    }

    /// See `override_engine`.
    pub fn override_benchmark(
        &mut self,
        info: BenchmarkInfo,
        origin: Origin,
    ) -> Result<(), RegistryError> {
        self.benchmarks.add(info, origin, true)
    }

    /// See `override_engine`.
    pub fn override_reporter(
        &mut self,
        info: ReporterInfo,
        origin: Origin,
    ) -> Result<(), RegistryError> {
        self.reporters.add(info, origin, true)
    }
}

/// A params schema must at least describe an object; compiling it fully happens on first use.
fn check_schema(
    kind: &'static str,
    name: &str,
    schema: &Value,
    origin: &Origin,
) -> Result<(), RegistryError> {
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(RegistryError::InvalidSchema {
            kind,
            name: name.to_string(),
            origin: origin.clone(),
            reason: "the top level must be `type: object`".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reporter(name: &str) -> ReporterInfo {
        ReporterInfo {
            templates: ReporterTemplates::BuiltIn,
            name: name.into(),
            description: String::new(),
            params_schema: json!({"type": "object"}),
        }
    }

    #[test]
    fn a_taken_name_is_refused_naming_both_origins() {
        let mut r = Registry::empty();
        r.register_reporter(reporter("md"), Origin::BuiltIn)
            .unwrap();
        let e = r
            .register_reporter(reporter("md"), Origin::Plugin("/p/md".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("plugin at /p/md") && e.contains("built-in"),
            "{e}"
        );
    }

    #[test]
    fn an_implementation_is_read_back_by_its_type_only() {
        let i = Implementation::new(7u32);
        assert_eq!(i.get::<u32>(), Some(&7));
        assert_eq!(i.get::<u64>(), None);
        assert_eq!(Implementation::default().get::<u32>(), None);
    }

    #[test]
    fn suggestions_catch_typos_only() {
        let names = ["vllm", "sglang", "llama.cpp"];
        assert_eq!(suggest("vlm", names.iter().copied()), Some("vllm"));
        assert_eq!(
            suggest("llamacpp", names.iter().copied()),
            Some("llama.cpp")
        );
        assert_eq!(suggest("triton", names.iter().copied()), None);
    }
}
