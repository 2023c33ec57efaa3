//! `kitt plan SUITE`: the expanded, ordered DAG, as text, JSON or Graphviz dot.

use std::io::Write;
use std::path::PathBuf;

use crate::exit;
use crate::suite::params::Override;
use crate::suite::plan::plan;
use crate::suite::validate::{Unset, validate_file};

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
    let plan = plan(checked, &registry, Some(gpus))?;
    let mut stdout = crate::output::stdout();
    match args.format {
        PlanFormat::Text => stdout.write_all(plan.render_text().as_bytes())?,
        PlanFormat::Dot => stdout.write_all(plan.render_dot().as_bytes())?,
        PlanFormat::Json => {
            serde_json::to_writer_pretty(&mut stdout, &plan)?;
            writeln!(stdout)?;
        }
    }
    Ok(if args.detailed_exitcode && plan.leg_count() > 0 {
        exit::CHANGES
    } else {
        exit::OK
    })
}
