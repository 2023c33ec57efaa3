//! Datasets: local JSONL, JSON or CSV files, or Hugging Face datasets fetched once into a
//! cache, read into rows with a declared field mapping, then limited or sampled.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::hf;

/// Largest dataset file read, in bytes.
pub const MAX_DATASET_BYTES: u64 = 1024 * 1024 * 1024;

/// Where a benchmark's items come from: a path, or a full description.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum DatasetSpec {
    /// A local file, relative to the suite's directory.
    Path(String),
    Source(DatasetSource),
}

/// A dataset with its format and field mapping.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetSource {
    /// A local file, relative to the suite's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A Hugging Face dataset id such as `openai/gsm8k`, fetched once into kitt's cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf: Option<String>,
    /// The Hugging Face configuration (subset), e.g. `main`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// The Hugging Face split, e.g. `test`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// File format; by default taken from the extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// The benchmark's field name → the dataset's field (dotted path, e.g. `mc1_targets.choices`).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub fields: IndexMap<String, String>,
}

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jsonl,
    Json,
    Csv,
}

/// One row and where it came from.
#[derive(Debug, Clone)]
pub struct Row {
    /// 1-based line (JSONL, CSV) or item number (JSON array, Hugging Face).
    pub line: usize,
    pub value: Value,
}

/// Rows read from one source.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The file path or `hf:` id, for messages.
    pub name: String,
    pub rows: Vec<Row>,
    fields: IndexMap<String, String>,
}

/// Why a dataset could not be read or used.
#[derive(Debug, thiserror::Error)]
#[error("dataset {name}: {message}")]
pub struct DatasetError {
    pub name: String,
    pub message: String,
}

fn error(name: &str, message: impl Into<String>) -> DatasetError {
    DatasetError {
        name: name.to_string(),
        message: message.into(),
    }
}

impl DatasetSpec {
    /// `None` for an empty path, which suites use to mean "the default dataset".
    pub fn given(spec: &Option<DatasetSpec>) -> Option<&DatasetSpec> {
        spec.as_ref()
            .filter(|d| !matches!(d, DatasetSpec::Path(p) if p.trim().is_empty()))
    }

    fn source(&self) -> DatasetSource {
        match self {
            DatasetSpec::Path(p) => DatasetSource {
                path: Some(p.clone()),
                ..DatasetSource::default()
            },
            DatasetSpec::Source(s) => s.clone(),
        }
    }
}

/// Reads a dataset; a relative path is taken from `base_dir`. Hugging Face datasets are
/// downloaded on first use into `cache_dir`.
pub async fn load(
    spec: &DatasetSpec,
    base_dir: &Path,
    cache_dir: &Path,
) -> Result<Dataset, DatasetError> {
    let source = spec.source();
    match (&source.path, &source.hf) {
        (Some(path), None) => {
            let path = base_dir.join(path);
            let rows = read_file(&path, source.format)?;
            Ok(Dataset {
                name: path.display().to_string(),
                rows,
                fields: source.fields,
            })
        }
        (None, Some(id)) => {
            let name = format!("hf:{id}");
            let config = source.config.as_deref().unwrap_or("default");
            let split = source.split.as_deref().unwrap_or("test");
            let file = hf::cached(id, config, split, cache_dir)
                .await
                .map_err(|e| error(&name, e))?;
            let rows = read_file(&file, Some(Format::Jsonl))?;
            Ok(Dataset {
                name,
                rows,
                fields: source.fields,
            })
        }
        (Some(_), Some(_)) => Err(error("", "give `path` or `hf`, not both")),
        (None, None) => Err(error(
            "",
            "give `path` (a local file) or `hf` (a Hugging Face dataset id)",
        )),
    }
}

