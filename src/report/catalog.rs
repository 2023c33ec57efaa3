//! The built-in reporters' static facts.

use serde_json::json;

use crate::registry::{ReporterInfo, ReporterTemplates};

/// The built-in reporters.
pub fn builtin_reporters() -> Vec<ReporterInfo> {
    [
        (
            "markdown",
            "A summary to read in ten seconds: verdict, failed asserts, tables",
        ),
        (
            "html",
            "One self-contained HTML file with tables and SVG charts",
        ),
        ("json", "The full results document"),
        ("junit", "JUnit XML: a test case per node and per assert"),
        ("csv", "One row per node and metric"),
    ]
    .into_iter()
    .map(|(name, description)| ReporterInfo {
        name: name.into(),
        description: description.into(),
        params_schema: json!({"type": "object", "additionalProperties": false, "properties": {}}),
        templates: ReporterTemplates::BuiltIn,
    })
    .collect()
}
