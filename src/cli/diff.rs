//! `kitt diff SUITE`: the legs whose resolved spec changed since the suite's last successful
//! run (exit 0 none, 1 some).

use std::io::Write;
use std::path::PathBuf;

use crate::exit;
use crate::runner::selection;
use crate::store::Store;
use crate::suite::params::Override;
use crate::suite::validate::{Unset, validate_file};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The suite file.
    suite: PathBuf,
    /// Set a suite parameter (repeatable).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<Override>,
    /// The results store.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, globals: &super::Globals) -> anyhow::Result<u8> {
    let registry = globals.registry_for(Some(&args.suite));
    let validation = validate_file(&args.suite, &registry, &args.params, Unset::Error);
    super::print_diagnostics(&validation.diagnostics, &validation.workspace.sources)?;
    let Some(checked) = &validation.suite else {
        return Ok(exit::FAILED);
    };
    let plan = crate::suite::plan::plan(checked, &registry, None)?;
    let store = Store::open(&crate::store::default_path(args.store.as_deref()))?;
    let (changes, against) = selection::changes(&plan, &store, &checked.suite.metadata.name)?;
    let mut out = crate::output::stdout();
    if args.json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({"against": against, "changes": changes}),
        )?;
        writeln!(out)?;
    } else {
        match &against {
            Some(id) => writeln!(out, "compared with the last successful run {id}")?,
            None => writeln!(out, "no successful run of this suite yet: every leg is new")?,
        }
        for c in &changes {
            writeln!(
                out,
                "  {:<8} {}  {} → {}",
                c.kind,
                c.leg,
                c.before.as_deref().unwrap_or("-"),
                c.after.as_deref().unwrap_or("-")
            )?;
        }
        if changes.is_empty() {
            writeln!(out, "  no changes")?;
        }
    }
    Ok(if changes.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}
