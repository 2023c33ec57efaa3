//! The suite language as Rust types: serde reads them, schemars turns them into
//! `schemas/suite.schema.json`. Fields marked `x-kitt-templatable` may hold `${{ }}`.

use std::fmt;
use std::time::Duration as StdDuration;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The only API version of the suite language so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "kitt/v1")]
    V1,
}

/// What a file is: a suite, or a library of node templates for `include:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SuiteKind {
    Suite,
}

/// The kind of a file that only holds node templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TemplatesKind {
    NodeTemplates,
}

/// A benchmark suite: engines to start, benchmark nodes to run in dependency order, and reports.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "kitt suite")]
pub struct Suite {
    /// Version of the suite language. Always `kitt/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    /// Always `Suite`.
    pub kind: SuiteKind,
    pub metadata: Metadata,
    /// Files of node templates (`kind: NodeTemplates`), relative to this file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Typed suite parameters, referenced as `${{ params.NAME }}` and set with `-p NAME=VALUE`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}))]
    pub params: IndexMap<String, ParamSpec>,
    /// Inference engines by the name nodes use; each starts before its first node and stops after its last.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"}))]
    pub engines: IndexMap<String, EngineSpec>,
    /// Settings merged one level deep into every node; a node's own value wins, lists are replaced.
    #[serde(default)]
    pub defaults: NodeDefaults,
    /// How many nodes may run at the same time (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub parallelism: Option<u32>,
    /// The benchmark nodes.
    #[schemars(length(min = 1))]
    pub nodes: Vec<NodeSpec>,
    /// Reports rendered at the end of `kitt apply`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<ReportSpec>,
    /// What performance legs record beside the client's measurements (an engine's and a
    /// node's own settings win, key by key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<Telemetry>,
    /// Where the suite's engine groups run: on this machine (`local`, the default) or as
    /// Slurm jobs (`slurm`); `--executor` on the command line wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<Executor>,
}

/// Where a suite's engine groups run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Executor {
    /// `local` (default) or `slurm`.
    #[serde(default)]
    pub kind: ExecutorKind,
    /// Settings of the Slurm executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmSettings>,
}

/// Which executor runs a suite's engine groups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// Every engine group on this machine.
    #[default]
    Local,
    /// Each engine group as one Slurm job (`sbatch`).
    Slurm,
}

/// How the Slurm executor asks for its jobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    /// `--partition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.,-]+$"))]
    pub partition: Option<String>,
    /// `--account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]+$"))]
    pub account: Option<String>,
    /// `--qos`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]+$"))]
    pub qos: Option<String>,
    /// `--constraint` (node features, e.g. `h100`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.&|!()\[\]*:-]+$"))]
    pub constraint: Option<String>,
    /// A job's `--time`; by default the sum of its legs' timeouts (every attempt and
    /// backoff), plus its engine's start-up timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit: Option<Duration>,
    /// How GPUs are asked for: `gres` (`--gres=gpu:N`, the default) or `gpus` (`--gpus=N`).
    #[serde(default)]
    pub gpu_request: SlurmGpuRequest,
    /// More `sbatch` options, each one argument starting with `--`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
    /// Environment variables the job script exports before kitt runs.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}))]
    pub export: IndexMap<String, String>,
    /// The kitt binary as the compute nodes reach it (a path on a shared filesystem); by
    /// default the path of the kitt that plans the jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kitt: Option<String>,
    /// A directory on a filesystem shared with the compute nodes, as an absolute path: each
    /// job writes its group's results there as a file of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_dir: Option<String>,
}

/// How a Slurm job asks for GPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SlurmGpuRequest {
    /// `--gres=gpu:N`.
    #[default]
    Gres,
    /// `--gpus=N`.
    Gpus,
}

/// The shortest telemetry interval a suite may ask for.
pub const MIN_TELEMETRY_INTERVAL: StdDuration = StdDuration::from_millis(100);

