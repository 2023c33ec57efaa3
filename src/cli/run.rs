//! `kitt run --engine NAME --model M (--suite S | --benchmark B)...`: the imperative
//! shortcut of the original KITT. It writes a one-engine suite in memory — a shipped suite's
//! nodes, or the listed benchmarks — and applies it exactly like `kitt apply`.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Value, json};

use super::engine_flags::EngineFlags;
use crate::runner::ApplyRequest;
use crate::suite::load::{Limits, load_yaml};
use crate::suite::params::Override;

/// The engine instance name in the suites `kitt run` writes.
const ENGINE: &str = "engine";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The registered engine (`kitt engines list`).
    #[arg(long, short = 'e')]
    engine: String,
    #[command(flatten)]
    flags: EngineFlags,
    /// Take the nodes of this suite, all on the given engine.
    #[arg(long, short = 's', conflicts_with = "benchmark")]
    suite: Option<PathBuf>,
    /// Run this benchmark with its default params (repeatable).
    #[arg(long, short = 'b', required_unless_present = "suite")]
    benchmark: Vec<String>,
    /// Set a suite parameter (with --suite; repeatable).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<Override>,
    #[command(flatten)]
    run: super::apply::RunFlags,
}

/// A suite name from free text: lowercase letters, digits and dashes.
fn slug(text: &str) -> String {
    let s: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.trim_matches('-').to_string()
}

/// The suite `kitt run` applies, as JSON text (which is YAML), and the path it stands for.
pub fn build(
    engine: &str,
    flags: &EngineFlags,
    suite: Option<&PathBuf>,
    benchmarks: &[String],
) -> anyhow::Result<(PathBuf, String)> {
    let spec = serde_json::to_value(flags.spec(engine)?)?;
    let (path, doc) = match suite {
        Some(path) => {
            let limits = Limits::default();
            let text = crate::fsio::read_text(path, limits.max_bytes as u64)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let loaded = load_yaml(&text, &limits).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {} (run `kitt validate {}`)",
                    path.display(),
                    e.message,
                    path.display()
                )
            })?;
            let mut doc = loaded.value;
            let name = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("suite")
                .to_string();
            doc["metadata"]["name"] = json!(slug(&format!("{name}-{engine}")));
            doc["engines"] = json!({ ENGINE: spec });
            if let Some(nodes) = doc.get_mut("nodes").and_then(Value::as_array_mut) {
                for node in nodes {
                    if let Some(map) = node.as_object_mut() {
                        map.insert("engine".into(), json!(ENGINE));
                    }
                }
            }
            (path.clone(), doc)
        }
        None => {
            let nodes: Vec<Value> = benchmarks
                .iter()
                .map(|b| json!({"id": slug(b).replace('-', "_"), "benchmark": b, "engine": ENGINE}))
                .collect();
            let doc = json!({
                "apiVersion": "kitt/v1",
                "kind": "Suite",
                "metadata": {
                    "name": slug(&format!("run-{engine}")),
                    "version": "1.0.0",
                    "description": format!("kitt run: {} on {engine}", benchmarks.join(", "))
                },
                "engines": { ENGINE: spec },
                "nodes": nodes
            });
            (std::env::current_dir()?.join("kitt-run.yaml"), doc)
        }
    };
    Ok((path, serde_json::to_string_pretty(&doc)?))
}

pub fn run(args: Args, globals: &super::Globals) -> anyhow::Result<u8> {
    let (path, text) = build(
        &args.engine,
        &args.flags,
        args.suite.as_ref(),
        &args.benchmark,
    )?;
    let request = ApplyRequest {
        suite_path: path,
        suite_text: Some(text),
        overrides: args.params,
        only: Vec::new(),
        only_changed: false,
        resume: None,
        dry_run: args.run.dry_run,
        store: crate::store::default_path(args.run.store.as_deref()),
        plain: args.run.plain,
        force: args.run.force,
    };
    super::apply::run_request(&request, globals)
}
