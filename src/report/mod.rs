//! Reporters: the report context over a stored run, built-in minijinja templates, and
//! delivery (files, and the GitHub step summary for Markdown).

pub mod catalog;
pub mod comparison;
pub mod context;
pub mod plugin;
pub mod render;
pub mod sandbox;
pub mod write;

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use self::context::Report;

/// Produces `reporter`'s text over `report`: templates in the sandboxed renderer, or a
/// subprocess reporter plugin given `params` (its stderr in the run's directory).
pub async fn produce(
    reporter: &crate::registry::ReporterInfo,
    report: &Report,
    dirs: &[std::path::PathBuf],
    params: &serde_json::Map<String, serde_json::Value>,
    cancel: impl std::future::Future<Output = ()>,
) -> Result<String, render::RenderError> {
    match &reporter.templates {
        crate::registry::ReporterTemplates::Subprocess { dir } => {
            let log_dir = crate::paths::data_dir().join("runs").join(&report.run.id);
            plugin::render(&reporter.name, dir, report, params, &log_dir, cancel).await
        }
        _ => sandbox::render(reporter, report, dirs, cancel).await,
    }
}

/// GitHub's limit on a step summary.
const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;

/// Writes a rendered report `text` to `output` (a path pattern such as
/// `reports/{{ suite.name }}.md`, which must stay inside `base`) under `rules`; Markdown
/// also goes to `$GITHUB_STEP_SUMMARY` when set. Returns the file written.
pub fn deliver(
    reporter: &crate::registry::ReporterInfo,
    output: &str,
    report: &Report,
    base: &Path,
    text: &str,
    rules: &write::Rules<'_>,
) -> anyhow::Result<std::path::PathBuf> {
    let relative = render::output_path(output, report)?;
    let path = crate::paths::inside(base, &relative)
        .map_err(|e| anyhow::anyhow!("report output `{output}`: {e}"))?;
    let path = write::write(&path, text, rules)?;
    if reporter.name == "markdown"
        && let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY")
    {
        append_step_summary(Path::new(&summary), text)?;
    }
    Ok(path)
}

/// Appends to GitHub's step summary, cutting the text (with a note) before the 1 MiB limit.
pub fn append_step_summary(file: &Path, text: &str) -> anyhow::Result<()> {
    let used = std::fs::metadata(file).map_or(0, |m| m.len() as usize);
    let room = STEP_SUMMARY_LIMIT.saturating_sub(used);
    let note = "\n\n> Truncated: the rest of this report is in the Markdown file kitt wrote.\n";
    let body = if text.len() <= room {
        text.to_string()
    } else {
        let mut cut = room.saturating_sub(note.len());
        while cut > 0 && !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}{note}", &text[..cut])
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("cannot open {}", file.display()))?;
    f.write_all(crate::redact::text(&body).as_bytes())?;
    Ok(())
}
