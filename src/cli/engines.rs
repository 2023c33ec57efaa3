//! `kitt engines list | check | try | gc`: what engines exist, whether one can run here,
//! a one-request smoke run, and removal of containers left by crashed runs.

use std::future::Future;
use std::io::Write;

use anyhow::Context;
use serde::Serialize;

use super::engine_flags::EngineFlags;
use crate::engine::checks::{Status, availability, check_engine};
use crate::engine::error::{EngineError, ErrorKind};
use crate::engine::generation::{Endpoint, GenerationRequest};
use crate::engine::runtime::{StartContext, docker};
use crate::exit;
use crate::registry::Registry;
use crate::suite::model::{EngineSpec, RuntimeMode, Sampling};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// List the registered engines: formats, default image, modes and whether each mode
    /// can run on this machine.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check that an engine can run here without starting it: Docker, image, binary, GPU,
    /// model format, endpoint. Exit 69 when a service is missing, 1 when the model or
    /// settings are wrong.
    Check(EngineArgs),
    /// Start an engine, send it one streaming request, print what was measured, stop it.
    Try {
        #[command(flatten)]
        engine: EngineArgs,
        /// The prompt to send.
        #[arg(long, default_value = "Say hello in five words.")]
        prompt: String,
        /// Tokens to ask for.
        #[arg(long, default_value_t = 32)]
        max_tokens: u32,
        /// Use /v1/completions instead of /v1/chat/completions.
        #[arg(long)]
        completions: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove containers that kitt runs left behind (their kitt process is gone).
    Gc {
        /// Remove every kitt-labelled container, also those of running kitt processes.
        #[arg(long)]
        all: bool,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Docker daemon to clean (default: the local one or DOCKER_HOST).
        #[arg(long)]
        docker_host: Option<String>,
    },
}

/// An engine by registered name, with its settings from flags.
#[derive(Debug, clap::Args)]
struct EngineArgs {
    /// The registered engine name (`kitt engines list`).
    name: String,
    #[command(flatten)]
    flags: EngineFlags,
}

impl EngineArgs {
    fn spec(&self) -> anyhow::Result<EngineSpec> {
        self.flags.spec(&self.name)
    }
}

pub fn run(args: Args, globals: &super::Globals) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let registry = globals.registry_for(None);
    match args.command {
        Sub::List { json } => runtime.block_on(list(&registry, json)),
        Sub::Check(engine) => runtime.block_on(check(&registry, &engine)),
        Sub::Try {
            engine,
            prompt,
            max_tokens,
            completions,
            json,
        } => {
            let request = GenerationRequest {
                endpoint: if completions {
                    Endpoint::Completions
                } else {
                    Endpoint::Chat
                },
                prompt,
                stream: true,
                sampling: Sampling {
                    max_tokens: Some(max_tokens),
                    temperature: Some(0.0),
                    ..Sampling::default()
                },
                ..GenerationRequest::default()
            };
            let spec = engine.spec()?;
            runtime.block_on(until_interrupted(try_engine(
                &registry, spec, request, json,
            )))
        }
        Sub::Gc {
            all,
            dry_run,
            docker_host,
        } => runtime.block_on(gc(all, dry_run, docker_host.as_deref())),
    }
}

/// Runs `work` until it ends or Ctrl-C / SIGTERM arrives; then drops it, which tears down
/// whatever it started, and exits 130.
pub(super) async fn until_interrupted(
    work: impl Future<Output = anyhow::Result<u8>>,
) -> anyhow::Result<u8> {
    tokio::select! {
        outcome = work => outcome,
        _ = crate::process::interrupt::interrupted() => {
            crate::errln!("interrupted: stopping engines");
            Ok(exit::INTERRUPTED)
        }
    }
}

#[derive(Serialize)]
struct ListedEngine<'a> {
    name: &'a str,
    description: &'a str,
    origin: String,
    formats: Vec<String>,
    default_image: Option<&'a str>,
    modes: Vec<ListedMode>,
    needs_gpu: bool,
}

#[derive(Serialize)]
struct ListedMode {
    mode: RuntimeMode,
    availability: &'static str,
}

async fn list(registry: &Registry, json: bool) -> anyhow::Result<u8> {
    let docker_up = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        docker::connect("list", None),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let engines: Vec<ListedEngine> = registry
        .engines
        .iter()
        .map(|e| {
            let info = &e.info;
            ListedEngine {
                name: &info.name,
                description: &info.description,
                origin: e.origin.to_string(),
                formats: info.formats.iter().map(|f| f.to_string()).collect(),
                default_image: info.default_image.as_deref(),
                modes: info
                    .modes
                    .iter()
                    .map(|&mode| ListedMode {
                        mode,
                        availability: availability(info, mode, docker_up),
                    })
                    .collect(),
                needs_gpu: info.needs_gpu(),
            }
        })
        .collect();
    let mut out = crate::output::stdout();
    if json {
        serde_json::to_writer_pretty(&mut out, &engines)?;
        writeln!(out)?;
        return Ok(exit::OK);
    }
    writeln!(
        out,
        "{:<10}  {:<26}  {:<52}  MODES",
        "ENGINE", "FORMATS", "DEFAULT IMAGE"
    )?;
    for e in &engines {
        let modes: Vec<String> = e
            .modes
            .iter()
            .map(|m| format!("{} ({})", m.mode, m.availability))
            .collect();
        writeln!(
            out,
            "{:<10}  {:<26}  {:<52}  {}",
            e.name,
            e.formats.join(", "),
            e.default_image.unwrap_or("-"),
            modes.join(", ")
        )?;
    }
    Ok(exit::OK)
}

