//! Command-line interface: one file per command group; this file parses and dispatches.

mod apply;
mod diff;
mod engine_flags;
mod engines;
mod fingerprint;
mod init;
mod plan;
mod plugin;
mod report;
mod results;
mod run;
mod schema;
mod shell;
mod summary;
mod templates;
mod test;
mod validate;

use clap::{Parser, Subcommand};

use crate::exit;

/// kitt: benchmark LLM inference engines from declarative, versioned YAML suites.
#[derive(Debug, Parser)]
#[command(name = "kitt", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Look for plugins in this directory too (repeatable; also `KITT_PLUGIN_DIR`).
    #[arg(long, global = true, value_name = "DIR")]
    plugin_dir: Vec<std::path::PathBuf>,
    /// Let the plugin named NAME replace the built-in (or other plugin) of that name.
    #[arg(long, global = true, value_name = "NAME")]
    override_plugin: Vec<String>,
    /// Errors and warnings only on stderr: no progress, no notes (stdout is unchanged).
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Also the commands kitt launches and progress every 5 s in plain mode.
    #[arg(long, short = 'v', global = true)]
    verbose: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check suite files without running anything (schema, references, DAG, params).
    Validate(validate::Args),
    /// Show the expanded, ordered DAG a suite would run.
    Plan(plan::Args),
    /// Run a suite: every node, engines up and down, results stored, exit 0 when it held.
    Apply(apply::Args),
    /// Run benchmarks or a suite's nodes on one engine from flags (a one-engine suite,
    /// applied like `kitt apply`).
    Run(run::Args),
    /// Render a stored run with a reporter (markdown, html, json, junit, csv).
    Report(report::Args),
    /// List, show and eject the report templates.
    Templates(templates::Args),
    /// Read stored runs: list, show, compare, export.
    Results(results::Args),
    /// The nodes whose resolved spec changed since the suite's last successful run.
    Diff(diff::Args),
    /// This machine's hardware fingerprint, as stored with every run.
    Fingerprint(fingerprint::Args),
    /// List, check, install, remove and scaffold plugins.
    Plugin(plugin::Args),
    /// Print a JSON Schema.
    Schema(schema::Args),
    /// Write a starter suite.
    Init(init::Args),
    /// List, check, try and clean up inference engines.
    Engines(engines::Args),
    /// List and show benchmarks, or run one against one engine.
    Test(test::Args),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(shell::CompletionArgs),
    /// Print the man page, or write a page per command with --dir.
    Man(shell::ManArgs),
}

/// What the global flags give every command.
pub(crate) struct Globals {
    /// Where plugins are looked for, and which may replace a taken name.
    pub plugins: crate::plugin::discovery::Search,
}

impl Globals {
    /// The registry for a suite: the built-ins and the plugins found for it. Plugins that
    /// cannot be registered are reported on stderr and left out.
    pub fn registry_for(&self, suite: Option<&std::path::Path>) -> crate::registry::Registry {
        let (registry, problems) = crate::assemble::registry(&self.plugins, suite);
        for p in problems {
            crate::errln!("warning: {p}");
        }
        registry
    }
}

/// Prints a suite's diagnostics on stderr, with the lines they point at.
pub(crate) fn print_diagnostics(
    diagnostics: &[crate::suite::diagnostics::Diagnostic],
    sources: &crate::suite::source::Sources,
) -> anyhow::Result<()> {
    use std::io::Write;
    let text = crate::suite::diagnostics::render_human(diagnostics, sources);
    crate::output::stderr().write_all(text.as_bytes())?;
    Ok(())
}

/// Runs kitt with the process arguments and returns the exit code.
pub fn main() -> u8 {
    if let Some(code) = helper_process() {
        return code;
    }
    if let Ok(exe) = std::env::current_exe() {
        crate::process::set_executable(exe);
    }
    std::panic::set_hook(Box::new(|info| {
        crate::errln!("internal error (a bug in kitt, please report it): {info}");
    }));
    match std::panic::catch_unwind(run_cli) {
        Ok(code) => code,
        Err(_) => exit::INTERNAL,
    }
}

/// The kitt binary also serves as its own helper processes, selected by a hidden first
/// argument: the process supervisor, the report renderer and a container's guard.
fn helper_process() -> Option<u8> {
    let first = std::env::args_os().nth(1)?;
    let rest = || -> Vec<String> {
        std::env::args_os()
            .skip(2)
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    };
    if first == crate::process::supervisor::ARG {
        crate::process::supervisor::main_if_asked()
    } else if first == crate::report::sandbox::ARG {
        Some(crate::report::sandbox::child_main())
    } else if first == crate::engine::runtime::docker::GUARD_ARG {
        Some(crate::engine::runtime::docker::guard_main(&rest()))
    } else {
        None
    }
}

fn run_cli() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            // clap's own printing; a closed pipe is an error it returns, not a panic.
            let _ = e.print();
            return code;
        }
    };
    crate::output::set_verbosity(if cli.quiet {
        crate::output::Verbosity::Quiet
    } else if cli.verbose {
        crate::output::Verbosity::Verbose
    } else {
        crate::output::Verbosity::Normal
    });
    let globals = Globals {
        plugins: crate::plugin::discovery::Search {
            extra_dirs: cli.plugin_dir,
            overrides: cli.override_plugin,
        },
    };
    let outcome = match cli.command {
        Command::Validate(args) => validate::run(args, &globals),
        Command::Plan(args) => plan::run(args, &globals),
        Command::Apply(args) => apply::run(args, &globals),
        Command::Results(args) => results::run(args),
        Command::Templates(args) => templates::run(args),
        Command::Report(args) => report::run(args, &globals),
        Command::Run(args) => run::run(args, &globals),
        Command::Diff(args) => diff::run(args, &globals),
        Command::Fingerprint(args) => fingerprint::run(args),
        Command::Plugin(args) => plugin::run(args, &globals),
        Command::Schema(args) => schema::run(args),
        Command::Init(args) => init::run(args),
        Command::Engines(args) => engines::run(args, &globals),
        Command::Test(args) => test::run(args, &globals),
        Command::Completions(args) => shell::completions(args),
        Command::Man(args) => shell::man(args),
    };
    let code = match outcome {
        Ok(code) => code,
        Err(e) => {
            crate::errln!("error: {e:#}");
            exit::code_for(&e)
        }
    };
    match crate::output::stdout_failure() {
        Some(why) if code == exit::OK => {
            crate::errln!("error: {why}");
            exit::FAILED
        }
        _ => code,
    }
}
