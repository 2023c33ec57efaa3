//! `kitt validate FILE...`: every check, no network, no Docker, no plugin processes.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::exit;
use crate::suite::diagnostics::{self, Format, JsonDiagnostic};
use crate::suite::params::Override;
use crate::suite::validate::{Unset, Validation, validate_file};

/// The documented version of the diagnostics JSON shape.
pub const DIAGNOSTICS_FORMAT_VERSION: u32 = 1;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Suite files to check.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Set a suite parameter (repeatable).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    params: Vec<Override>,
    /// Output format of the diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    valid: bool,
    files: Vec<JsonFile<'a>>,
}

#[derive(Serialize)]
struct JsonFile<'a> {
    file: String,
    valid: bool,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

pub fn run(args: Args, globals: &super::Globals) -> anyhow::Result<u8> {
    let results: Vec<(PathBuf, Validation)> = args
        .files
        .iter()
        .map(|f| {
            let registry = globals.registry_for(Some(f));
            (
                f.clone(),
                validate_file(f, &registry, &args.params, Unset::Allowed),
            )
        })
        .collect();
    let all_valid = results.iter().all(|(_, v)| !v.has_errors());
    let mut stdout = crate::output::stdout();
    match args.format {
        Format::Human => {
            let mut stderr = crate::output::stderr();
            for (path, v) in &results {
                let text = diagnostics::render_human(&v.diagnostics, &v.workspace.sources);
                stderr.write_all(text.as_bytes())?;
                if let Some(checked) = &v.suite {
                    writeln!(
                        stdout,
                        "ok: {} ({} node{}, {} run{})",
                        path.display(),
                        checked.suite.nodes.len(),
                        if checked.suite.nodes.len() == 1 {
                            ""
                        } else {
                            "s"
                        },
                        checked.legs.len(),
                        if checked.legs.len() == 1 { "" } else { "s" }
                    )?;
                } else {
                    let errors = v.diagnostics.iter().filter(|d| d.is_error()).count();
                    writeln!(
                        stderr,
                        "invalid: {} ({errors} error{})",
                        path.display(),
                        if errors == 1 { "" } else { "s" }
                    )?;
                }
            }
        }
        Format::Github => {
            for (_, v) in &results {
                stdout.write_all(
                    diagnostics::render_github(&v.diagnostics, &v.workspace.sources).as_bytes(),
                )?;
            }
        }
        Format::Json => {
            let report = JsonReport {
                version: DIAGNOSTICS_FORMAT_VERSION,
                valid: all_valid,
                files: results
                    .iter()
                    .map(|(path, v)| JsonFile {
                        file: path.display().to_string(),
                        valid: !v.has_errors(),
                        diagnostics: v
                            .diagnostics
                            .iter()
                            .map(|d| diagnostics::to_json(d, &v.workspace.sources))
                            .collect(),
                    })
                    .collect(),
            };
            serde_json::to_writer_pretty(&mut stdout, &report)?;
            writeln!(stdout)?;
        }
    }
    // The process ends next; freeing a large suite's values one by one would only cost time.
    std::mem::forget(results);
    Ok(if all_valid { exit::OK } else { exit::FAILED })
}
