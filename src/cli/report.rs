//! `kitt report RUN --reporter NAME [-o FILE]`: render a stored run at any time.

use std::io::Write;
use std::path::PathBuf;

use crate::exit;
use crate::report::context::Report;
use crate::report::render;
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run id, a unique prefix of one, or `last`.
    #[arg(required_unless_present = "runs")]
    run: Option<String>,
    /// Compare these runs side by side instead (comma separated; the first is the
    /// reference); markdown or json.
    #[arg(long, value_delimiter = ',', conflicts_with = "run")]
    runs: Vec<String>,
    /// markdown, html, json, junit or csv.
    #[arg(long, short = 'r', default_value = "markdown")]
    reporter: String,
    /// Write here instead of stdout.
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// The results store.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Templates that replace built-ins, as beside this suite (`.kitt/templates/`).
    #[arg(long)]
    suite: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    if !args.runs.is_empty() {
        let store = Store::open_existing(&crate::store::default_path(args.store.as_deref()))?;
        let comparison = crate::report::comparison::build(&store, &args.runs)?;
        return match render::render_comparison(&args.reporter, &comparison) {
            Ok(text) => {
                write_out(args.output.as_ref(), &text)?;
                Ok(exit::OK)
            }
            Err(e) => {
                crate::errln!("error: {e}");
                Ok(exit::USAGE)
            }
        };
    }
    let run_id = args.run.clone().unwrap_or_default();
    let registry = super::registry_for(None);
    let Some(entry) = registry.reporters.get(&args.reporter) else {
        crate::errln!(
            "error: no reporter named `{}`; {}",
            args.reporter,
            registry.reporters.unknown_hint(&args.reporter)
        );
        return Ok(exit::USAGE);
    };
    let store = Store::open_existing(&crate::store::default_path(args.store.as_deref()))?;
    let report = Report::from_results(&store.run_results(&run_id)?);
    let dirs = render::override_dirs(args.suite.as_deref());
    let text = match render::render_in(&entry.info, &report, &dirs) {
        Ok(t) => t,
        Err(e) => {
            crate::errln!("error: {e}");
            return Ok(exit::FAILED);
        }
    };
    write_out(args.output.as_ref(), &text)?;
    Ok(exit::OK)
}

/// Writes to the file, or to stdout without one.
fn write_out(output: Option<&PathBuf>, text: &str) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, text)?;
            crate::errln!("wrote {}", path.display());
        }
        None => crate::output::stdout().write_all(text.as_bytes())?,
    }
    Ok(())
}
