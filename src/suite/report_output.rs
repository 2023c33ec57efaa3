//! A report's `output:` path pattern: the report-context values it may use, and the check,
//! before anything runs, that it renders and stays inside the working directory.

use minijinja::{Environment, UndefinedBehavior};

/// The values an output path may use (from the report context, `kitt schema results`).
pub const VARIABLES: &[&str] = &[
    "suite.name",
    "suite.version",
    "run.id",
    "run.started",
    "run.status",
    "run.kitt_version",
    "run.git_commit",
    "verdict",
];

/// Checks an output pattern: valid, using only [`VARIABLES`], and rendering to a relative
/// path that does not climb out with `..`. The error says what to change.
pub fn check(pattern: &str) -> Result<(), String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let template = env.template_from_str(pattern).map_err(|e| {
        format!(
            "`{pattern}` is not a valid template: {}",
            e.detail().unwrap_or("syntax error")
        )
    })?;
    let mut unknown: Vec<String> = template
        .undeclared_variables(true)
        .into_iter()
        .filter(|v| !VARIABLES.contains(&v.as_str()))
        .collect();
    unknown.sort();
    if let Some(first) = unknown.first() {
        return Err(format!(
            "`{first}` is not a value an output path can use; use {}",
            VARIABLES.join(", ")
        ));
    }
    // Render with sample values to see the path's shape.
    let mut sample = serde_json::Map::new();
    for v in VARIABLES {
        let mut parts = v.split('.');
        let (Some(head), tail) = (parts.next(), parts.next()) else {
            continue;
        };
        match tail {
            Some(field) => {
                let entry = sample
                    .entry(head.to_string())
                    .or_insert_with(|| serde_json::json!({}));
                entry[field] = serde_json::json!("x");
            }
            None => {
                sample.insert(head.to_string(), serde_json::json!("x"));
            }
        }
    }
    let rendered = template
        .render(minijinja::value::Serde(serde_json::Value::Object(sample)))
        .map_err(|e| {
            format!(
                "`{pattern}` does not render: {}",
                e.detail().unwrap_or_default()
            )
        })?;
    crate::paths::inside(std::path::Path::new("."), &rendered).map_err(|_| {
        format!("`{pattern}` must be a relative path inside the directory kitt runs in (no leading `/`, no climbing out with `..`)")
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_checked_before_running() {
        assert!(check("reports/{{ suite.name }}-{{ run.id }}.md").is_ok());
        assert!(check("{{ nosuch }}.md").unwrap_err().contains("`nosuch`"));
        assert!(
            check("{{ suite.nosuch }}.md")
                .unwrap_err()
                .contains("suite.nosuch")
        );
        assert!(check("../escape.md").unwrap_err().contains("relative path"));
        assert!(check("/etc/x.md").is_err());
        assert!(check("{{ suite.name }}/../../x.md").is_err());
        assert!(
            check("{% if %}")
                .unwrap_err()
                .contains("not a valid template")
        );
    }
}
