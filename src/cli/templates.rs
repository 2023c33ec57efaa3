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
        Sub::List { suite } => {
            writeln!(out, "{:<14} {:<18} SOURCE", "REPORTER", "TEMPLATE")?;
            let dirs = override_dirs(Some(
                &suite.unwrap_or_else(|| PathBuf::from("./suite.yaml")),
            ));
            for (reporter, file, _) in TEMPLATES {
                let replaced = dirs
                    .iter()
                    .rev()
                    .map(|d| d.join(file))
                    .find(|p| p.is_file());
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
            std::fs::create_dir_all(&to)?;
            std::fs::write(&path, text)?;
            writeln!(
                out,
                "wrote {}; it replaces the built-in `{file}` for suites in {} (extend `builtin/{file}` to change only some blocks)",
                path.display(),
                to.parent().map_or(".".into(), |p| p.display().to_string())
            )?;
        }
    }
    Ok(exit::OK)
}
