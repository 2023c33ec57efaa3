//! `kitt apply SUITE`: run the whole suite, store every measurement, exit with its verdict.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use crate::exit;
use crate::runner::progress::Progress;
use crate::runner::{ApplyRequest, Outcome, Ran, apply};
use crate::store::RunStatus;
use crate::suite::params::Override;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The suite file.
    suite: PathBuf,
    /// Set a suite parameter (repeatable).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<Override>,
    /// Run only these nodes (repeatable); the others keep the last successful run's results.
    #[arg(long, value_name = "NODE")]
    only: Vec<String>,
    /// Run only the nodes whose resolved spec changed since the last successful run, and
    /// what depends on them.
    #[arg(long, conflicts_with_all = ["only", "resume"])]
    only_changed: bool,
    /// Continue an interrupted or failed run, skipping legs it finished with the same spec.
    #[arg(long, value_name = "RUN", conflicts_with = "only")]
    resume: Option<String>,
    #[command(flatten)]
    run: RunFlags,
}

/// Flags of every command that applies a suite.
#[derive(Debug, clap::Args)]
pub struct RunFlags {
    /// Show what would run; start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The results store (default: $KITT_STORE, else kitt.db in the data directory).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Plain timestamped progress lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// Let the suite's reports replace files kitt did not write (never the store or the suite).
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args, globals: &super::Globals) -> anyhow::Result<u8> {
    let request = ApplyRequest {
        suite_path: args.suite,
        suite_text: None,
        overrides: args.params,
        only: args.only,
        only_changed: args.only_changed,
        resume: args.resume,
        dry_run: args.run.dry_run,
        store: crate::store::default_path(args.run.store.as_deref()),
        plain: args.run.plain,
        force: args.run.force,
    };
    run_request(&request, globals)
}

/// Applies a request on a fresh runtime, stopping cleanly at Ctrl-C/SIGTERM; prints what
/// happened and returns the exit code (0 held, 1 invalid/failed/breached, 130 interrupted).
pub fn run_request(request: &ApplyRequest, globals: &super::Globals) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let registry = Arc::new(globals.registry_for(Some(&request.suite_path)));
    // On a worker thread, load generators poll their sockets on the thread that reads them.
    let owned = request.clone();
    let work = runtime.spawn(async move {
        crate::process::interrupt::install();
        let progress = Progress::new(owned.plain);
        apply(
            &owned,
            registry,
            progress,
            crate::process::interrupt::interrupted(),
        )
        .await
    });
    let applied = runtime
        .block_on(work)
        .map_err(|e| crate::exit::internal(format!("the run's task failed: {e}")))??;
    super::print_diagnostics(&applied.diagnostics, &applied.sources)?;
    Ok(match applied.outcome {
        Outcome::Invalid => exit::FAILED,
        Outcome::DryRun { plan, selection } => {
            let mut out = crate::output::stdout();
            out.write_all(plan.render_text().as_bytes())?;
            writeln!(out, "\n{selection}")?;
            writeln!(out, "dry run: nothing was started")?;
            exit::OK
        }
        Outcome::Ran(ran) => finish(&ran, &request.store)?,
    })
}

/// Prints a run's summary and reports; the exit code for it.
fn finish(ran: &Ran, store: &std::path::Path) -> anyhow::Result<u8> {
    let finished = &ran.finished;
    crate::output::stdout().write_all(super::summary::render(finished, store).as_bytes())?;
    for report in &ran.reports {
        match &report.written {
            Ok(path) => crate::outln!("report {}: {}", report.reporter, path.display()),
            Err(e) => crate::errln!("error: report {}: {e}", report.reporter),
        }
    }
    if ran.reports_skipped > 0 {
        crate::errln!(
            "interrupted: {} reports were not written",
            ran.reports_skipped
        );
    }
    if !finished.store_errors.is_empty() {
        crate::errln!(
            "error: {} results could not be stored in {}; the run is not complete (is the disk full?)",
            finished.store_errors.len(),
            store.display()
        );
    }
    Ok(match finished.status {
        _ if crate::process::interrupt::seen() => exit::INTERRUPTED,
        RunStatus::Interrupted => exit::INTERRUPTED,
        RunStatus::Succeeded if ran.reports_ok() => exit::OK,
        _ => exit::FAILED,
    })
}
