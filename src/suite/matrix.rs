//! Matrix expansion: the legs of a node, from its axes, `include` and `exclude`.

use serde_json::{Map, Value};

use super::model::Matrix;

/// Most legs one node may expand to.
pub const MAX_LEGS_PER_NODE: usize = 256;

/// Keys of a matrix that are settings, not axes.
const SETTINGS: [&str; 4] = ["include", "exclude", "max_parallel", "fail_fast"];

/// Why a matrix cannot be expanded; `pointer` is relative to the matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixError {
    pub pointer: String,
    pub message: String,
    pub hint: Option<String>,
}

/// How the legs of a node run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegPolicy {
    pub max_parallel: Option<u32>,
    pub fail_fast: bool,
}

impl Matrix {
    /// The axes, in file order.
    pub fn axes(&self) -> Vec<(&str, &[Value])> {
        self.0
            .iter()
            .filter(|(k, _)| !SETTINGS.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v.as_array().map(Vec::as_slice).unwrap_or(&[])))
            .collect()
    }

    /// `max_parallel` and `fail_fast` (default true).
    pub fn policy(&self) -> LegPolicy {
        LegPolicy {
            max_parallel: self
                .0
                .get("max_parallel")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok()),
            fail_fast: self
                .0
                .get("fail_fast")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        }
    }

    /// Every key a leg may carry: the axes and the keys `include` adds.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.axes().iter().map(|(k, _)| k.to_string()).collect();
        for entry in self.entries("include") {
            for k in entry.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        keys
    }

    fn entries(&self, key: &str) -> impl Iterator<Item = &Map<String, Value>> {
        self.0
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
    }

    /// Expands to legs (axis → value), at most `cap` of them.
    pub fn expand(&self, cap: usize) -> Result<Vec<Map<String, Value>>, MatrixError> {
        let axes = self.axes();
        let product = axes
            .iter()
            .try_fold(1usize, |acc, (_, values)| acc.checked_mul(values.len()))
            .unwrap_or(usize::MAX);
        let includes = self.entries("include").count();
        if product.saturating_add(includes) > cap {
            let sizes: Vec<String> = axes
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.len()))
                .collect();
            return Err(MatrixError {
                pointer: String::new(),
                message: format!(
                    "the matrix expands to {} legs, more than the limit of {cap}",
                    if product == usize::MAX {
                        "too many".to_string()
                    } else {
                        (product + includes).to_string()
                    }
                ),
                hint: Some(format!(
                    "axis sizes: {}; split the node or use `exclude:`",
                    sizes.join(", ")
                )),
            });
        }
        for (j, entry) in self.entries("exclude").enumerate() {
            for key in entry.keys() {
                if !axes.iter().any(|(k, _)| k == key) {
                    return Err(MatrixError {
                        pointer: format!("/exclude/{j}/{}", super::pointer::escape(key)),
                        message: format!(
                            "`exclude` names `{key}`, which is not an axis of this matrix"
                        ),
                        hint: Some(format!(
                            "axes: {}",
                            axes.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                        )),
                    });
                }
            }
        }
        let mut legs: Vec<Map<String, Value>> = vec![Map::new()];
        if axes.is_empty() {
            legs.clear();
        }
        for (key, values) in &axes {
            let mut next = Vec::with_capacity(legs.len() * values.len());
            for leg in &legs {
                for v in *values {
                    let mut l = leg.clone();
                    l.insert(key.to_string(), v.clone());
                    next.push(l);
                }
            }
            legs = next;
        }
        let excludes: Vec<&Map<String, Value>> = self.entries("exclude").collect();
        legs.retain(|leg| {
            !excludes
                .iter()
                .any(|ex| ex.iter().all(|(k, v)| leg.get(k) == Some(v)))
        });
        for entry in self.entries("include") {
            if !legs.iter().any(|l| l == entry) {
                legs.push(entry.clone());
            }
        }
        if legs.is_empty() {
            return Err(MatrixError {
                pointer: String::new(),
                message: "the matrix has no legs left after `exclude`".into(),
                hint: Some("remove an `exclude` entry or add values".into()),
            });
        }
        Ok(legs)
    }
}

/// The id of a leg: `sweep[concurrency=8]`, axes in matrix order.
pub fn leg_id(node: &str, values: &Map<String, Value>) -> String {
    if values.is_empty() {
        return node.to_string();
    }
    let parts: Vec<String> = values
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    format!("{node}[{}]", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matrix(v: Value) -> Matrix {
        Matrix(v.as_object().unwrap().clone())
    }

    #[test]
    fn expands_in_axis_order_with_exclude_and_include() {
        let m = matrix(
            json!({"c": [1, 8], "m": ["a", "b"], "exclude": [{"c": 8, "m": "b"}], "include": [{"c": 32, "m": "a"}]}),
        );
        let ids: Vec<String> = m
            .expand(100)
            .unwrap()
            .iter()
            .map(|l| leg_id("s", l))
            .collect();
        assert_eq!(
            ids,
            ["s[c=1,m=a]", "s[c=1,m=b]", "s[c=8,m=a]", "s[c=32,m=a]"]
        );
    }

    #[test]
    fn refuses_too_many_legs_without_building_them() {
        let values: Vec<i32> = (0..100).collect();
        let m = matrix(json!({"a": values, "b": values, "c": values, "d": values, "e": values}));
        assert!(
            m.expand(256)
                .unwrap_err()
                .message
                .contains("more than the limit")
        );
    }

    #[test]
    fn exclude_must_name_axes() {
        let m = matrix(json!({"c": [1], "exclude": [{"x": 1}]}));
        assert_eq!(m.expand(10).unwrap_err().pointer, "/exclude/0/x");
    }
}
