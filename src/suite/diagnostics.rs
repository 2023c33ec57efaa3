//! Diagnostics: what is wrong with a suite, where, and how to fix it, rendered for people
//! (rustc style), for machines (JSON) and for GitHub Actions annotations.

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

use super::source::{FileId, Sources, Span};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A place in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub file: FileId,
    pub span: Span,
}

/// One finding about a suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable, short identifier of the check (`schema`, `unknown-engine`, `cycle`, ...).
    pub code: &'static str,
    pub message: String,
    pub location: Option<Location>,
    pub hint: Option<String>,
    /// Other places that explain this one (the first of two duplicates, a cycle's steps).
    pub related: Vec<(String, Location)>,
}

/// Longest message or hint kept (a hostile file can make a name megabytes long).
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// `text` cut to [`MAX_MESSAGE_CHARS`], marked when cut.
fn bounded(text: String) -> String {
    if text.len() <= MAX_MESSAGE_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
    if cut.len() < text.len() {
        cut.push_str(" … (cut)");
    }
    cut
}

impl Diagnostic {
    /// An error of the given check.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: bounded(message.into()),
            location: None,
            hint: None,
            related: Vec::new(),
        }
    }

    /// Places the diagnostic.
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Adds advice on what to do.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(bounded(hint.into()));
        self
    }

    /// Adds a hint only when there is one.
    pub fn maybe_hint(mut self, hint: Option<String>) -> Self {
        if let Some(hint) = hint {
            self.hint = Some(bounded(hint));
        }
        self
    }

    /// Adds a related place.
    pub fn related(mut self, label: impl Into<String>, location: Location) -> Self {
        self.related.push((label.into(), location));
        self
    }

    /// Whether this diagnostic fails validation.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Output formats of diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// rustc-style text with the source line and a caret.
    Human,
    /// A JSON document (see README, "Diagnostics JSON").
    Json,
    /// GitHub Actions workflow commands (`::error file=…,line=…,col=…::…`).
    Github,
}

/// Renders diagnostics in the rustc style, without colour.
pub fn render_human(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let renderer = Renderer::plain();
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let title = level.primary_title(d.message.as_str()).id(d.code);
        let mut group = match &d.location {
            Some(loc) => title.element(snippet(sources, loc, None)),
            None => Group::with_title(title),
        };
        for (label, loc) in &d.related {
            group = group.element(snippet(sources, loc, Some(label.as_str())));
        }
        if let Some(hint) = &d.hint {
            group = group.element(Level::HELP.message(hint.as_str()));
        }
        out.push_str(&renderer.render(&[group]));
        out.push_str("\n\n");
    }
    out
}

/// A one-line snippet of the source at `loc`, the span marked (annotate-snippets shows a long
/// line only around the span).
fn snippet<'a>(
    sources: &'a Sources,
    loc: &Location,
    label: Option<&'a str>,
) -> Snippet<'a, annotate_snippets::Annotation<'a>> {
    let file = sources.get(loc.file);
    let line = file.line_text(loc.span.line);
    let start = byte_of_col(line, loc.span.col);
    let end = if loc.span.end_line == loc.span.line && loc.span.end_col > loc.span.col {
        byte_of_col(line, loc.span.end_col)
    } else {
        // A span over several lines marks the rest of its first line.
        line.len()
    }
    .max(start);
    let end = if end == start {
        next_char_boundary(line, start)
    } else {
        end
    };
    let mut annotation = AnnotationKind::Primary.span(start..end);
    if let Some(label) = label {
        annotation = AnnotationKind::Context.span(start..end).label(label);
    }
    Snippet::source(line)
        .line_start(loc.span.line)
        .path(path_label(sources, loc))
        .annotation(annotation)
}

fn path_label(sources: &Sources, loc: &Location) -> String {
    sources.get(loc.file).path.display().to_string()
}

fn byte_of_col(line: &str, col: usize) -> usize {
    line.char_indices()
        .nth(col.saturating_sub(1))
        .map(|(i, _)| i)
        .unwrap_or(line.len())
}

fn next_char_boundary(line: &str, at: usize) -> usize {
    line[at..]
        .chars()
        .next()
        .map(|c| at + c.len_utf8())
        .unwrap_or(at)
}

/// The JSON shape of one diagnostic (documented in the README).
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    pub severity: Severity,
    pub code: &'a str,
    pub message: &'a str,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub end_line: Option<usize>,
    pub end_column: Option<usize>,
    pub hint: Option<&'a str>,
}

/// Converts a diagnostic to its JSON shape.
pub fn to_json<'a>(d: &'a Diagnostic, sources: &Sources) -> JsonDiagnostic<'a> {
    let loc = d.location.as_ref();
    JsonDiagnostic {
        severity: d.severity,
        code: d.code,
        message: &d.message,
        file: loc.map(|l| path_label(sources, l)),
        line: loc.map(|l| l.span.line),
        column: loc.map(|l| l.span.col),
        end_line: loc.map(|l| l.span.end_line),
        end_column: loc.map(|l| l.span.end_col),
        hint: d.hint.as_deref(),
    }
}

/// Renders diagnostics as GitHub Actions workflow commands, one per line.
pub fn render_github(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let command = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = d.message.clone();
        if let Some(hint) = &d.hint {
            message.push_str(" (hint: ");
            message.push_str(hint);
            message.push(')');
        }
        match &d.location {
            Some(loc) => out.push_str(&format!(
                "::{command} file={},line={},col={},endLine={},endColumn={},title=kitt {}::{}\n",
                escape_property(&path_label(sources, loc)),
                loc.span.line,
                loc.span.col,
                loc.span.end_line.max(loc.span.line),
                loc.span.end_col,
                d.code,
                escape_data(&message)
            )),
            None => out.push_str(&format!(
                "::{command} title=kitt {}::{}\n",
                d.code,
                escape_data(&message)
            )),
        }
    }
    out
}

/// Escapes a workflow command's message.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}
