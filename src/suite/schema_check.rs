//! Validation of a loaded file against a JSON Schema, with errors turned into diagnostics
//! at the exact key or value and with hints taken from the schema.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use super::diagnostics::{Diagnostic, Location};
use super::pointer;
use super::schema::{Compiled, node_at};

/// The schema document errors are explained from.
struct SchemaDoc<'a> {
    document: &'a Value,
}

/// Checks `value` against `schema`; `locate(pointer, prefer_key)` places each error.
pub fn check(
    schema: &Compiled,
    value: &Value,
    locate: &dyn Fn(&str, bool) -> Location,
) -> Vec<Diagnostic> {
    check_with(&schema.validator, &schema.document, value, locate)
}

/// Like [`check`], with the validator and its schema document given separately.
pub fn check_with(
    validator: &jsonschema::Validator,
    document: &Value,
    value: &Value,
    locate: &dyn Fn(&str, bool) -> Location,
) -> Vec<Diagnostic> {
    let schema = SchemaDoc { document };
    let mut out = Vec::new();
    for error in validator.iter_errors(value) {
        let instance_path = error.instance_path().as_str().to_string();
        let schema_path = error.schema_path().as_str().to_string();
        let found = value.pointer(&instance_path);
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let parent = schema_path
                    .strip_suffix("/additionalProperties")
                    .and_then(|p| node_at(schema.document, p));
                let allowed: Vec<&str> = parent
                    .and_then(|p| p.get("properties"))
                    .and_then(Value::as_object)
                    .map(|m| m.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                for key in unexpected {
                    let hint = match crate::registry::suggest(key, allowed.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("allowed keys here: {}", allowed.join(", ")),
                    };
                    out.push(
                        Diagnostic::error("schema", format!("unknown key `{key}`"))
                            .at(locate(&pointer::push(&instance_path, key), true))
                            .hint(hint),
                    );
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                let description = schema_description(&schema, &schema_path, name);
                let place = if instance_path.is_empty() {
                    "the top level".to_string()
                } else {
                    format!("`{}`", display_path(&instance_path))
                };
                out.push(
                    Diagnostic::error(
                        "schema",
                        format!("missing required key `{name}` in {place}"),
                    )
                    .at(locate(&instance_path, true))
                    .maybe_hint(description.map(|d| format!("`{name}`: {d}"))),
                );
            }
            ValidationErrorKind::Type { kind } => {
                let expected = match kind {
                    TypeKind::Single(t) => t.to_string(),
                    TypeKind::Multiple(ts) => ts
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(" or "),
                };
                let actual = found.map(kind_of).unwrap_or("nothing");
                let hint = if expected.contains("string")
                    && matches!(found, Some(Value::Number(_) | Value::Bool(_)))
                {
                    Some("YAML read this unquoted value as a number or boolean; quote it to make it a string".to_string())
                } else {
                    None
                };
                out.push(
                    Diagnostic::error(
                        "schema",
                        format!(
                            "`{}` must be {}, found {}",
                            display_path(&instance_path),
                            article(&expected),
                            actual
                        ),
                    )
                    .at(locate(&instance_path, false))
                    .maybe_hint(hint),
                );
            }
            ValidationErrorKind::Enum { options } => {
                let choices: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().map(show).collect())
                    .unwrap_or_default();
                let text = found.map(show).unwrap_or_default();
                let hint = crate::registry::suggest(&text, choices.iter().map(String::as_str))
                    .map(|s| format!("did you mean {s}?"))
                    .unwrap_or_else(|| format!("one of: {}", choices.join(", ")));
                out.push(
                    Diagnostic::error(
                        "schema",
                        format!(
                            "{text} is not an accepted value of `{}`",
                            display_path(&instance_path)
                        ),
                    )
                    .at(locate(&instance_path, false))
                    .hint(hint),
                );
            }
            ValidationErrorKind::Constant { expected_value } => {
                out.push(
                    Diagnostic::error(
                        "schema",
                        format!(
                            "`{}` must be {}",
                            display_path(&instance_path),
                            show(expected_value)
                        ),
                    )
                    .at(locate(&instance_path, false)),
                );
            }
            ValidationErrorKind::Pattern { .. }
            | ValidationErrorKind::AnyOf { .. }
            | ValidationErrorKind::OneOfNotValid { .. } => {
                let node = node_at(schema.document, parent_of(&schema_path));
                let description = node
                    .and_then(|n| n.get("description"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let text = found.map(show).unwrap_or_default();
                out.push(
                    Diagnostic::error(
                        "schema",
                        format!(
                            "{text} is not a valid value of `{}`",
                            display_path(&instance_path)
                        ),
                    )
                    .at(locate(&instance_path, false))
                    .maybe_hint(description),
                );
            }
            ValidationErrorKind::PropertyNames { error } => {
                let key = error.instance().as_str().unwrap_or_default().to_string();
                out.push(
                    Diagnostic::error("schema", format!("`{key}` is not a valid name here"))
                        .at(locate(&pointer::push(&instance_path, &key), true))
                        .hint("names use letters, digits, `_`, `-` and `.`, and start with a letter or digit"),
                );
            }
            _ => {
                out.push(
                    Diagnostic::error(
                        "schema",
                        format!("`{}`: {error}", display_path(&instance_path)),
                    )
                    .at(locate(&instance_path, false)),
                );
            }
        }
    }
    out
}

/// The schema path of the keyword's parent schema.
fn parent_of(schema_path: &str) -> &str {
    schema_path
        .rfind('/')
        .map(|i| &schema_path[..i])
        .unwrap_or("")
}

/// The description of property `name` of the schema that raised a `required` error.
fn schema_description(schema: &SchemaDoc<'_>, schema_path: &str, name: &str) -> Option<String> {
    node_at(schema.document, parent_of(schema_path))
        .and_then(|n| n.get("properties"))
        .and_then(|p| p.get(name))
        .and_then(|p| p.get("description").or_else(|| described_ref(schema, p)))
        .and_then(Value::as_str)
        .map(|d| d.lines().next().unwrap_or(d).to_string())
}

fn described_ref<'a>(schema: &SchemaDoc<'a>, node: &Value) -> Option<&'a Value> {
    let r = node.get("$ref")?.as_str()?.strip_prefix('#')?;
    schema.document.pointer(r)?.get("description")
}

/// `/nodes/2/params` → `nodes[2].params`, the way people read paths.
pub fn display_path(instance_path: &str) -> String {
    if instance_path.is_empty() {
        return "(top level)".into();
    }
    let mut out = String::new();
    for segment in pointer::segments(instance_path) {
        if segment.parse::<usize>().is_ok() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn article(kind: &str) -> String {
    match kind {
        "array" => "a list".into(),
        "object" => "a mapping".into(),
        "integer" => "an integer".into(),
        k => format!("a {k}"),
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("`{s}`"),
        v => format!("`{v}`"),
    }
}
