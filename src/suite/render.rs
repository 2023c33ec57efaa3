//! Rendering `${{ }}` with the values known before a run: suite params and matrix values.

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::expr::{self, Reference, Resolution};
use super::pointer;

/// Suite parameter values; `None` for a parameter with no value yet.
pub type ParamValues = IndexMap<String, Option<Value>>;

/// Renders every `${{ }}` under `value` that can be known now; returns the rendered value
/// and the pointers (relative to `value`) whose values stay unknown until run time.
pub fn render_value(
    value: &Value,
    params: &ParamValues,
    matrix: Option<&Map<String, Value>>,
) -> (Value, Vec<String>) {
    let mut deferred = Vec::new();
    let rendered = render_at(value, String::new(), params, matrix, &mut deferred);
    (rendered, deferred)
}

fn render_at(
    value: &Value,
    pointer: String,
    params: &ParamValues,
    matrix: Option<&Map<String, Value>>,
    deferred: &mut Vec<String>,
) -> Value {
    match value {
        Value::String(s) if expr::is_templated(s) => {
            let Ok(pieces) = expr::parse(s) else {
                deferred.push(pointer);
                return value.clone();
            };
            let resolved = expr::render(&pieces, |r| match r {
                Reference::Param(p) => match params.get(p) {
                    Some(Some(v)) => Resolution::Known(v.clone()),
                    _ => Resolution::Deferred,
                },
                Reference::Matrix(k) => match matrix.and_then(|m| m.get(k)) {
                    Some(v) => Resolution::Known(v.clone()),
                    None => Resolution::Deferred,
                },
                Reference::NodeOutput { .. } => Resolution::Deferred,
            });
            resolved.unwrap_or_else(|| {
                deferred.push(pointer);
                value.clone()
            })
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    render_at(
                        v,
                        pointer::push_index(&pointer, i),
                        params,
                        matrix,
                        deferred,
                    )
                })
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        render_at(v, pointer::push(&pointer, k), params, matrix, deferred),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Renders a string field with suite params; `None` when it is absent or stays unknown.
pub fn render_string(text: Option<&str>, params: &ParamValues) -> Option<String> {
    let text = text?;
    let (value, deferred) = render_value(&Value::String(text.to_string()), params, None);
    if !deferred.is_empty() {
        return None;
    }
    match value {
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}
