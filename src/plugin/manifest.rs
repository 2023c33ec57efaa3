//! `plugin.toml`: what a plugin is (name, kind, version, the kitt versions it supports), how
//! it runs (a subprocess or a wasm module) and its static facts. Errors point at line:column.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::registry::{Category, Direction, ModelFormat};
use crate::suite::model::Duration;

/// The manifest format this kitt reads.
pub const MANIFEST_VERSION: u32 = 1;
/// Largest manifest, params schema or template file read from a plugin, in bytes.
pub const MAX_FILE: u64 = 1024 * 1024;
/// Largest wasm module read from a plugin, in bytes.
pub const MAX_MODULE: u64 = 64 * 1024 * 1024;

/// A plugin's manifest.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The manifest format version (1).
    pub manifest_version: u32,
    /// The name suites use; lowercase letters, digits, `.`, `_` and `-`.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_.-]*$"))]
    pub name: String,
    pub kind: Kind,
    /// The plugin's own version (semver).
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// The kitt versions the plugin supports, a semver range such as `>=0.1, <0.3`.
    pub kitt: String,
    pub runtime: Runtime,
    /// A JSON Schema file (relative to the plugin directory) for the plugin's params
    /// (engine `config:` or node `params:`), so `kitt validate` checks them offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params_schema: Option<String>,
    /// Engines: the engine contract's static facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineFacts>,
    /// Benchmarks: category and the metrics reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<BenchmarkFacts>,
    /// Reporters: the templates shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter: Option<ReporterFacts>,
}

/// What a plugin provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Engine,
    Benchmark,
    Reporter,
}

/// How the plugin runs.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Runtime {
    /// A process speaking newline-delimited JSON-RPC on stdin/stdout.
    Subprocess {
        /// The command and its arguments; the first word is relative to the plugin directory
        /// when it contains a `/`, else found on PATH (e.g. `python3`).
        command: Vec<String>,
        /// How long the `initialize` handshake may take.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        startup_timeout: Option<Duration>,
        /// Environment variables passed through from kitt's environment (nothing else is).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        env: Vec<String>,
    },
    /// A WebAssembly module run in kitt's process under fuel and memory limits.
    Wasm {
        /// The module, relative to the plugin directory.
        module: String,
        /// sha256 of the module, hex.
        sha256: String,
        /// Linear memory limit in MiB.
        #[serde(default = "default_memory")]
        memory_mib: u32,
        /// Fuel (instructions, roughly) per call.
        #[serde(default = "default_fuel")]
        fuel: u64,
    },
    /// Templates only (reporters): nothing runs.
    Templates,
}

fn default_memory() -> u32 {
    64
}
fn default_fuel() -> u64 {
    1_000_000_000
}

/// An engine plugin's facts.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EngineFacts {
    /// Model formats it loads: gguf, safetensors, ollama_tag, server_side.
    #[serde(default)]
    pub formats: Vec<ModelFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub container_port: u16,
    #[serde(default = "default_health")]
    pub health: String,
    /// Whether instances must name a model.
    #[serde(default)]
    pub model_required: bool,
}

fn default_health() -> String {
    "/v1/models".into()
}

/// A benchmark plugin's facts.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkFacts {
    /// performance, quality_standard or quality_custom.
    pub category: Category,
    /// Metric name → `{unit, direction}` (direction: higher or lower).
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricFacts>,
    /// Outputs later nodes may read.
    #[serde(default)]
    pub outputs: Vec<String>,
}

/// A metric's unit and direction.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricFacts {
    pub unit: String,
    /// `higher` or `lower` is better.
    pub direction: Direction,
}

/// A reporter plugin's facts.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReporterFacts {
    /// Template files (relative to the plugin directory); the first is the entry point.
    /// Template-only reporters list at least one; subprocess reporters none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<String>,
    /// Subprocess reporters: how long `report` may take (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// The output's media type, e.g. text/markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// A manifest problem, where it is and what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{path}{at}: {message}{hint}", at = self.at(), hint = self.hint.as_ref().map_or(String::new(), |h| format!(" (hint: {h})")))]
pub struct ManifestError {
    pub path: PathBuf,
    /// 1-based line and column, when known.
    pub line_col: Option<(usize, usize)>,
    pub message: String,
    pub hint: Option<String>,
}

impl ManifestError {
    fn at(&self) -> String {
        self.line_col
            .map_or(String::new(), |(l, c)| format!(":{l}:{c}"))
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Where a top-level key is written (for errors found after parsing).
fn key_position(text: &str, key: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with(key) && trimmed[key.len()..].trim_start().starts_with('=') {
            return Some(line_col(text, offset + (line.len() - trimmed.len())));
        }
        offset += line.len();
    }
    None
}

impl Manifest {
    /// Reads and checks `dir/plugin.toml` against this kitt.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join("plugin.toml");
        let text = crate::fsio::read_text(&path, MAX_FILE).map_err(|e| ManifestError {
            path: path.clone(),
            line_col: e.position().map(|(line, col, _)| (line, col)),
            message: format!("cannot read it: {e}"),
            hint: Some("a plugin is a directory holding plugin.toml".into()),
        })?;
        Manifest::parse(&path, &text)
    }

    /// The path of a file the manifest names (a template, the params schema, the wasm
    /// module): relative, and inside the plugin directory.
    pub fn file(dir: &Path, relative: &str, what: &str) -> Result<PathBuf, String> {
        crate::paths::inside(dir, relative)
            .map_err(|_| format!("{what} `{relative}` must be a path inside the plugin directory"))
    }

