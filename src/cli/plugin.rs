//! `kitt plugin list | check DIR | install PATH|GIT_URL | remove NAME | new NAME`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::assemble::register;
use crate::exit;
use crate::paths::{NameKind, component};
use crate::plugin::discovery::{Discovered, Search, discover};
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
    /// Validate a plugin directory (or a git URL) and copy it into kitt's data directory.
    Install {
        /// A directory, or a git URL (cloned with `git clone --depth 1`).
        source: String,
        /// Replace an installed plugin of the same name.
        #[arg(long)]
        force: bool,
    },
    /// Remove an installed plugin.
    Remove { name: String },
    /// Write a new plugin directory to start from.
    New {
        name: String,
        #[arg(long, value_parser = ["benchmark"], default_value = "benchmark")]
        kind: String,
        #[arg(long, value_parser = ["subprocess"], default_value = "subprocess")]
        runtime: String,
    },
}

pub fn run(args: Args, globals: &super::Globals) -> anyhow::Result<u8> {
    match args.command {
        Sub::List { suite, json } => list(suite.as_deref(), &globals.plugins, json),
        Sub::Check { dir } => check(&dir, &globals.plugins),
        Sub::Install { source, force } => install(&source, force, &globals.plugins),
        Sub::Remove { name } => remove(&name),
        Sub::New {
            name,
            kind: _,
            runtime: _,
        } => scaffold(&name),
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
    for found in discover(&search.dirs(suite)) {
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
            text(&r["dir"])
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
    crate::outln!(
        "manifest: ok ({} {} {})",
        manifest.name,
        manifest.version,
        runtime_name(&manifest)
    );
    let found = Discovered {
        dir: dir.to_path_buf(),
        manifest: Ok(manifest.clone()),
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
    install::remove(name)?;
    crate::outln!("removed {name}");
    Ok(exit::OK)
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

fn scaffold(name: &str) -> anyhow::Result<u8> {
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
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("plugin.toml"),
        SCAFFOLD_MANIFEST.replace("NAME", &plugin_name),
    )?;
    std::fs::write(dir.join("params.schema.json"), SCAFFOLD_SCHEMA)?;
    std::fs::write(dir.join("plugin.py"), SCAFFOLD_PLUGIN)?;
    crate::outln!(
        "wrote {0}/plugin.toml, {0}/params.schema.json and {0}/plugin.py; try `kitt plugin check {0}`",
        dir.display()
    );
    Ok(exit::OK)
}
