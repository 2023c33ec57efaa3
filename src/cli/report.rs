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
    #[arg(required_unless_present_any = ["runs", "history"])]
    run: Option<String>,
    /// A suite's metrics over its runs instead, with noise bands, regressions and the
    /// changes that explain a jump; markdown, html or json.
    #[arg(long, value_name = "SUITE", conflicts_with_all = ["run", "runs"])]
    history: Option<String>,
    #[command(flatten)]
    window: super::results::HistoryWindow,
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
    /// A report param for a reporter plugin, as a suite's `reports[].params` gives it
    /// (repeatable; values are strings).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Replace an existing file kitt did not write (never the store).
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args, globals: &super::Globals) -> anyhow::Result<u8> {
    let store_path = crate::store::default_path(args.store.as_deref());
    if let Some(suite) = args.history {
        let store = Store::open_existing(&store_path)?;
        let history = crate::compare::history::build(&store, &args.window.query(suite)?)?;
        drop(store);
        let text = render::render_history(&args.reporter, &history)
            .map_err(|e| crate::exit::usage(e.to_string()))?;
        write_out(args.output.as_ref(), &text, &store_path, args.force)?;
        return Ok(exit::OK);
    }
    if !args.runs.is_empty() {
        let store = Store::open_existing(&store_path)?;
        let comparison = crate::report::comparison::build(&store, &args.runs)?;
        let text = render::render_comparison(&args.reporter, &comparison)
            .map_err(|e| crate::exit::usage(e.to_string()))?;
        write_out(args.output.as_ref(), &text, &store_path, args.force)?;
        return Ok(exit::OK);
    }
    let run_id = args.run.clone().unwrap_or_default();
    let registry = globals.registry_for(None);
    let Some(entry) = registry.reporters.get(&args.reporter) else {
        return Err(crate::exit::usage(format!(
            "no reporter named `{}`; {}",
            args.reporter,
            registry.reporters.unknown_hint(&args.reporter)
        )));
    };
    let mut params = serde_json::Map::new();
    for p in &args.params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| crate::exit::usage(format!("--param `{p}` is not NAME=VALUE")))?;
        params.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    let store = Store::open_existing(&store_path)?;
    let report = Report::from_results(&store.run_results(&run_id)?);
    drop(store);
    let dirs = render::override_dirs(args.suite.as_deref());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::exit::internal(format!("cannot start the async runtime: {e}")))?;
    let rendered = runtime.block_on(async {
        crate::process::interrupt::install();
        crate::report::produce(
            &entry.info,
            &report,
            &dirs,
            &params,
            crate::process::interrupt::interrupted(),
        )
        .await
    });
    if crate::process::interrupt::seen() {
        return Ok(exit::INTERRUPTED);
    }
    let text = rendered?;
    write_out(args.output.as_ref(), &text, &store_path, args.force)?;
    Ok(exit::OK)
}

/// Writes to the file (under the rules every report file follows), or to stdout.
fn write_out(
    output: Option<&PathBuf>,
    text: &str,
    store_path: &std::path::Path,
    force: bool,
) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            // Recording the file needs a store kitt can write; without one only new files
            // (or --force) are written.
            let store = Store::open(store_path).ok();
            let rules = crate::report::write::Rules {
                guard: crate::paths::Guard::for_kitt().with_store(store_path),
                force,
                store: store.as_ref(),
            };
            crate::report::write::write(path, text, &rules)?;
            crate::noteln!("wrote {}", path.display());
        }
        None => crate::output::stdout().write_all(text.as_bytes())?,
    }
    Ok(())
}