/// Telemetry a performance leg records: the engine's Prometheus metrics and the client's
/// in-flight count, sampled over the measured window. On by default, every second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// Between two samples of the gauges (default 1s, at least 100ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Scrape the engine's metrics page (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<bool>,
    /// Read the GPUs the engine uses (NVML, else `nvidia-smi`) or, on a host without one,
    /// the CPU's RAPL energy counters (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<bool>,
    /// Only under `engines:`: whose metric names the engine's `/metrics` page uses, for an
    /// endpoint or plugin engine kitt knows no page of (a vLLM-compatible server: `vllm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsNaming>,
    /// More Prometheus pages to record during each leg (a DCGM or node exporter), at most 8;
    /// a node's list replaces its engine's, an engine's the suite's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub scrape: Vec<ScrapeTarget>,
}

impl ScrapeTarget {
    /// A series' part of its figures' names (`scrape_<this>_mean`): lower case, `_` for
    /// anything but letters and digits.
    pub fn figure_base(series: &str) -> String {
        series
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect()
    }
}

/// Another Prometheus page a leg records, and which of its series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTarget {
    /// The page's URL.
    #[schemars(regex(pattern = r"^https?://[^\s]+$"))]
    pub url: String,
    /// The series to record, each with which way is better, e.g.
    /// `{DCGM_FI_DEV_POWER_USAGE: lower}`; a series' label sets are added together. At
    /// most 64.
    #[schemars(extend("propertyNames" = {"pattern": "^[a-zA-Z_:][a-zA-Z0-9_:]*$"}, "minProperties" = 1, "maxProperties" = 64))]
    pub series: IndexMap<String, crate::registry::Direction>,
}

/// A metrics vocabulary kitt can read: the engine whose names a page uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MetricsNaming {
    #[serde(rename = "vllm")]
    Vllm,
    #[serde(rename = "sglang")]
    Sglang,
    #[serde(rename = "tgi")]
    Tgi,
    #[serde(rename = "llama.cpp")]
    LlamaCpp,
}

impl Telemetry {
    /// Whether nothing is set (every default applies).
    pub fn is_unset(&self) -> bool {
        *self == Telemetry::default()
    }

    /// These settings, with `under`'s filling what these leave unset.
    pub fn over(&self, under: &Telemetry) -> Telemetry {
        Telemetry {
            interval: self.interval.or(under.interval),
            server: self.server.or(under.server),
            gpu: self.gpu.or(under.gpu),
            metrics: self.metrics.or(under.metrics),
            scrape: if self.scrape.is_empty() {
                under.scrape.clone()
            } else {
                self.scrape.clone()
            },
        }
    }
}

/// A file of named node templates that suites `include:` and nodes `extends:`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "kitt node templates")]
pub struct TemplateFile {
    /// Version of the suite language. Always `kitt/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    /// Always `NodeTemplates`.
    pub kind: TemplatesKind,
    /// More template files, relative to this file.
    #[serde(default)]
    pub include: Vec<String>,
    /// Node templates by name.
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"}))]
    pub templates: IndexMap<String, NodeTemplate>,
}

/// Who the suite is and which version of it this is.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Suite name: lower-case letters, digits, `-`, `_`, `.`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_.-]*$"))]
    pub name: String,
    /// Semantic version of the suite, e.g. `1.4.0`.
    #[schemars(regex(
        pattern = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
    ))]
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
}

/// The type of a suite parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
        })
    }
}

/// A typed suite parameter.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// The value used when `-p` does not set one; without it the parameter must be given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

pub use crate::registry::RuntimeMode;

/// One engine instance used by the suite's nodes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EngineSpec {
    /// The registered engine (`kitt engines list`).
    pub uses: String,
    /// Model path, directory or tag, as the engine takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kitt-templatable" = true))]
    pub model: Option<String>,
    /// Container image (docker mode); the engine's default image when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kitt-templatable" = true))]
    pub image: Option<String>,
    /// docker, native or external; the engine's first supported mode when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RuntimeMode>,
    /// Base URL of an external engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kitt-templatable" = true))]
    pub url: Option<String>,
    /// Name of the environment variable holding the API key of an external engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$"))]
    pub api_key_env: Option<String>,
    /// Docker daemon to use instead of the local one (e.g. `tcp://gpu-box:2375`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_host: Option<String>,
    /// Extra launch arguments, appended after those kitt derives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kitt-templatable" = true))]
    pub args: Vec<String>,
    /// Environment of the engine process or container.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("x-kitt-templatable" = true))]
    pub env: IndexMap<String, String>,
    /// Names of host environment variables passed through unlogged (secrets such as `HF_TOKEN`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Hardware and container settings the engine needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Mount a host cache of downloaded weights into the container (docker mode), so a run
    /// does not download the model again: `true` for the host's usual cache, or a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_cache: Option<WeightsCache>,
    /// How long the engine may take to answer its health check after starting (default 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_timeout: Option<Duration>,
    /// Longest one request may take, every byte of its answer read (default 10m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Duration>,
    /// Telemetry of the legs on this engine (over the suite's, under a node's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<Telemetry>,
    /// Engine settings (context length, dtype, ...), checked against the engine's own schema.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schemars(extend("x-kitt-templatable" = true))]
    pub config: Map<String, Value>,
}

