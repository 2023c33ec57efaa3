//! `kitt plugin list | check DIR | install PATH|GIT_URL | remove NAME | new NAME`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::assemble::register;
use crate::exit;
use crate::paths::{NameKind, component};
use crate::plugin::discovery::{Discovered, Search, discover_all};
use crate::plugin::host::NoHost;
use crate::plugin::install::{self, InstallError};
use crate::plugin::manifest::{Kind, Manifest, Runtime};
use crate::plugin::subprocess::PluginProcess;
use crate::plugin::wasm::WasmPlugin;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Every plugin found: name, kind, version, runtime, where, and whether it registers.
    List {
        /// Also look beside this suite (`.kitt/plugins/`).
        #[arg(long)]
        suite: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// For plugin authors' CI: lint the manifest, register it, run the handshake and a
    /// `describe` round trip.
    Check { dir: PathBuf },
    /// Validate a plugin directory, a git URL or a Python package and install it: a
    /// directory or clone is copied into kitt's data directory, a package is installed with
    /// pip into a virtual environment of its own.
    Install {
        /// A directory, a git URL (cloned with `git clone --depth 1`), or a package
        /// requirement from a Python package index (`kitt-engine-triton`,
        /// `kitt-engine-triton==0.2.0`).
        source: String,
        /// Replace an installed plugin of the same name (a package: reinstall it).
        #[arg(long)]
        force: bool,
        /// A package: move to the newest version whose kitt range includes this kitt.
        #[arg(long)]
        upgrade: bool,
        /// The package index (PEP 503 simple API; default $KITT_PLUGIN_INDEX, else PyPI).
        #[arg(long, value_name = "URL")]
        index_url: Option<String>,
    },
    /// Remove an installed plugin (by plugin or package name), with its environment.
    Remove { name: String },
    /// Write a new plugin directory to start from.
    New {
        name: String,
        #[arg(long, value_parser = ["benchmark"], default_value = "benchmark")]
        kind: String,
        #[arg(long, value_parser = ["subprocess"], default_value = "subprocess")]
        runtime: String,
        /// Write a publishable Python package (pyproject.toml with a `kitt.plugins` entry
        /// point) holding the plugin, from which `pip wheel` builds an installable wheel.
        #[arg(long)]
        package: bool,
    },
}

pub fn run(args: Args, globals: &super::Globals) -> anyhow::Result<u8> {
    match args.command {
        Sub::List { suite, json } => list(suite.as_deref(), &globals.plugins, json),
        Sub::Check { dir } => check(&dir, &globals.plugins),
        Sub::Install {
            source,
            force,
            upgrade,
            index_url,
        } => {
            let is_dir = Path::new(&source).exists() || source.contains('/');
            let is_git = source.contains("://") || source.starts_with("git@");
            if is_git || (is_dir && index_url.is_none() && !upgrade) {
                install(&source, force, &globals.plugins)
            } else {
                let index = index_url
                    .or_else(|| std::env::var("KITT_PLUGIN_INDEX").ok())
                    .unwrap_or_else(|| crate::plugin::pypi::DEFAULT_INDEX.to_string());
                install_package(&source, &index, force, upgrade, &globals.plugins)
            }
        }
        Sub::Remove { name } => remove(&name),
        Sub::New {
            name,
            kind: _,
            runtime: _,
            package,
        } => scaffold(&name, package),
    }
}

fn runtime_name(m: &Manifest) -> &'static str {
    match m.runtime {
        Runtime::Subprocess { .. } => "subprocess",
        Runtime::Wasm { .. } => "wasm",
        Runtime::Templates => "templates",
    }
}

fn list(suite: Option<&Path>, search: &Search, json: bool) -> anyhow::Result<u8> {
    let mut registry = crate::assemble::builtins();
    let mut out = crate::output::stdout();
    let mut rows = Vec::new();
    for found in discover_all(&search.dirs(suite)) {
        let problem = register(&mut registry, &found, search).err();
        let manifest = found.manifest.as_ref().ok();
        let problem = problem.or_else(|| found.manifest.as_ref().err().map(|e| e.to_string()));
        rows.push(serde_json::json!({
            "name": manifest.map(|m| m.name.clone()),
            "kind": manifest.map(|m| format!("{:?}", m.kind).to_lowercase()),
            "version": manifest.map(|m| m.version.clone()),
            "runtime": manifest.map(runtime_name),
            "status": if problem.is_none() { "ok" } else { "error" },
            "error": problem,
            "dir": found.dir.display().to_string(),
            "source": found.source.to_string(),
        }));
    }
    if json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(exit::OK);
    }
    writeln!(
        out,
        "{:<20} {:<10} {:<9} {:<11} {:<8} SOURCE",
        "PLUGIN", "KIND", "VERSION", "RUNTIME", "STATUS"
    )?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_string();
    for r in &rows {
        writeln!(
            out,
            "{:<20} {:<10} {:<9} {:<11} {:<8} {}",
            text(&r["name"]),
            text(&r["kind"]),
            text(&r["version"]),
            text(&r["runtime"]),
            if r["status"] == "ok" { "ok" } else { "ERROR" },
            match r["source"].as_str() {
                Some("dir") | None => text(&r["dir"]),
                Some(package) => package.to_string(),
            }
        )?;
        if let Some(e) = r["error"].as_str() {
            writeln!(out, "  error: {e}")?;
        }
    }
    Ok(exit::OK)
}

