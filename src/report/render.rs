//! Rendering reports: a minijinja environment with strict undefined, auto-escaping by output
//! type, a fuel limit and no loader beyond the templates kitt ships (no filesystem, no
//! environment), and a few filters (`fmt`, `csv`).

use minijinja::value::{Value as JValue, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};

use super::context::Report;
use crate::registry::{ReporterInfo, ReporterTemplates};

/// Template instructions a report may take before it is stopped.
const FUEL: u64 = 50_000_000;
/// Largest template file read (overrides and plugin templates), in bytes.
pub const MAX_TEMPLATE: u64 = 1024 * 1024;

/// The built-in templates, by reporter name.
pub const TEMPLATES: &[(&str, &str, &str)] = &[
    (
        "markdown",
        "markdown.md.j2",
        include_str!("templates/markdown.md.j2"),
    ),
    (
        "html",
        "html.html.j2",
        include_str!("templates/html.html.j2"),
    ),
    (
        "junit",
        "junit.xml.j2",
        include_str!("templates/junit.xml.j2"),
    ),
    ("csv", "csv.csv.j2", include_str!("templates/csv.csv.j2")),
    (
        "compare",
        "compare.md.j2",
        include_str!("templates/compare.md.j2"),
    ),
    (
        "compare-html",
        "compare.html.j2",
        include_str!("templates/compare.html.j2"),
    ),
    (
        "history",
        "history.md.j2",
        include_str!("templates/history.md.j2"),
    ),
    (
        "history-html",
        "history.html.j2",
        include_str!("templates/history.html.j2"),
    ),
];

/// Why a report could not be rendered: the template's name, line and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("report `{reporter}`: {detail}")]
pub struct RenderError {
    pub reporter: String,
    pub detail: String,
}

/// A number with `digits` decimals; `-` (or `absent`) when there is none.
fn fmt(value: JValue, digits: Option<u32>, absent: Option<String>) -> String {
    let absent = absent.unwrap_or_else(|| "-".into());
    match value.kind() {
        ValueKind::Number => match f64::try_from(value.clone()) {
            Ok(v) => format!("{v:.*}", digits.unwrap_or(2) as usize),
            Err(_) => value.to_string(),
        },
        ValueKind::Undefined | ValueKind::None => absent,
        _ => value.to_string(),
    }
}

/// A CSV line from a list of fields (quoted where needed).
fn csv(fields: Vec<JValue>) -> String {
    fields
        .iter()
        .map(|f| {
            let s = if f.is_none() || f.is_undefined() {
                String::new()
            } else if let Some(s) = f.as_str() {
                s.to_string()
            } else {
                f.to_string()
            };
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Where templates that replace the built-ins are looked for, lowest priority first: the
/// user's config directory (`~/.config/kitt/templates`), then `.kitt/templates/` beside the
/// suite.
pub fn override_dirs(suite: Option<&std::path::Path>) -> Vec<std::path::PathBuf> {
    let mut dirs = Vec::new();
    if let Some(config) = dirs::config_dir() {
        dirs.push(config.join("kitt").join("templates"));
    }
    if let Some(dir) = suite.and_then(std::path::Path::parent) {
        let base = if dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            dir
        };
        dirs.push(base.join(".kitt").join("templates"));
    }
    dirs
}

/// The built-in environment with the `*.j2` files of `dirs` added on top, later directories
/// winning; a file named like a built-in replaces it, and the built-ins stay reachable as
/// `builtin/NAME` so a replacement can extend them block by block.
pub fn environment_with(dirs: &[std::path::PathBuf]) -> Result<Environment<'static>, RenderError> {
    let mut env = environment();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<std::path::PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "j2") && p.is_file())
            .collect();
        files.sort();
        for path in files {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            // A link may point only inside the repository (or directory) the override is in:
            // a suite's repository cannot make kitt render a file from elsewhere.
            let root = crate::paths::suite_root(&path);
            if path
                .canonicalize()
                .is_ok_and(|real| !real.starts_with(&root))
            {
                return Err(RenderError {
                    reporter: name,
                    detail: format!(
                        "{} is a link to a file outside {}; template overrides must be files inside it",
                        path.display(),
                        root.display()
                    ),
                });
            }
            let text = crate::fsio::read_text(&path, MAX_TEMPLATE).map_err(|e| RenderError {
                reporter: name.clone(),
                detail: format!("cannot read {}: {e}", path.display()),
            })?;
            env.add_template_owned(name.clone(), text)
                .map_err(|e| RenderError {
                    reporter: name,
                    detail: format!("{} ({})", describe(&e), path.display()),
                })?;
        }
    }
    Ok(env)
}

