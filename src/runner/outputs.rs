//! Rendering finished nodes' outputs into later params (`${{ nodes.ID.outputs.NAME }}`).

use serde_json::{Map, Value};

use crate::suite::expr::{self, Reference, Resolution};

/// Node id → its outputs.
pub type Outputs = std::collections::HashMap<String, Map<String, Value>>;

/// Renders every node-output reference under `value`; an output that is not there is an
/// error naming it.
pub fn render(value: &Value, outputs: &Outputs) -> Result<Value, String> {
    match value {
        Value::String(s) if expr::is_templated(s) => {
            let pieces = expr::parse(s)?;
            let mut missing = None;
            let rendered = expr::render(&pieces, |r| match r {
                Reference::NodeOutput { node, output } => {
                    match outputs.get(node).and_then(|o| o.get(output)) {
                        Some(v) => Resolution::Known(v.clone()),
                        None => {
                            missing.get_or_insert_with(|| r.to_string());
                            Resolution::Deferred
                        }
                    }
                }
                other => {
                    missing.get_or_insert_with(|| other.to_string());
                    Resolution::Deferred
                }
            });
            match (rendered, missing) {
                (Some(v), _) => Ok(v),
                (None, Some(m)) => Err(format!(
                    "`{m}` has no value: the node did not run or did not report it"
                )),
                (None, None) => Err(format!("`{s}` could not be rendered")),
            }
        }
        Value::Array(items) => items.iter().map(|v| render(v, outputs)).collect(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), render(v, outputs)?)))
            .collect::<Result<Map<_, _>, String>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outputs_render_with_their_type_and_missing_ones_are_named() {
        let mut outputs = Outputs::new();
        outputs.insert(
            "sweep".into(),
            json!({"max_rate": 12.5}).as_object().unwrap().clone(),
        );
        let v = json!({"rate": "${{ nodes.sweep.outputs.max_rate }}", "note": "r=${{ nodes.sweep.outputs.max_rate }}"});
        assert_eq!(
            render(&v, &outputs).unwrap(),
            json!({"rate": 12.5, "note": "r=12.5"})
        );
        let e = render(&json!("${{ nodes.other.outputs.x }}"), &outputs).unwrap_err();
        assert!(e.contains("nodes.other.outputs.x"), "{e}");
    }
}