/// Hardware and container settings an engine needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// `all`, a number of GPUs, or a list of GPU ids. Engines that need a GPU (vLLM, SGLang,
    /// TGI) get all of them in docker mode when this is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<GpuRequest>,
    /// CPU cores a Slurm job of this engine asks for (`--cpus-per-task`); the local executor
    /// does not limit them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4096))]
    pub cpus: Option<u32>,
    /// Memory a Slurm job of this engine asks for (`--mem`, e.g. `64g`); the local executor
    /// does not limit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+[kmgtKMGT]?$"))]
    pub memory: Option<String>,
    /// Shared memory of a container, e.g. `8g`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+[kmgKMG]?$"))]
    pub shm_size: Option<String>,
    /// The container's IPC namespace (`host` shares the host's shared memory; vLLM and
    /// SGLang default to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc: Option<IpcMode>,
    /// Container ulimits by name (`memlock`, `stack`, `nofile`, ...): one number for both
    /// limits, or `{soft, hard}`; -1 is unlimited.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": "^[a-z]+$"}))]
    pub ulimits: IndexMap<String, Ulimit>,
}

/// A container's IPC namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IpcMode {
    Host,
    Private,
    Shareable,
}

impl fmt::Display for IpcMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpcMode::Host => "host",
            IpcMode::Private => "private",
            IpcMode::Shareable => "shareable",
        })
    }
}

/// One ulimit: both limits, or each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Ulimit {
    Both(i64),
    Each { soft: i64, hard: i64 },
}

impl Ulimit {
    /// (soft, hard).
    pub fn soft_hard(self) -> (i64, i64) {
        match self {
            Ulimit::Both(n) => (n, n),
            Ulimit::Each { soft, hard } => (soft, hard),
        }
    }
}

/// Where a container engine keeps downloaded weights between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum WeightsCache {
    /// `true`: the host's usual cache (the Hugging Face cache, or `~/.ollama` for Ollama).
    Enabled(bool),
    /// A host directory.
    Path(String),
}

/// Which GPUs an engine gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum GpuRequest {
    /// `all`.
    All(AllGpus),
    /// This many GPUs.
    Count(u32),
    /// These GPU ids.
    Ids(Vec<u32>),
}

/// The word `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AllGpus {
    #[serde(rename = "all")]
    All,
}

/// Settings every node inherits unless it sets them itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Warmup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
}

/// Requests sent before measuring, whose results are discarded.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Warmup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
}

/// Sampling settings sent with every request.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 2.0))]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u32>,
    /// Generate at least this many tokens (where the engine supports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tokens: Option<u32>,
    /// Keep generating past end-of-sequence (where the engine supports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_eos: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
}

/// Retries of a node that failed for a transient reason.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Attempts in total, the first one included.
    #[schemars(range(min = 1, max = 10))]
    pub attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Duration>,
}

/// When a node runs, given how the nodes it needs ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunIf {
    /// Only when every node it needs succeeded.
    #[default]
    Success,
    /// Only when at least one node it needs failed.
    Failure,
    /// Whatever happened before.
    Always,
}

/// One benchmark run on one engine: a node of the suite's DAG.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Unique id, used by `needs` and in results.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"))]
    pub id: String,
    /// A node template from an included file; the node's own settings win, one level deep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    #[serde(flatten)]
    pub body: NodeTemplate,
}