/// An environment holding the built-in templates.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|name| {
        if name.contains(".html") || name.contains(".xml") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.add_filter("fmt", fmt);
    env.add_filter("csv", csv);
    for (_, file, text) in TEMPLATES {
        env.add_template(file, text)
            .expect("built-in templates parse (checked by a test)");
        env.add_template_owned(format!("builtin/{file}"), text.to_string())
            .expect("built-in templates parse (checked by a test)");
    }
    env
}

/// Describes a minijinja error with the template, the line and the cause.
fn describe(e: &Error) -> String {
    let what = match e.kind() {
        ErrorKind::SyntaxError => "syntax error: ".to_string(),
        ErrorKind::OutOfFuel => format!(
            "the template took more than {FUEL} steps (or the memory they stand for) and was stopped"
        ),
        _ => String::new(),
    };
    let mut s = match (e.name(), e.line()) {
        (Some(name), Some(line)) => {
            format!("{name}:{line}: {what}{}", e.detail().unwrap_or_default())
        }
        _ => e.to_string(),
    };
    if let (Some(source), Some(line)) = (e.template_source(), e.line())
        && let Some(text) = source.lines().nth(line.saturating_sub(1))
    {
        let text = text.trim();
        let quoted: String = text.chars().take(200).collect();
        let more = if quoted.len() < text.len() {
            " …"
        } else {
            ""
        };
        s.push_str(&format!(" in `{quoted}{more}`"));
    }
    if e.kind() == ErrorKind::UndefinedError {
        s.push_str(" (an undefined value: see the report context in `kitt schema results`)");
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(&format!("; {inner}"));
        source = inner.source();
    }
    s
}

/// Renders a registered reporter over `report`: a built-in, or a template-only plugin's
/// templates (which may extend the built-ins block by block).
pub fn render(info: &ReporterInfo, report: &Report) -> Result<String, RenderError> {
    render_in(info, report, &[])
}

/// Like `render`, with template override directories (see `environment_with`).
pub fn render_in(
    info: &ReporterInfo,
    report: &impl serde::Serialize,
    dirs: &[std::path::PathBuf],
) -> Result<String, RenderError> {
    match &info.templates {
        ReporterTemplates::BuiltIn => render_builtin_in(&info.name, report, dirs),
        ReporterTemplates::Subprocess { .. } => Err(RenderError {
            reporter: info.name.clone(),
            detail: "a subprocess reporter has no templates (see report::produce)".into(),
        }),
        ReporterTemplates::Plugin { dir, files } => {
            let env = plugin_environment(&info.name, dir, files)?;
            let entry = files.first().ok_or_else(|| RenderError {
                reporter: info.name.clone(),
                detail: "the plugin lists no templates".into(),
            })?;
            let template = env.get_template(entry).map_err(|e| RenderError {
                reporter: info.name.clone(),
                detail: describe(&e),
            })?;
            template
                .render(minijinja::value::Serde(report))
                .map_err(|e| RenderError {
                    reporter: info.name.clone(),
                    detail: describe(&e),
                })
        }
    }
}

/// The built-in environment plus a plugin's declared template files (and nothing else).
pub fn plugin_environment(
    reporter: &str,
    dir: &std::path::Path,
    files: &[String],
) -> Result<Environment<'static>, RenderError> {
    let mut env = environment();
    for file in files {
        let path = crate::paths::inside(dir, file).map_err(|e| RenderError {
            reporter: reporter.into(),
            detail: e.to_string(),
        })?;
        let text = crate::fsio::read_text(&path, MAX_TEMPLATE).map_err(|e| RenderError {
            reporter: reporter.into(),
            detail: format!("cannot read {}: {e}", path.display()),
        })?;
        env.add_template_owned(file.clone(), text)
            .map_err(|e| RenderError {
                reporter: reporter.into(),
                detail: describe(&e),
            })?;
    }
    Ok(env)
}

