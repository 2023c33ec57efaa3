//! `kitt templates list | show NAME | eject NAME`: the report templates, and copies to edit.

use std::io::Write;
use std::path::PathBuf;

use crate::exit;
use crate::report::render::{TEMPLATES, override_dirs};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// The built-in templates and the overrides found (config directory, `.kitt/templates/`
    /// beside `--suite` or here).
    List {
        #[arg(long)]
        suite: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Print a built-in template (by reporter or file name).
    Show { name: String },
    /// Copy a built-in template into `.kitt/templates/` (or `--to DIR`) to edit; the copy
    /// then replaces the built-in for suites there.
    Eject {
        name: String,
        #[arg(long, default_value = ".kitt/templates")]
        to: PathBuf,
        #[arg(long)]
        force: bool,
    },
}

/// Where an ejected copy in `dir` replaces the built-in, in words.
fn where_it_applies(dir: &std::path::Path, file: &str) -> String {
    let config = dirs::config_dir().map(|c| c.join("kitt").join("templates"));
    let in_suite_dir = dir.ends_with(".kitt/templates");
    if in_suite_dir {
        let suites = dir
            .parent()
            .and_then(std::path::Path::parent)
            .filter(|p| !p.as_os_str().is_empty())
            .map_or(".".to_string(), |p| p.display().to_string());
        format!(
            "it replaces the built-in `{file}` for suites in {suites} (extend `builtin/{file}` to change only some blocks)"
        )
    } else if config
        .as_ref()
        .is_some_and(|c| crate::paths::resolve(dir) == crate::paths::resolve(c))
    {
        format!("it replaces the built-in `{file}` for every suite of this user")
    } else {
        format!(
            "kitt does not read templates from {}: it reads `.kitt/templates/` beside a suite and {}; move the copy there",
            dir.display(),
            config.map_or("the user's config directory".into(), |c| c
                .display()
                .to_string())
        )
    }
}

fn find(name: &str) -> Option<(&'static str, &'static str)> {
    TEMPLATES
        .iter()
        .find(|(reporter, file, _)| *reporter == name || *file == name)
        .map(|(_, file, text)| (*file, *text))
}

fn unknown(name: &str) -> u8 {
    let names: Vec<&str> = TEMPLATES.iter().map(|(r, _, _)| *r).collect();
    crate::errln!(
        "error: no built-in template `{name}`; templates: {}",
        names.join(", ")
    );
    exit::USAGE
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let mut out = crate::output::stdout();
    match args.command {
        Sub::List { suite, json } => {
            let dirs = override_dirs(Some(
                &suite.unwrap_or_else(|| PathBuf::from("./suite.yaml")),
            ));
            let rows: Vec<(&str, &str, Option<PathBuf>)> = TEMPLATES
                .iter()
                .map(|(reporter, file, _)| {
                    let replaced = dirs
                        .iter()
                        .rev()
                        .map(|d| d.join(file))
                        .find(|p| p.is_file());
                    (*reporter, *file, replaced)
                })
                .collect();
            if json {
                let rows: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(reporter, file, replaced)| {
                        serde_json::json!({"reporter": reporter, "template": file,
                                           "replaced_by": replaced})
                    })
                    .collect();
                serde_json::to_writer_pretty(&mut out, &rows)?;
                writeln!(out)?;
                return Ok(exit::OK);
            }
            writeln!(out, "{:<14} {:<18} SOURCE", "REPORTER", "TEMPLATE")?;
            for (reporter, file, replaced) in rows {
                let source = replaced.map_or("built-in".to_string(), |p| {
                    format!("replaced by {}", p.display())
                });
                writeln!(out, "{reporter:<14} {file:<18} {source}")?;
            }
            writeln!(
                out,
                "{:<14} {:<18} built-in (written directly, no template)",
                "json", "-"
            )?;
        }
        Sub::Show { name } => match find(&name) {
            Some((_, text)) => out.write_all(text.as_bytes())?,
            None => return Ok(unknown(&name)),
        },
        Sub::Eject { name, to, force } => {
            let Some((file, text)) = find(&name) else {
                return Ok(unknown(&name));
            };
            let path = to.join(file);
            if path.exists() && !force {
                crate::errln!(
                    "error: {} exists; pass --force to overwrite it",
                    path.display()
                );
                return Ok(exit::FAILED);
            }
            crate::paths::Guard::for_kitt().check_write(&path)?;
            std::fs::create_dir_all(&to)?;
            std::fs::write(&path, text)?;
            writeln!(
                out,
                "wrote {}; {}",
                path.display(),
                where_it_applies(&to, file)
            )?;
        }
    }
    Ok(exit::OK)
}