/// Lints, registers and (for subprocess plugins) talks to the plugin in `dir`.
fn check(dir: &Path, search: &Search) -> anyhow::Result<u8> {
    let manifest = match Manifest::load(dir) {
        Ok(m) => m,
        Err(e) => {
            crate::errln!("error: {e}");
            return Ok(exit::FAILED);
        }
    };
    check_loaded(dir, manifest, search)
}

/// `check` for a manifest already read (a package plugin's, its command run by the
/// package's own interpreter).
fn check_loaded(dir: &Path, manifest: Manifest, search: &Search) -> anyhow::Result<u8> {
    crate::outln!(
        "manifest: ok ({} {} {})",
        manifest.name,
        manifest.version,
        runtime_name(&manifest)
    );
    let found = Discovered {
        dir: dir.to_path_buf(),
        manifest: Ok(manifest.clone()),
        source: crate::plugin::discovery::Source::Dir,
    };
    if let Err(e) = register(&mut crate::assemble::builtins(), &found, search) {
        crate::errln!("error: {e}");
        return Ok(exit::FAILED);
    }
    crate::outln!("registration: ok");
    if !matches!(manifest.runtime, Runtime::Templates) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let logs = tempfile::tempdir().context("cannot create a log directory")?;
        let outcome: Result<serde_json::Value, String> = runtime.block_on(async {
            if let Runtime::Wasm { .. } = manifest.runtime {
                let mut module = WasmPlugin::load(dir, &manifest).map_err(|e| e.to_string())?;
                crate::outln!("module: ok (sha256 matches)");
                let described = module
                    .call("describe", serde_json::json!({}), &NoHost)
                    .await
                    .map_err(|e| e.to_string());
                crate::outln!("handshake: ok");
                return described;
            }
            let mut p = PluginProcess::start(dir, &manifest, logs.path())
                .await
                .map_err(|e| e.to_string())?;
            crate::outln!("handshake: ok (features: {})", p.features.join(", "));
            let described = p
                .call(
                    "describe",
                    serde_json::json!({}),
                    Duration::from_secs(10),
                    &NoHost,
                )
                .await
                .map_err(|e| e.to_string());
            p.stop().await;
            described
        });
        match outcome {
            Ok(d) => {
                if manifest.kind == Kind::Benchmark
                    && let (Some(declared), Some(described)) = (
                        manifest
                            .benchmark
                            .as_ref()
                            .map(|b| b.metrics.keys().cloned().collect::<Vec<_>>()),
                        d.get("metrics")
                            .and_then(|m| m.as_object())
                            .map(|m| m.keys().cloned().collect::<Vec<_>>()),
                    )
                {
                    let mut a = declared;
                    let mut b = described;
                    a.sort();
                    b.sort();
                    if a != b {
                        crate::errln!(
                            "error: `describe` lists metrics {b:?}, the manifest declares {a:?}"
                        );
                        return Ok(exit::FAILED);
                    }
                }
                crate::outln!("describe: ok");
            }
            Err(e) => {
                crate::errln!("error: {e}");
                return Ok(exit::FAILED);
            }
        }
    }
    Ok(exit::OK)
}

