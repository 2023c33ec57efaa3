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
    if let Some(map) = value.as_object_mut() {
        map.remove("$schema");
        map.remove("title");
        map.remove("description");
        map.insert("additionalProperties".into(), Value::Bool(false));
    }
    value
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
        BenchError::Params(if path == "." {
            e.into_inner().to_string()
        } else {
            format!("`{path}`: {}", e.into_inner())
        })
    })
}
