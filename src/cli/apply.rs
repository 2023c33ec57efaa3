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
    /// Where the engine groups run (default: the suite's `executor`, else local).
    #[arg(long, value_enum)]
    executor: Option<super::plan::ExecutorArg>,
    /// With `--executor slurm --dry-run`: the directory the job scripts are written to.
    #[arg(long, value_name = "DIR", default_value = "kitt-slurm-jobs")]
    job_dir: PathBuf,
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
    if let Some(code) = slurm(&args, globals)? {
        return Ok(code);
    }
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

/// Under the Slurm executor (the flag, else the suite's): with `--dry-run` writes the job
/// scripts and prints the jobs; without, submits them and merges what they measured. `None`
/// for the local executor.
fn slurm(args: &Args, globals: &super::Globals) -> anyhow::Result<Option<u8>> {
    use crate::suite::validate::{Unset, validate_file};
    if args.executor == Some(super::plan::ExecutorArg::Local) {
        return Ok(None);
    }
    let registry = globals.registry_for(Some(&args.suite));
    let validation = validate_file(&args.suite, &registry, &args.params, Unset::Error);
    let Some(checked) = &validation.suite else {
        // The local path reports the suite's problems.
        return Ok(None);
    };
    if super::plan::executor_of(args.executor, checked) != crate::suite::model::ExecutorKind::Slurm
    {
        return Ok(None);
    }
    super::print_diagnostics(&validation.diagnostics, &validation.workspace.sources)?;
    let plan = crate::suite::plan::plan(checked, &registry, None)?;
    // Resuming: only the legs the run did not finish with the same spec.
    let resumed = match &args.resume {
        Some(id) => Some(unfinished(args, checked, &plan, id)?),
        None => None,
    };
    let only = resumed.as_ref().map(|(_, legs)| legs.as_slice());
    let jobs = super::plan::slurm_jobs(checked, &plan, &args.suite, only)?;
    if !args.run.dry_run {
        if jobs.is_empty() {
            crate::outln!("nothing to resume: every leg of the run finished");
            return Ok(Some(exit::OK));
        }
        let run = resumed.map(|(run, _)| run);
        return submit(args, &registry, checked, &plan, &jobs, run).map(Some);
    }
    let written = crate::runner::slurm::write_scripts(&jobs, &args.job_dir).with_context(|| {
        format!(
            "cannot write the job scripts into {}",
            args.job_dir.display()
        )
    })?;
    let mut out = crate::output::stdout();
    out.write_all(crate::runner::slurm::render_text(&jobs).as_bytes())?;
    for path in &written {
        writeln!(out, "wrote {}", path.display())?;
    }
    writeln!(out, "dry run: nothing was submitted")?;
    Ok(Some(exit::OK))
}

/// The run `id` to resume and its legs still to run: those it did not finish with the
/// spec the suite has now.
fn unfinished(
    args: &Args,
    checked: &crate::suite::validate::CheckedSuite,
    plan: &crate::suite::plan::Plan,
    id: &str,
) -> anyhow::Result<(crate::store::RunRecord, Vec<String>)> {
    let store =
        crate::store::Store::open_existing(&crate::store::default_path(args.run.store.as_deref()))?;
    let run = store
        .find_run(id)
        .map_err(|e| crate::exit::usage(format!("--resume {id}: {e:#}")))?;
    if run.suite != checked.suite.metadata.name {
        return Err(crate::exit::usage(format!(
            "--resume {id}: that run is of suite `{}`, not `{}`",
            run.suite, checked.suite.metadata.name
        )));
    }
    let done: Vec<(String, String)> = store
        .nodes(&run.id)?
        .into_iter()
        .filter(|n| n.status.ok())
        .map(|n| (n.leg, n.spec_hash))
        .collect();
    let legs = plan
        .legs
        .iter()
        .filter(|l| {
            !done
                .iter()
                .any(|(leg, hash)| *leg == l.id && *hash == l.spec_hash)
        })
        .map(|l| l.id.clone())
        .collect();
    Ok((run, legs))
}

/// Submits the jobs, watches them and merges their results into a new run of the store;
/// prints each leg's end and picks the exit code (0 held, 1 failed, 130 interrupted).
fn submit(
    args: &Args,
    registry: &crate::registry::Registry,
    checked: &crate::suite::validate::CheckedSuite,
    plan: &crate::suite::plan::Plan,
    jobs: &[crate::runner::slurm::SlurmJob],
    resumed: Option<crate::store::RunRecord>,
) -> anyhow::Result<u8> {
    use crate::store::{RunStatus, Store};
    let resuming = resumed.is_some();
    let run = match resumed {
        Some(run) => run,
        None => {
            let text = std::fs::read_to_string(&args.suite)
                .with_context(|| format!("cannot read {}", args.suite.display()))?;
            let fingerprint = crate::fingerprint::Fingerprint::detect();
            crate::runner::new_run(checked, &args.suite, &text, &fingerprint)?
        }
    };
    let store_path = crate::store::default_path(args.run.store.as_deref());
    let mut store = Store::open(&store_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let say = |line: &str| crate::outln!("[slurm] {line}");
    let (done, reports) = runtime.block_on(async {
        crate::process::interrupt::install();
        let done =
            crate::runner::slurm_run::coordinate(plan, jobs, &mut store, run, resuming, &say)
                .await?;
        // The suite's reports, as a local run renders them (not when interrupted).
        let reports = if done.interrupted {
            Vec::new()
        } else {
            let guard = crate::paths::Guard::for_kitt()
                .with_store(&store_path)
                .protect(&args.suite, "a file of the suite");
            crate::runner::render_reports(
                &args.suite,
                args.run.force,
                registry,
                &checked.suite.reports,
                &mut store,
                &done.run_id,
                &guard,
            )
            .await?
            .0
        };
        anyhow::Ok((done, reports))
    })?;
    let mut out = crate::output::stdout();
    writeln!(
        out,
        "\n{:<24} {:<10} {:<8} {:<10} RESULT",
        "LEG", "STATUS", "JOB", "NODE"
    )?;
    let mut nodes = store.nodes(&done.run_id)?;
    nodes.sort_by_key(|n| plan.legs.iter().position(|l| l.id == n.leg));
    for node in nodes {
        let (job, host) = node
            .details
            .get("slurm")
            .map(|s| {
                (
                    s["job_id"].as_str().unwrap_or("-").to_string(),
                    s["node"].as_str().unwrap_or("-").to_string(),
                )
            })
            .unwrap_or_else(|| ("-".into(), "-".into()));
        let result = node.errors.first().cloned().unwrap_or_default();
        writeln!(
            out,
            "{:<24} {:<10} {:<8} {:<10} {result}",
            node.leg,
            node.status.as_str(),
            job,
            host
        )?;
    }
    writeln!(
        out,
        "\nrun {} {}; stored in {} (`kitt results show {}`)",
        done.run_id,
        done.status.as_str(),
        store_path.display(),
        done.run_id
    )?;
    let mut reports_ok = true;
    for report in &reports {
        match &report.written {
            Ok(path) => crate::outln!("report {}: {}", report.reporter, path.display()),
            Err(e) => {
                reports_ok = false;
                crate::errln!("error: report {}: {e}", report.reporter);
            }
        }
    }
    Ok(match done.status {
        _ if done.interrupted => exit::INTERRUPTED,
        RunStatus::Succeeded if reports_ok => exit::OK,
        _ => exit::FAILED,
    })
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
