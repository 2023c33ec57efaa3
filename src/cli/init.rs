//! `kitt init`: write a starter suite (simulator only, so it runs anywhere) and the schema
//! editors use to complete and check it.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::exit;
use crate::suite::schema;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the suite.
    #[arg(default_value = "suite.yaml")]
    path: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
}

/// The starter suite; `{schema}` is replaced by the schema's path relative to the suite.
const STARTER: &str = r#"# yaml-language-server: $schema={schema}
# A starter kitt suite. It uses the built-in simulator engine, so it needs no GPU.
# Check it with `kitt validate {file}` and see its plan with `kitt plan {file}`.
apiVersion: kitt/v1
kind: Suite
metadata:
  name: {name}
  version: 0.1.0
  description: Starter suite
params:
  requests: {type: integer, default: 20}
engines:
  sim:
    uses: simulator
    config: {ttft: 50ms, itl: 10ms, output_tokens: 64}
defaults:
  sampling: {temperature: 0, max_tokens: 64}
  timeout: 5m
nodes:
  - id: latency
    benchmark: latency
    engine: sim
    params: {requests: "${{ params.requests }}"}
    assert: {ttft_p99_ms: {max: 500}}
  - id: load
    benchmark: load
    engine: sim
    needs: [latency]
    matrix: {concurrency: [1, 4]}
    params: {concurrency: "${{ matrix.concurrency }}", requests: 50}
"#;

pub fn run(args: Args) -> anyhow::Result<u8> {
    if args.path.exists() && !args.force {
        bail!(
            "{} exists; pass --force to overwrite it",
            args.path.display()
        );
    }
    let guard = crate::paths::Guard::for_kitt().with_store(&crate::store::default_path(None));
    guard.check_write(&args.path)?;
    let dir = args
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let schema_dir = dir.join(".kitt/schemas");
    std::fs::create_dir_all(&schema_dir)
        .with_context(|| format!("creating {}", schema_dir.display()))?;
    let schema_path = schema_dir.join("suite.schema.json");
    // A schema file someone changed is kept unless --force.
    let current = std::fs::read_to_string(&schema_path).ok();
    if current.is_some() && current.as_deref() != Some(schema::SUITE_SCHEMA) && !args.force {
        crate::errln!(
            "note: kept {} (it differs from this kitt's schema; pass --force to replace it)",
            schema_path.display()
        );
    } else {
        guard.check_write(&schema_path)?;
        std::fs::write(&schema_path, schema::SUITE_SCHEMA)
            .with_context(|| format!("writing {}", schema_path.display()))?;
    }
    let name = args
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .filter(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
        .unwrap_or_else(|| "starter".into());
    let text = STARTER
        .replace("{schema}", ".kitt/schemas/suite.schema.json")
        .replace("{file}", &args.path.display().to_string())
        .replace("{name}", &name);
    std::fs::write(&args.path, text).with_context(|| format!("writing {}", args.path.display()))?;
    crate::outln!(
        "wrote {} and {}",
        args.path.display(),
        schema_path.display()
    );
    Ok(exit::OK)
}