/// Reads every row of a local file.
pub fn read_file(path: &Path, format: Option<Format>) -> Result<Vec<Row>, DatasetError> {
    let name = path.display().to_string();
    let format = match format {
        Some(f) => f,
        None => match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson") => Format::Jsonl,
            Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            _ => {
                return Err(error(
                    &name,
                    "cannot tell the format from the extension; set `format: jsonl|json|csv`",
                ));
            }
        },
    };
    let text = crate::fsio::read_text(path, MAX_DATASET_BYTES).map_err(|e| {
        error(
            &name,
            format!("cannot read it: {e} (paths are relative to the suite's directory)"),
        )
    })?;
    let rows = match format {
        Format::Jsonl => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l)
                    .map(|value| Row { line: i + 1, value })
                    .map_err(|e| error(&name, format!("line {}: not JSON: {e}", i + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Format::Json => {
            let value: Value = serde_json::from_str(&text).map_err(|e| {
                error(
                    &name,
                    format!("not JSON (line {}, column {}): {e}", e.line(), e.column()),
                )
            })?;
            let items = match value {
                Value::Array(items) => items,
                Value::Object(mut map) => match map.remove("rows").or_else(|| map.remove("data")) {
                    Some(Value::Array(items)) => items,
                    _ => {
                        return Err(error(
                            &name,
                            "a JSON dataset is an array of objects, or an object with `rows` or `data`",
                        ));
                    }
                },
                _ => return Err(error(&name, "a JSON dataset is an array of objects")),
            };
            items
                .into_iter()
                .enumerate()
                .map(|(i, value)| Row { line: i + 1, value })
                .collect()
        }
        Format::Csv => read_csv(&name, &text)?,
    };
    Ok(rows)
}

fn read_csv(name: &str, text: &str) -> Result<Vec<Row>, DatasetError> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| error(name, format!("no header row: {e}")))?
        .clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| error(name, format!("bad CSV: {e}")))?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let value = headers
            .iter()
            .zip(record.iter())
            .map(|(h, v)| (h.to_string(), Value::String(v.to_string())))
            .collect();
        rows.push(Row {
            line,
            value: Value::Object(value),
        });
    }
    Ok(rows)
}

