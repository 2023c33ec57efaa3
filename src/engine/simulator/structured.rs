//! The simulator's answers to `response_format`: a JSON document a JSON schema accepts (a
//! `const` or the first `enum` value, minimums, every listed property), streamed in pieces of
//! four characters, so a structured-output benchmark has a server whose answers are known;
//! with `tools`, a call of one of them whose arguments its parameters schema accepts.
//! Schema keywords it does not model (`pattern`, `format`, `not`, ...) are ignored, so such a
//! schema may get answers that do not validate, as from a real server that ignores them.

use serde_json::{Map, Value, json};

/// Characters per streamed piece of a JSON answer.
const PIECE: usize = 4;
/// Nesting deeper than this answers `null`.
const MAX_DEPTH: usize = 16;

/// The JSON text answering a `response_format`, when it asks for JSON.
pub fn answer(format: &Value) -> Option<String> {
    match format.get("type").and_then(Value::as_str)? {
        "json_schema" => {
            let schema = format
                .pointer("/json_schema/schema")
                .unwrap_or(&Value::Null);
            Some(instance(schema, 0).to_string())
        }
        "json_object" => Some(json!({"answer": "simulated"}).to_string()),
        _ => None,
    }
}

/// The function a chat request's `tools` make the simulator call and its arguments (JSON
/// text its `parameters` schema accepts): the one `tool_choice` names, else the first;
/// none with `tool_choice: none` or without tools.
pub fn tool_call(body: &Value) -> Option<(String, String)> {
    let tools = body.get("tools")?.as_array()?;
    let choice = body.get("tool_choice");
    if choice.and_then(Value::as_str) == Some("none") {
        return None;
    }
    let wanted = choice
        .and_then(|c| c.pointer("/function/name"))
        .and_then(Value::as_str);
    let tool = tools
        .iter()
        .find(|t| wanted.is_none_or(|w| name_of(t) == Some(w)))?;
    let parameters = tool
        .pointer("/function/parameters")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object"}));
    Some((
        name_of(tool)?.to_string(),
        instance(&parameters, 0).to_string(),
    ))
}

/// A tool's function name.
fn name_of(tool: &Value) -> Option<&str> {
    tool.pointer("/function/name").and_then(Value::as_str)
}

/// The answer in streamed pieces.
pub fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(PIECE).map(|c| c.iter().collect()).collect()
}

/// A value `schema` accepts, as far as the keywords above go.
pub fn instance(schema: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    let Some(s) = schema.as_object() else {
        return json!("text");
    };
    if let Some(c) = s.get("const") {
        return c.clone();
    }
    if let Some(first) = s
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = s.get(key).and_then(Value::as_array).and_then(|e| e.first()) {
            return instance(first, depth + 1);
        }
    }
    let kind = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if s.contains_key("properties") => "object",
        _ => "string",
    };
    let number = |integer: bool| {
        let min = s
            .get("minimum")
            .and_then(Value::as_f64)
            .or_else(|| {
                s.get("exclusiveMinimum")
                    .and_then(Value::as_f64)
                    .map(|m| m + 1.0)
            })
            .unwrap_or(0.0);
        let value = match s.get("maximum").and_then(Value::as_f64) {
            Some(max) if max < min => max,
            _ => min,
        };
        if integer {
            json!(value.ceil() as i64)
        } else {
            json!(value)
        }
    };
    match kind {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    out.insert(name.clone(), instance(sub, depth + 1));
                }
            }
            for name in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = name.as_str() {
                    out.entry(name.to_string()).or_insert_with(|| json!("text"));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let n = s
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .min(8);
            let items = s.get("items").unwrap_or(&Value::Null);
            Value::Array((0..n).map(|_| instance(items, depth + 1)).collect())
        }
        "integer" => number(true),
        "number" => number(false),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => {
            let n = s
                .get("minLength")
                .and_then(Value::as_u64)
                .unwrap_or(4)
                .clamp(1, 64);
            json!("a".repeat(n as usize))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_validate_against_the_schemas_they_came_from() {
        let schemas = [
            json!({"type": "object", "properties": {"color": {"enum": ["red", "blue"]},
                   "count": {"type": "integer", "minimum": 3}, "ok": {"type": "boolean"},
                   "tags": {"type": "array", "items": {"type": "string", "minLength": 2}, "minItems": 2},
                   "nested": {"type": "object", "properties": {"x": {"type": ["null", "number"], "exclusiveMinimum": 1.5}}}},
                   "required": ["color", "count", "extra"]}),
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}]}),
            json!({"const": 42}),
        ];
        for schema in schemas {
            let value = instance(&schema, 0);
            let validator = jsonschema::validator_for(&schema).unwrap();
            assert!(validator.is_valid(&value), "{schema} rejects {value}");
        }
        let text = answer(&json!({"type": "json_schema", "json_schema": {"name": "x",
            "schema": {"type": "object", "properties": {"a": {"const": 1}}}}}))
        .unwrap();
        assert_eq!(text, r#"{"a":1}"#);
        assert_eq!(pieces(&text), [r#"{"a""#, r#":1}"#]);
        assert_eq!(answer(&json!({"type": "text"})), None);
    }
}