/// Renders built-in reporter `name` over `report`.
pub fn render_builtin(name: &str, report: &Report) -> Result<String, RenderError> {
    render_builtin_in(name, report, &[])
}

/// Renders built-in reporter `name`, with template override directories.
pub fn render_builtin_in(
    name: &str,
    report: &impl serde::Serialize,
    dirs: &[std::path::PathBuf],
) -> Result<String, RenderError> {
    let err = |detail: String| RenderError {
        reporter: name.to_string(),
        detail,
    };
    if name == "json" {
        return serde_json::to_string_pretty(report)
            .map(|s| s + "\n")
            .map_err(|e| err(e.to_string()));
    }
    let (_, file, _) = TEMPLATES
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| err("no such built-in reporter".into()))?;
    let env = environment_with(dirs)?;
    let template = env.get_template(file).map_err(|e| err(describe(&e)))?;
    template
        .render(minijinja::value::Serde(report))
        .map_err(|e| err(describe(&e)))
}

/// Renders a comparison of runs: Markdown, or the JSON document.
pub fn render_comparison(
    format: &str,
    comparison: &super::comparison::Comparison,
) -> Result<String, RenderError> {
    let err = |detail: String| RenderError {
        reporter: format!("comparison ({format})"),
        detail,
    };
    match format {
        "json" => serde_json::to_string_pretty(comparison)
            .map(|s| s + "\n")
            .map_err(|e| err(e.to_string())),
        "markdown" | "html" => {
            let file = if format == "html" {
                "compare.html.j2"
            } else {
                "compare.md.j2"
            };
            let env = environment();
            let template = env.get_template(file).map_err(|e| err(describe(&e)))?;
            template
                .render(minijinja::value::Serde(comparison))
                .map_err(|e| err(describe(&e)))
        }
        other => Err(err(format!(
            "comparisons render as markdown, html or json, not {other}"
        ))),
    }
}

/// Renders a suite's history: Markdown, HTML (self-contained) or the JSON document.
pub fn render_history(
    format: &str,
    history: &crate::compare::history::History,
) -> Result<String, RenderError> {
    let err = |detail: String| RenderError {
        reporter: format!("history ({format})"),
        detail,
    };
    let file = match format {
        "json" => {
            return serde_json::to_string_pretty(history)
                .map(|s| s + "\n")
                .map_err(|e| err(e.to_string()));
        }
        "markdown" => "history.md.j2",
        "html" => "history.html.j2",
        other => {
            return Err(err(format!(
                "histories render as markdown, html or json, not {other}"
            )));
        }
    };
    let env = environment();
    let template = env.get_template(file).map_err(|e| err(describe(&e)))?;
    template
        .render(minijinja::value::Serde(history))
        .map_err(|e| err(describe(&e)))
}

/// Renders an output path such as `reports/{{ suite.name }}.md` with the report context.
pub fn output_path(pattern: &str, report: &Report) -> Result<String, RenderError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.render_str(pattern, minijinja::value::Serde(report))
        .map_err(|e| RenderError {
            reporter: "output path".into(),
            detail: format!("`{pattern}`: {}", describe(&e)),
        })
}

/// Renders an arbitrary template text (for tests and template authors).
pub fn render_text(name: &str, text: &str, report: &Report) -> Result<String, RenderError> {
    let mut env = environment();
    env.add_template_owned(name.to_string(), text.to_string())
        .map_err(|e| RenderError {
            reporter: name.into(),
            detail: describe(&e),
        })?;
    let template = env.get_template(name).map_err(|e| RenderError {
        reporter: name.into(),
        detail: describe(&e),
    })?;
    template
        .render(minijinja::value::Serde(report))
        .map_err(|e| RenderError {
            reporter: name.into(),
            detail: describe(&e),
        })
}