/// Copies `from` into `to`, refusing symlinks and anything that is not a file or directory.
fn install(source: &str, force: bool, search: &Search) -> anyhow::Result<u8> {
    let fetched = install::fetch(source)?;
    let manifest = match Manifest::load(fetched.dir()) {
        Ok(m) => m,
        Err(e) => {
            crate::errln!("error: {e}");
            return Ok(exit::FAILED);
        }
    };
    // It must register beside the built-ins, as it will when kitt next looks for plugins.
    let found = Discovered {
        dir: fetched.dir().to_path_buf(),
        manifest: Ok(manifest.clone()),
        source: crate::plugin::discovery::Source::Dir,
    };
    if let Err(e) = register(&mut crate::assemble::builtins(), &found, search) {
        crate::errln!("error: {e}");
        return Ok(exit::FAILED);
    }
    match install::install(fetched.dir(), &manifest, force) {
        Ok(at) => {
            crate::outln!(
                "installed {} {} at {}",
                manifest.name,
                manifest.version,
                at.display()
            );
            Ok(exit::OK)
        }
        Err(InstallError::Refused(why)) => {
            crate::errln!("error: {why}");
            Ok(exit::FAILED)
        }
        Err(InstallError::Path(e)) => Err(e.into()),
        Err(InstallError::Failed(e)) => Err(e),
    }
}

fn remove(name: &str) -> anyhow::Result<u8> {
    if let Some(package) = crate::plugin::pypi::find(name) {
        crate::plugin::pypi::remove(&package)?;
        crate::outln!(
            "removed {} ({} {} and its environment)",
            package.plugin,
            package.package,
            package.version
        );
        return Ok(exit::OK);
    }
    install::remove(name)?;
    crate::outln!("removed {name}");
    Ok(exit::OK)
}

/// `plugin install PACKAGE`: staged in a new environment, checked as `plugin check` checks,
/// then swapped in; with `--upgrade`, the newest version whose kitt range holds.
fn install_package(
    spec: &str,
    index: &str,
    force: bool,
    upgrade: bool,
    search: &Search,
) -> anyhow::Result<u8> {
    use crate::plugin::pypi;
    let package = pypi::requirement_name(spec).map_err(exit::usage)?;
    let current = pypi::find(&package);
    if let Some(c) = &current
        && !force
        && !upgrade
    {
        crate::errln!(
            "error: {} {} is installed from {}; `--upgrade` moves to the newest version, `--force` reinstalls",
            c.package,
            c.version,
            c.index_url
        );
        return Ok(exit::FAILED);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // The requirements to try, in order: as given, or (upgrade) each newer version.
    let candidates: Vec<String> = match (&current, upgrade && spec == package) {
        (Some(c), true) => {
            let versions = runtime
                .block_on(pypi::versions(&package, index, &c.env_dir()))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let installed = semver_like(&c.version);
            let newer: Vec<String> = versions
                .into_iter()
                .filter(|v| semver_like(v) > installed)
                .take(5)
                .map(|v| format!("{package}=={v}"))
                .collect();
            if newer.is_empty() {
                crate::outln!(
                    "{} {} is the newest version on {index}",
                    c.package,
                    c.version
                );
                return Ok(exit::OK);
            }
            newer
        }
        _ => vec![spec.to_string()],
    };
    for candidate in &candidates {
        crate::noteln!("installing {candidate} from {index}");
        let staged = match runtime.block_on(pypi::stage(candidate, index)) {
            Ok(s) => s,
            Err(e) => {
                crate::errln!("error: {e}");
                if candidates.len() > 1 {
                    continue;
                }
                return Ok(exit::FAILED);
            }
        };
        let checked = check_loaded(
            &staged.installed.plugin_dir,
            staged.manifest.clone(),
            search,
        )?;
        if checked != exit::OK {
            crate::errln!(
                "error: {} {} did not pass the plugin check; {}",
                staged.installed.package,
                staged.installed.version,
                match &current {
                    Some(c) => format!("{} stays installed", c.version),
                    None => "nothing was installed".into(),
                }
            );
            pypi::abort(staged);
            if candidates.len() > 1 {
                continue;
            }
            return Ok(exit::FAILED);
        }
        pypi::commit(&staged)?;
        crate::outln!(
            "installed {} {} (plugin {}) in {}",
            staged.installed.package,
            staged.installed.version,
            staged.installed.plugin,
            staged.installed.env_dir().display()
        );
        return Ok(exit::OK);
    }
    crate::errln!(
        "error: no newer version of {package} passed; {} stays installed",
        current.map_or("nothing".to_string(), |c| c.version)
    );
    Ok(exit::FAILED)
}

/// A version's leading numbers, for ordering (`0.10.1` after `0.9`).
fn semver_like(v: &str) -> Vec<u64> {
    v.split(['.', '-', '+'])
        .map_while(|p| p.parse().ok())
        .collect()
}

const SCAFFOLD_MANIFEST: &str = r#"manifest_version = 1
name = "NAME"
kind = "benchmark"
version = "0.1.0"
description = "What NAME measures"
kitt = ">=0.1"
params_schema = "params.schema.json"

[runtime]
type = "subprocess"
command = ["python3", "plugin.py"]
startup_timeout = "10s"

[benchmark]
category = "quality_custom"
outputs = ["score"]

[benchmark.metrics]
score = { unit = "ratio", direction = "higher" }
"#;

const SCAFFOLD_SCHEMA: &str = r#"{
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "prompt": {"type": "string", "default": "Say hello."}
  }
}
"#;

