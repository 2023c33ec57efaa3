//! Reporters: the report context over a stored run, built-in minijinja templates, and
//! delivery (files, and the GitHub step summary for Markdown).

pub mod catalog;
pub mod comparison;
pub mod context;
pub mod render;

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use self::context::Report;

/// GitHub's limit on a step summary.
const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;

/// Renders `reporter` over `report` into `output` (a path pattern such as
/// `reports/{{ suite.name }}.md`, relative to `base`); Markdown also goes to
/// `$GITHUB_STEP_SUMMARY` when set. Returns the file written.
pub fn deliver(
    reporter: &crate::registry::ReporterInfo,
    output: &str,
    report: &Report,
    base: &Path,
    template_dirs: &[std::path::PathBuf],
) -> anyhow::Result<std::path::PathBuf> {
    let text = render::render_in(reporter, report, template_dirs)?;
    let path = base.join(render::output_path(output, report)?);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    if reporter.name == "markdown"
        && let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY")
    {
        append_step_summary(Path::new(&summary), &text)?;
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
    f.write_all(body.as_bytes())?;
    Ok(())
}