    /// Parses and checks manifest text read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_string();
            // An unknown key inside a table is reported at the table; point at the key.
            let key_at = message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
                .and_then(|key| {
                    let from = e.span().map_or(0, |s| s.start);
                    key_position(&text[from..], key).map(|_| {
                        let offset =
                            from + text[from..].find(&format!("\n{key}")).map_or(0, |i| i + 1);
                        line_col(text, offset)
                    })
                });
            ManifestError {
                path: path.to_path_buf(),
                line_col: key_at.or_else(|| e.span().map(|s| line_col(text, s.start))),
                message,
                hint: Some("see `kitt schema plugin` for the manifest's fields".into()),
            }
        })?;
        let err = |key: &str, message: String, hint: Option<&str>| ManifestError {
            path: path.to_path_buf(),
            line_col: key_position(text, key),
            message,
            hint: hint.map(str::to_string),
        };
        if manifest.manifest_version != MANIFEST_VERSION {
            return Err(err(
                "manifest_version",
                format!(
                    "manifest_version {} is not one this kitt reads ({MANIFEST_VERSION})",
                    manifest.manifest_version
                ),
                Some("upgrade kitt, or write the manifest for version 1"),
            ));
        }
        let lowercase = !manifest.name.chars().any(|c| c.is_ascii_uppercase());
        if !lowercase
            || crate::paths::component(crate::paths::NameKind::Plugin, &manifest.name).is_err()
        {
            return Err(err(
                "name",
                format!(
                    "name `{}` must start with a letter or digit and hold only a-z, 0-9, `.`, `_` and `-`",
                    manifest
                        .name
                        .chars()
                        .take(crate::paths::MAX_NAME)
                        .collect::<String>()
                ),
                Some(
                    "the name becomes the plugin's directory, so `.`, `..` and hidden names are refused",
                ),
            ));
        }
        if let Runtime::Subprocess {
            startup_timeout: Some(t),
            ..
        } = &manifest.runtime
            && t.0.is_zero()
        {
            return Err(err(
                "startup_timeout",
                "startup_timeout is zero: the plugin could never answer its handshake in time"
                    .into(),
                Some("give it a few seconds, such as \"10s\", or leave it out (10s)"),
            ));
        }
        semver::Version::parse(&manifest.version).map_err(|e| {
            err(
                "version",
                format!("version `{}` is not semver: {e}", manifest.version),
                None,
            )
        })?;
        let range = semver::VersionReq::parse(&manifest.kitt).map_err(|e| {
            err(
                "kitt",
                format!("kitt = `{}` is not a semver range: {e}", manifest.kitt),
                Some("e.g. kitt = \">=0.1, <0.3\""),
            )
        })?;
        let ours = semver::Version::parse(env!("CARGO_PKG_VERSION")).expect("kitt's version");
        if !range.matches(&ours) {
            return Err(err(
                "kitt",
                format!(
                    "the plugin supports kitt {}, not this kitt {ours}",
                    manifest.kitt
                ),
                Some("use a kitt in that range, or a plugin version made for this one"),
            ));
        }
        let section = match manifest.kind {
            Kind::Engine => manifest.engine.is_some(),
            Kind::Benchmark => manifest.benchmark.is_some(),
            Kind::Reporter => manifest.reporter.is_some(),
        };
        if !section {
            let kind = format!("{:?}", manifest.kind).to_lowercase();
            return Err(err(
                "kind",
                format!("a {kind} plugin needs a [{kind}] table with its facts"),
                None,
            ));
        }
        match (&manifest.runtime, manifest.kind) {
            (Runtime::Templates, Kind::Engine | Kind::Benchmark) => {
                return Err(err(
                    "type",
                    "only reporters can be templates-only; engines and benchmarks need a subprocess or wasm runtime".into(),
                    None,
                ));
            }
            (Runtime::Subprocess { command, .. }, _) if command.is_empty() => {
                return Err(err(
                    "command",
                    "the subprocess command is empty".into(),
                    None,
                ));
            }
            (Runtime::Wasm { sha256, .. }, _)
                if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                return Err(err(
                    "sha256",
                    format!("sha256 `{sha256}` is not 64 hex digits"),
                    Some("write the module's `sha256sum` here"),
                ));
            }
            _ => {}
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
manifest_version = 1
name = "echo"
kind = "benchmark"
version = "0.1.0"
kitt = ">=0.1"

[runtime]
type = "subprocess"
command = ["python3", "bench.py"]

[benchmark]
category = "quality_custom"
metrics = { score = { unit = "ratio", direction = "higher" } }
"#;

    #[test]
    fn a_good_manifest_parses() {
        let m = Manifest::parse(Path::new("p/plugin.toml"), GOOD).unwrap();
        assert_eq!(m.name, "echo");
        assert_eq!(m.kind, Kind::Benchmark);
        assert!(matches!(m.runtime, Runtime::Subprocess { .. }));
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let bad = GOOD.replace("kind = \"benchmark\"", "kind = \"benchmrk\"");
        let e = Manifest::parse(Path::new("p/plugin.toml"), &bad).unwrap_err();
        assert_eq!(e.line_col.map(|l| l.0), Some(4), "{e}");
        assert!(e.to_string().starts_with("p/plugin.toml:4:"), "{e}");
        let typo = GOOD.replace("version = \"0.1.0\"", "verison = \"0.1.0\"");
        let e = Manifest::parse(Path::new("p/plugin.toml"), &typo).unwrap_err();
        assert!(e.to_string().contains("verison"), "{e}");
        let old = GOOD.replace(">=0.1", ">=9.0");
        let e = Manifest::parse(Path::new("p/plugin.toml"), &old).unwrap_err();
        assert_eq!(e.line_col, Some((6, 1)));
        assert!(e.message.contains("not this kitt"), "{e}");
        let missing = GOOD.replace("[benchmark]", "[unused]");
        assert!(Manifest::parse(Path::new("p/plugin.toml"), &missing).is_err());
    }
}