/// Everything a node sets except its id: what a node template holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct NodeTemplate {
    /// The registered benchmark (`kitt test list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<String>,
    /// The engine, by its name under `engines:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Nodes that must finish first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Run on success (default), failure or always of the nodes it needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_if: Option<RunIf>,
    /// Runs the node once per combination of the listed values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<Matrix>,
    /// The benchmark's parameters, checked against its own schema (`kitt test show NAME`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schemars(extend("x-kitt-templatable" = true))]
    pub params: Map<String, Value>,
    /// Bounds on the node's metrics; a breach fails the node.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub assert: IndexMap<String, Bound>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Warmup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
    /// Telemetry of this node's legs (over its engine's and the suite's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<Telemetry>,
}

/// Axes of a node's matrix and how its legs run.
///
/// Every key other than `include`, `exclude`, `max_parallel` and `fail_fast` is an axis: a
/// list of values, each available as `${{ matrix.KEY }}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Matrix(pub Map<String, Value>);

impl JsonSchema for Matrix {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Matrix".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Axes (lists of values, each available as `${{ matrix.KEY }}`) plus include, exclude, max_parallel and fail_fast.",
            "type": "object",
            "properties": {
                "include": {
                    "description": "Extra legs, each a mapping of axis values.",
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
                },
                "exclude": {
                    "description": "Legs to drop: every leg matching all values of an entry.",
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
                },
                "max_parallel": {"description": "Legs that may run at once.", "type": "integer", "minimum": 1},
                "fail_fast": {"description": "Cancel the other legs when one fails (default true).", "type": "boolean"}
            },
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "additionalProperties": {
                "type": "array",
                "minItems": 1,
                "items": {"type": ["string", "number", "boolean"]}
            }
        })
    }
}

/// Bounds on one metric. Ratios compare against a baseline run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1))]
pub struct Bound {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Lowest accepted value / baseline value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ratio: Option<f64>,
    /// Highest accepted value / baseline value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ratio: Option<f64>,
    /// `last-success` (of this suite) or a run id; required with ratios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
}

/// A report rendered at the end of `kitt apply`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// The registered reporter.
    pub reporter: String,
    /// Output path; `{{ suite.name }}` and other report-context values may appear in it.
    pub output: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schemars(extend("x-kitt-templatable" = true))]
    pub params: Map<String, Value>,
}

/// A duration written as `90s`, `30m`, `1h30m` or `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub StdDuration);

/// The pattern every duration string matches.
pub const DURATION_PATTERN: &str = r"^([0-9]{1,9}(ms|s|m|h))+$";

impl Duration {
    /// Parses `1h30m`, `90s`, `500ms`.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let mut total = StdDuration::ZERO;
        let mut rest = text;
        if rest.is_empty() {
            return Err("empty duration".into());
        }
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(format!(
                    "`{text}` is not a duration like 90s, 30m, 1h30m or 500ms"
                ));
            }
            let n: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("`{text}`: number too large"))?;
            rest = &rest[digits..];
            let (unit, len) = if rest.starts_with("ms") {
                (StdDuration::from_millis(1), 2)
            } else if rest.starts_with('s') {
                (StdDuration::from_secs(1), 1)
            } else if rest.starts_with('m') {
                (StdDuration::from_secs(60), 1)
            } else if rest.starts_with('h') {
                (StdDuration::from_secs(3600), 1)
            } else {
                return Err(format!(
                    "`{text}` is not a duration like 90s, 30m, 1h30m or 500ms"
                ));
            };
            rest = &rest[len..];
            let part = unit
                .checked_mul(u32::try_from(n).map_err(|_| format!("`{text}`: number too large"))?)
                .ok_or_else(|| format!("`{text}`: duration too large"))?;
            total = total
                .checked_add(part)
                .ok_or_else(|| format!("`{text}`: duration too large"))?;
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 1000 != 0 {
            return write!(f, "{ms}ms");
        }
        let mut s = self.0.as_secs();
        let h = s / 3600;
        s %= 3600;
        let m = s / 60;
        s %= 60;
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 || (h == 0 && m == 0) {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Duration::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration such as `90s`, `30m`, `1h30m` or `500ms`.",
            "type": "string",
            "pattern": DURATION_PATTERN
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(Duration::parse("1h30m").unwrap().0.as_secs(), 5400);
        assert_eq!(Duration::parse("500ms").unwrap().0.as_millis(), 500);
        assert_eq!(Duration::parse("90s").unwrap().to_string(), "1m30s");
        assert!(Duration::parse("5 minutes").is_err());
        assert!(Duration::parse("99999999999999h").is_err());
    }
}
