//! The suite's JSON Schemas: generated from the model types, committed under `schemas/`,
//! compiled once per process, and read back to answer "may this field hold `${{ }}`?".

use std::sync::OnceLock;

use jsonschema::Validator;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::model::{Suite, TemplateFile};

/// The committed suite schema (a test keeps it equal to what the types generate).
pub const SUITE_SCHEMA: &str = include_str!("../../schemas/suite.schema.json");
/// The committed node-templates schema.
pub const TEMPLATES_SCHEMA: &str = include_str!("../../schemas/templates.schema.json");

/// The keyword that marks a field whose strings may hold `${{ }}`.
pub const TEMPLATABLE: &str = "x-kitt-templatable";

/// Generates the draft-07 schema of a type, as committed under `schemas/`.
///
/// Optional fields are absent rather than null in suites, so `null` alternatives that
/// schemars adds for `Option` are removed.
pub fn generate<T: JsonSchema>() -> Value {
    let mut value = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    drop_null_alternatives(&mut value);
    value
}

pub(crate) fn drop_null_alternatives(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types[0].clone();
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(branches)) = map.get_mut("anyOf") {
                branches.retain(|b| b.get("type").and_then(Value::as_str) != Some("null"));
                if branches.len() == 1 {
                    let only = branches.remove(0);
                    map.remove("anyOf");
                    if let Value::Object(inner) = only {
                        for (k, v) in inner {
                            map.entry(k).or_insert(v);
                        }
                    }
                }
            }
            for v in map.values_mut() {
                drop_null_alternatives(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_alternatives),
        _ => {}
    }
}

/// The suite schema as generated from the types.
pub fn generate_suite() -> Value {
    generate::<Suite>()
}

/// The node-templates schema as generated from the types.
pub fn generate_templates() -> Value {
    generate::<TemplateFile>()
}

/// A compiled schema with its JSON document.
pub struct Compiled {
    pub document: Value,
    pub validator: Validator,
}

fn compile(text: &str) -> Compiled {
    let document: Value = serde_json::from_str(text).expect("committed schema is JSON");
    let validator = jsonschema::draft7::new(&document).expect("committed schema compiles");
    Compiled {
        document,
        validator,
    }
}

/// The suite schema, compiled on first use.
pub fn suite() -> &'static Compiled {
    static CELL: OnceLock<Compiled> = OnceLock::new();
    CELL.get_or_init(|| compile(SUITE_SCHEMA))
}

/// The node-templates schema, compiled on first use.
pub fn templates() -> &'static Compiled {
    static CELL: OnceLock<Compiled> = OnceLock::new();
    CELL.get_or_init(|| compile(TEMPLATES_SCHEMA))
}

/// Follows a local `$ref` (`#/definitions/X`).
fn deref<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    let mut node = node;
    for _ in 0..16 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(target) => node = target,
                None => return node,
            },
            None => return node,
        }
    }
    node
}

/// The schemas that apply at `node` itself (following `$ref` and `allOf`/`anyOf`/`oneOf`).
fn alternatives<'a>(root: &'a Value, node: &'a Value, out: &mut Vec<&'a Value>, depth: usize) {
    if depth > 16 {
        return;
    }
    let node = deref(root, node);
    out.push(node);
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = node.get(key).and_then(Value::as_array) {
            for sub in list {
                alternatives(root, sub, out, depth + 1);
            }
        }
    }
}

/// The schema for one step down from `node` (an object property or an array item).
fn child<'a>(node: &'a Value, segment: &str) -> Option<&'a Value> {
    if let Some(p) = node.get("properties").and_then(|p| p.get(segment)) {
        return Some(p);
    }
    if let Some(a) = node.get("additionalProperties").filter(|a| a.is_object()) {
        return Some(a);
    }
    if segment.parse::<usize>().is_ok() {
        return node.get("items").filter(|i| i.is_object());
    }
    None
}

/// Whether the value at `segments` (unescaped pointer segments) may hold `${{ }}`: true when
/// the field or one of its ancestors carries the templatable keyword.
pub fn is_templatable(root: &Value, segments: &[String]) -> bool {
    fn walk(root: &Value, node: &Value, segments: &[String], depth: usize) -> bool {
        let mut here = Vec::new();
        alternatives(root, node, &mut here, depth);
        if here
            .iter()
            .any(|n| n.get(TEMPLATABLE).and_then(Value::as_bool) == Some(true))
        {
            return true;
        }
        let Some((first, rest)) = segments.split_first() else {
            return false;
        };
        here.iter()
            .filter_map(|n| child(n, first))
            .any(|c| walk(root, c, rest, depth + 1))
    }
    walk(root, root, segments, 0)
}

/// The schema node at a jsonschema `schema_path` (which may pass through `$ref`).
pub fn node_at<'a>(root: &'a Value, schema_path: &str) -> Option<&'a Value> {
    let mut node = root;
    for segment in super::pointer::segments(schema_path) {
        node = if segment == "$ref" {
            deref(root, node)
        } else {
            match node {
                Value::Object(m) => m.get(&segment)?,
                Value::Array(a) => a.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            }
        };
    }
    Some(node)
}
