//! Benchmark params: schemas generated from the params types, and parsing with the path of
//! the offending field.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::BenchError;

/// The draft-07 params schema of `T`, self-contained (no `$ref`), refusing unknown keys.
pub fn schema_of<T: JsonSchema>() -> Value {
    let mut settings = SchemaSettings::draft07();
    settings.inline_subschemas = true;
    let mut value = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    crate::suite::schema::drop_null_alternatives(&mut value);
    drop_null_defaults(&mut value);
    bound_integers(&mut value);
    if let Some(map) = value.as_object_mut() {
        map.remove("$schema");
        map.remove("title");
        map.remove("description");
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    value
}

/// Gives every integer with a Rust width (`format: uint32`, ...) the bounds of that width, so
/// a value that cannot be parsed (`requests: 1e38`) is refused by `kitt validate` at its
/// line, not when the node runs.
fn bound_integers(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let bounds: Option<(i128, i128)> = match map.get("format").and_then(Value::as_str) {
                Some("uint8") => Some((0, u8::MAX.into())),
                Some("uint16") => Some((0, u16::MAX.into())),
                Some("uint32") => Some((0, u32::MAX.into())),
                Some("uint64" | "uint") => Some((0, u64::MAX.into())),
                Some("int8") => Some((i8::MIN.into(), i8::MAX.into())),
                Some("int16") => Some((i16::MIN.into(), i16::MAX.into())),
                Some("int32") => Some((i32::MIN.into(), i32::MAX.into())),
                Some("int64" | "int") => Some((i64::MIN.into(), i64::MAX.into())),
                _ => None,
            };
            if let Some((low, high)) = bounds {
                let number = |n: i128| -> Value {
                    u64::try_from(n)
                        .map(Value::from)
                        .unwrap_or_else(|_| Value::from(n as i64))
                };
                map.entry("minimum").or_insert_with(|| number(low));
                map.entry("maximum").or_insert_with(|| number(high));
            }
            map.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// Removes `default: null` (an absent optional param), which would contradict the type.
fn drop_null_defaults(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            map.values_mut().for_each(drop_null_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_defaults),
        _ => {}
    }
}

/// Parses params into `T`, naming the field that does not fit.
pub fn parse<T: DeserializeOwned>(params: &Value) -> Result<T, BenchError> {
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        BenchError::params(if path == "." {
            e.into_inner().to_string()
        } else {
            format!("`{path}`: {}", e.into_inner())
        })
    })
}
