//! Suite parameters: declared types and defaults, and `-p NAME=VALUE` overrides.

use indexmap::IndexMap;
use serde_json::{Number, Value};

use super::model::{ParamSpec, ParamType};

/// A `-p NAME=VALUE` given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub name: String,
    pub value: String,
}

impl std::str::FromStr for Override {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, value) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))?;
        if name.is_empty() {
            return Err(format!("`{s}` has no parameter name before `=`"));
        }
        Ok(Override {
            name: name.to_string(),
            value: value.to_string(),
        })
    }
}

impl ParamType {
    /// "a string", "an integer", ...
    pub fn with_article(self) -> String {
        match self {
            ParamType::Integer => "an integer".into(),
            other => format!("a {other}"),
        }
    }
}

/// Whether `value` has the declared type.
pub fn has_type(value: &Value, kind: ParamType) -> bool {
    match kind {
        ParamType::String => value.is_string(),
        ParamType::Integer => value.is_i64() || value.is_u64(),
        ParamType::Number => value.is_number(),
        ParamType::Boolean => value.is_boolean(),
    }
}

/// Parses command-line text as a value of the declared type.
pub fn parse_as(text: &str, kind: ParamType) -> Result<Value, String> {
    match kind {
        ParamType::String => Ok(Value::String(text.to_string())),
        ParamType::Integer => text
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{text}` is not an integer")),
        ParamType::Number => text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{text}` is not a number")),
        ParamType::Boolean => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("`{text}` is not true or false")),
        },
    }
}

/// The value of each parameter: the override, else the default; `None` when neither exists.
pub fn resolve(
    specs: &IndexMap<String, ParamSpec>,
    overrides: &[Override],
) -> Result<IndexMap<String, Option<Value>>, String> {
    let mut values: IndexMap<String, Option<Value>> = specs
        .iter()
        .map(|(name, spec)| (name.clone(), spec.default.clone()))
        .collect();
    for o in overrides {
        let Some(spec) = specs.get(&o.name) else {
            let known: Vec<&str> = specs.keys().map(String::as_str).collect();
            let mut message = format!(
                "`-p {}`: the suite declares no parameter `{}`",
                o.name, o.name
            );
            if let Some(s) = crate::registry::suggest(&o.name, known.iter().copied()) {
                message.push_str(&format!("; did you mean `{s}`?"));
            } else if !known.is_empty() {
                message.push_str(&format!("; declared: {}", known.join(", ")));
            }
            return Err(message);
        };
        let value = parse_as(&o.value, spec.kind).map_err(|e| {
            format!(
                "`-p {}`: {e} (the parameter is {})",
                o.name,
                spec.kind.with_article()
            )
        })?;
        values.insert(o.name.clone(), Some(value));
    }
    Ok(values)
}