/// Follows a dotted path (`a.b.0`) into a value.
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, part| match v {
        Value::Object(map) => map.get(part),
        Value::Array(items) => part.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

impl Dataset {
    /// Adds mappings the dataset does not set itself.
    pub fn default_fields(&mut self, defaults: &[(&str, &str)]) {
        for (field, source) in defaults {
            self.fields
                .entry(field.to_string())
                .or_insert_with(|| source.to_string());
        }
    }

    /// Builds a dataset from rows in memory (items written inline in a suite).
    pub fn inline(name: &str, rows: Vec<Value>) -> Dataset {
        Dataset {
            name: name.to_string(),
            rows: rows
                .into_iter()
                .enumerate()
                .map(|(i, value)| Row { line: i + 1, value })
                .collect(),
            fields: IndexMap::new(),
        }
    }

    /// The dataset field a benchmark field maps to (itself when not mapped).
    pub fn field_name<'a>(&'a self, field: &'a str) -> &'a str {
        self.fields.get(field).map_or(field, String::as_str)
    }

    /// A mapped field of `row`, or an error naming the row, the field and what is there.
    pub fn field<'a>(&self, row: &'a Row, field: &str) -> Result<&'a Value, DatasetError> {
        let source = self.field_name(field);
        lookup(&row.value, source).ok_or_else(|| {
            let present = match &row.value {
                Value::Object(map) => map.keys().cloned().collect::<Vec<_>>().join(", "),
                _ => "none (the row is not an object)".into(),
            };
            error(
                &self.name,
                format!(
                    "row {} has no field `{source}` (needed as `{field}`); its fields: {present}; map it with `fields: {{{field}: <name>}}`",
                    row.line
                ),
            )
        })
    }

    /// A mapped field as text (numbers are written out).
    pub fn text(&self, row: &Row, field: &str) -> Result<String, DatasetError> {
        match self.field(row, field)? {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(error(
                &self.name,
                format!(
                    "row {}: field `{}` is {}, not text",
                    row.line,
                    self.field_name(field),
                    kind(other)
                ),
            )),
        }
    }

    /// A mapped field as a list of strings (a JSON array, or a JSON array in a string).
    pub fn list(&self, row: &Row, field: &str) -> Result<Vec<String>, DatasetError> {
        let value = self.field(row, field)?;
        let parsed;
        let items = match value {
            Value::Array(items) => items,
            Value::String(s) => {
                parsed = serde_json::from_str::<Value>(s).ok();
                match &parsed {
                    Some(Value::Array(items)) => items,
                    _ => return Err(self.not_a_list(row, field, value)),
                }
            }
            other => return Err(self.not_a_list(row, field, other)),
        };
        items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(self.not_a_list(row, field, other)),
            })
            .collect()
    }

    fn not_a_list(&self, row: &Row, field: &str, value: &Value) -> DatasetError {
        error(
            &self.name,
            format!(
                "row {}: field `{}` is {}, not a list of strings",
                row.line,
                self.field_name(field),
                kind(value)
            ),
        )
    }

    /// Keeps `limit` rows: the first ones, or a seeded random sample kept in dataset order.
    pub fn select(&mut self, limit: Option<usize>, sample: bool, seed: u64) {
        let Some(limit) = limit.filter(|l| *l < self.rows.len()) else {
            return;
        };
        if sample {
            let mut indices: Vec<usize> = (0..self.rows.len()).collect();
            indices.shuffle(&mut StdRng::seed_from_u64(seed));
            indices.truncate(limit);
            indices.sort_unstable();
            let rows = std::mem::take(&mut self.rows);
            self.rows = indices.into_iter().map(|i| rows[i].clone()).collect();
        } else {
            self.rows.truncate(limit);
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// kitt's dataset cache: `<data dir>/datasets`.
pub fn cache_dir() -> PathBuf {
    crate::paths::data_dir().join("datasets")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn reads_the_three_formats_with_lines() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = write(
            dir.path(),
            "a.jsonl",
            "{\"q\":\"one\"}\n\n{\"q\":\"two\"}\n",
        );
        let rows = read_file(&jsonl, None).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].line, 3);
        let json = write(dir.path(), "a.json", "[{\"q\":1},{\"q\":2},{\"q\":3}]");
        assert_eq!(read_file(&json, None).unwrap().len(), 3);
        let csv = write(dir.path(), "a.csv", "q,a\n\"x, y\",1\nz,2\n");
        let rows = read_file(&csv, None).unwrap();
        assert_eq!(rows[0].value["q"], "x, y");
        assert_eq!(rows[1].line, 3);
        let other = write(dir.path(), "a.txt", "");
        assert!(
            read_file(&other, None)
                .unwrap_err()
                .message
                .contains("format")
        );
    }

    #[test]
    fn a_missing_mapped_field_names_row_field_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "a.jsonl",
            "{\"q\":\"1\"}\n{\"problem\":\"2\"}\n",
        );
        let ds = Dataset {
            name: p.display().to_string(),
            rows: read_file(&p, None).unwrap(),
            fields: IndexMap::from([("question".to_string(), "q".to_string())]),
        };
        assert_eq!(ds.text(&ds.rows[0], "question").unwrap(), "1");
        let e = ds.text(&ds.rows[1], "question").unwrap_err().to_string();
        assert!(
            e.contains("row 2") && e.contains("`q`") && e.contains("problem"),
            "{e}"
        );
    }

    #[test]
    fn dotted_paths_and_string_lists() {
        let v: Value = serde_json::json!({"mc": {"choices": ["a", "b"]}, "s": "[\"x\",\"y\"]"});
        assert_eq!(lookup(&v, "mc.choices.1").unwrap(), "b");
        let ds = Dataset {
            name: "t".into(),
            rows: vec![Row { line: 1, value: v }],
            fields: IndexMap::new(),
        };
        assert_eq!(ds.list(&ds.rows[0], "s").unwrap(), ["x", "y"]);
        assert!(ds.list(&ds.rows[0], "mc").is_err());
    }

    #[test]
    fn limit_takes_the_first_rows_or_a_seeded_sample() {
        let rows: Vec<Row> = (0..100)
            .map(|i| Row {
                line: i + 1,
                value: serde_json::json!(i),
            })
            .collect();
        let mut ds = Dataset {
            name: "t".into(),
            rows: rows.clone(),
            fields: IndexMap::new(),
        };
        ds.select(Some(5), false, 0);
        assert_eq!(
            ds.rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        let sample = |seed| {
            let mut ds = Dataset {
                name: "t".into(),
                rows: rows.clone(),
                fields: IndexMap::new(),
            };
            ds.select(Some(10), true, seed);
            ds.rows.iter().map(|r| r.line).collect::<Vec<_>>()
        };
        assert_eq!(sample(1), sample(1));
        assert_ne!(sample(1), sample(2));
        assert!(sample(1).windows(2).all(|w| w[0] < w[1]));
    }
}