const SCAFFOLD_PLUGIN: &str = r#"#!/usr/bin/env python3
"""A kitt benchmark plugin: JSON-RPC 2.0, one message per line on stdin/stdout."""
import json
import sys


def send(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def call_host(method, params, ids=iter(range(1, 1 << 30))):
    """Asks the host (kitt) something, e.g. `generate` on the node's engine."""
    request_id = "p%d" % next(ids)
    send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
    while True:
        reply = json.loads(sys.stdin.readline())
        if reply.get("id") == request_id:
            if "error" in reply:
                raise RuntimeError(reply["error"]["message"])
            return reply["result"]


def run(params):
    answer = call_host("generate", {"prompt": params.get("prompt", "Say hello."), "max_tokens": 16})
    score = 1.0 if answer["text"].strip() else 0.0
    return {"passed": True, "metrics": {"score": score}, "outputs": {"score": score}}


for line in sys.stdin:
    message = json.loads(line)
    method, request_id = message.get("method"), message.get("id")
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": request_id, "result": {"protocol_version": 1, "features": ["run", "describe"]}})
    elif method == "describe":
        send({"jsonrpc": "2.0", "id": request_id, "result": {"metrics": {"score": {"unit": "ratio", "direction": "higher"}}}})
    elif method == "run":
        send({"jsonrpc": "2.0", "id": request_id, "result": run(message["params"]["params"])})
    elif method == "shutdown":
        break
"#;

/// The pyproject of a plugin package: NAME is the plugin's name, MODULE its module.
const SCAFFOLD_PYPROJECT: &str = r#"[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "kitt-NAME"
version = "0.1.0"
description = "A kitt plugin: NAME"
requires-python = ">=3.8"
dependencies = []

# kitt finds the plugin through this entry point: the module whose directory holds
# plugin.toml. One per package.
[project.entry-points."kitt.plugins"]
NAME = "MODULE"

[tool.setuptools]
packages = ["MODULE"]

[tool.setuptools.package-data]
MODULE = ["plugin.toml", "params.schema.json", "plugin.py"]
"#;

fn scaffold(name: &str, package: bool) -> anyhow::Result<u8> {
    let dir = PathBuf::from(name);
    // The last component becomes the plugin's name: it must be one `plugin check` accepts.
    let plugin_name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    if component(NameKind::Plugin, &plugin_name).is_err()
        || plugin_name.chars().any(|c| c.is_ascii_uppercase())
    {
        return Err(exit::usage(format!(
            "`{name}`: a plugin's name (the directory's last part) must start with a letter or digit and hold only a-z, 0-9, `.`, `_` and `-`"
        )));
    }
    if dir.exists() {
        crate::errln!(
            "error: {} exists; choose another name or remove it",
            dir.display()
        );
        return Ok(exit::FAILED);
    }
    let module = format!("kitt_{}", plugin_name.replace(['-', '.'], "_"));
    let plugin_dir = if package {
        dir.join(&module)
    } else {
        dir.clone()
    };
    std::fs::create_dir_all(&plugin_dir)?;
    std::fs::write(
        plugin_dir.join("plugin.toml"),
        SCAFFOLD_MANIFEST.replace("NAME", &plugin_name),
    )?;
    std::fs::write(plugin_dir.join("params.schema.json"), SCAFFOLD_SCHEMA)?;
    std::fs::write(plugin_dir.join("plugin.py"), SCAFFOLD_PLUGIN)?;
    if package {
        std::fs::write(
            plugin_dir.join("__init__.py"),
            "\"\"\"A kitt plugin package.\"\"\"\n",
        )?;
        std::fs::write(
            dir.join("pyproject.toml"),
            SCAFFOLD_PYPROJECT
                .replace("MODULE", &module)
                .replace("NAME", &plugin_name),
        )?;
        crate::outln!(
            "wrote the package {0} (pyproject.toml, {1}/plugin.toml, {1}/plugin.py); try `kitt plugin check {0}/{1}`, then `pip wheel --no-deps {0}`",
            dir.display(),
            module
        );
        return Ok(exit::OK);
    }
    crate::outln!(
        "wrote {0}/plugin.toml, {0}/params.schema.json and {0}/plugin.py; try `kitt plugin check {0}`",
        dir.display()
    );
    Ok(exit::OK)
}