async fn check(registry: &Registry, engine: &EngineArgs) -> anyhow::Result<u8> {
    let spec = engine.spec()?;
    let checks = check_engine(registry, &spec).await;
    let mut out = crate::output::stdout();
    writeln!(out, "{:<9} {:<7} DETAIL", "CHECK", "RESULT")?;
    for c in &checks {
        let status = match c.status {
            Status::Ok => "ok",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        };
        writeln!(out, "{:<9} {:<7} {}", c.name, status, c.detail)?;
    }
    let failed = |kind| {
        checks
            .iter()
            .any(|c| c.status == Status::Failed && c.kind == kind)
    };
    Ok(if failed(ErrorKind::Unavailable) {
        exit::UNAVAILABLE
    } else if checks.iter().any(|c| c.status == Status::Failed) {
        exit::FAILED
    } else {
        exit::OK
    })
}

/// Exit code for an engine error.
pub(super) fn engine_exit(e: &EngineError) -> u8 {
    match e.kind {
        ErrorKind::Unavailable => exit::UNAVAILABLE,
        ErrorKind::Interrupted => exit::INTERRUPTED,
        ErrorKind::Config | ErrorKind::Failed => exit::FAILED,
    }
}

async fn try_engine(
    registry: &Registry,
    spec: EngineSpec,
    request: GenerationRequest,
    json: bool,
) -> anyhow::Result<u8> {
    let ctx = StartContext::new_run();
    crate::noteln!("starting `{}` (run {})", spec.uses, ctx.run_id);
    let engine = match crate::engine::initialize(registry, &spec.uses, &spec, &ctx).await {
        Ok(engine) => engine,
        Err(e) => {
            crate::errln!("error: {e}");
            return Ok(engine_exit(&e));
        }
    };
    crate::errln!("`{}` is healthy at {}", engine.name, engine.base_url);
    let outcome = engine.generate(&request).await;
    engine.cleanup().await;
    let result = match outcome {
        Ok(r) => r,
        Err(e) => {
            crate::errln!("error: engine `{}`: {e}", spec.uses);
            return Ok(exit::FAILED);
        }
    };
    let mut out = crate::output::stdout();
    if json {
        serde_json::to_writer_pretty(&mut out, &result)?;
        writeln!(out)?;
        return Ok(exit::OK);
    }
    let ms = |d: Option<std::time::Duration>| {
        d.map_or("-".to_string(), |d| {
            format!("{:.1} ms", d.as_secs_f64() * 1e3)
        })
    };
    writeln!(out, "text:        {}", result.text.trim())?;
    writeln!(
        out,
        "finish:      {}",
        result.finish_reason.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "tokens:      {} prompt, {} completion ({:?})",
        result
            .prompt_tokens
            .map_or("?".to_string(), |n| n.to_string()),
        result.completion_tokens,
        result.count_source
    )?;
    writeln!(out, "ttft:        {}", ms(result.ttft))?;
    writeln!(out, "ttfo:        {}", ms(result.ttfo))?;
    writeln!(out, "tpot:        {}", ms(result.tpot()))?;
    writeln!(out, "e2e:         {}", ms(Some(result.e2e)))?;
    Ok(exit::OK)
}

async fn gc(all: bool, dry_run: bool, docker_host: Option<&str>) -> anyhow::Result<u8> {
    let client = match docker::connect("gc", docker_host).await {
        Ok(c) => c,
        Err(e) => {
            crate::errln!("error: {}", e.message);
            return Ok(exit::UNAVAILABLE);
        }
    };
    let orphans = docker::orphans(&client, all)
        .await
        .context("cannot list containers")?;
    if orphans.is_empty() {
        crate::outln!("no containers left behind by kitt");
        return Ok(exit::OK);
    }
    for o in &orphans {
        let verb = if dry_run { "would remove" } else { "removing" };
        crate::outln!(
            "{verb} {} ({}), engine `{}`, run {}, owner {}",
            o.name,
            &o.id[..o.id.len().min(12)],
            o.engine,
            o.run,
            o.owner
        );
        if !dry_run {
            docker::remove_orphan(&client, o).await;
        }
    }
    Ok(exit::OK)
}
