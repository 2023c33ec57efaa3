//! `kitt plan SUITE`: the expanded, ordered DAG, as text, JSON or Graphviz dot.

use std::io::Write;
use std::path::PathBuf;

use crate::exit;
use crate::runner::slurm::{self, JobInputs, SlurmJob};
use crate::suite::model::ExecutorKind;
use crate::suite::params::Override;
use crate::suite::plan::plan;
use crate::suite::validate::{CheckedSuite, Unset, validate_file};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PlanFormat {
    Text,
    Json,
    Dot,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The suite file.
    suite: PathBuf,
    /// Set a suite parameter (repeatable).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<Override>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    format: PlanFormat,
    /// Exit 2 when the plan has work to do, 0 when it has none.
    #[arg(long)]
    detailed_exitcode: bool,
    /// Where the engine groups run (default: the suite's `executor`, else local); with
    /// `slurm` the plan lists the jobs that would be submitted.
    #[arg(long, value_enum)]
    executor: Option<ExecutorArg>,
}

/// `--executor`: where a suite's engine groups run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorArg {
    Local,
    Slurm,
}

/// The executor a run uses: the flag, else the suite's `executor.kind`.
pub fn executor_of(flag: Option<ExecutorArg>, checked: &CheckedSuite) -> ExecutorKind {
    match flag {
        Some(ExecutorArg::Local) => ExecutorKind::Local,
        Some(ExecutorArg::Slurm) => ExecutorKind::Slurm,
        None => checked
            .suite
            .executor
            .as_ref()
            .map_or(ExecutorKind::Local, |e| e.kind),
    }
}

/// The Slurm jobs of a checked suite's plan, its scripts running this kitt (or the one
/// `executor.slurm.kitt` names) on the suite file at its absolute path.
pub fn slurm_jobs(
    checked: &CheckedSuite,
    plan: &crate::suite::plan::Plan,
    suite_path: &std::path::Path,
    only: Option<&[String]>,
) -> anyhow::Result<Vec<SlurmJob>> {
    let settings = checked
        .suite
        .executor
        .as_ref()
        .and_then(|e| e.slurm.clone())
        .unwrap_or_default();
    let suite_path = std::path::absolute(suite_path)?;
    let kitt = match &settings.kitt {
        Some(k) => k.clone(),
        None => std::env::current_exe()?.display().to_string(),
    };
    let inputs = JobInputs {
        suite_path: &suite_path,
        params: &checked.params,
        kitt,
        only,
    };
    Ok(slurm::jobs(plan, &settings, &inputs)?)
}

pub fn run(args: Args, globals: &super::Globals) -> anyhow::Result<u8> {
    let registry = globals.registry_for(Some(&args.suite));
    let validation = validate_file(&args.suite, &registry, &args.params, Unset::Error);
    super::print_diagnostics(&validation.diagnostics, &validation.workspace.sources)?;
    let Some(checked) = &validation.suite else {
        return Ok(exit::FAILED);
    };
    // The plan `kitt apply` executes on this machine (its GPUs decide what engines take).
    let gpus = crate::fingerprint::Fingerprint::detect().gpus.len();
    let slurm = executor_of(args.executor, checked) == ExecutorKind::Slurm;
    // Under Slurm the compute nodes' GPUs are not this machine's: engines ask for counts.
    let plan = plan(checked, &registry, (!slurm).then_some(gpus))?;
    let jobs = if slurm {
        Some(slurm_jobs(checked, &plan, &args.suite, None)?)
    } else {
        None
    };
    let mut stdout = crate::output::stdout();
    match args.format {
        PlanFormat::Text => {
            stdout.write_all(plan.render_text().as_bytes())?;
            if let Some(jobs) = &jobs {
                stdout.write_all(slurm::render_text(jobs).as_bytes())?;
            }
        }
        PlanFormat::Dot => stdout.write_all(plan.render_dot().as_bytes())?,
        PlanFormat::Json => {
            let mut value = serde_json::to_value(&plan)?;
            if let (Some(jobs), Some(map)) = (&jobs, value.as_object_mut()) {
                map.insert("slurm_jobs".into(), serde_json::to_value(jobs)?);
            }
            serde_json::to_writer_pretty(&mut stdout, &value)?;
            writeln!(stdout)?;
        }
    }
    Ok(if args.detailed_exitcode && plan.leg_count() > 0 {
        exit::CHANGES
    } else {
        exit::OK
    })
}
