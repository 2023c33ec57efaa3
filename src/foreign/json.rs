//! JSON as Python's `json.dump` writes it: bare `NaN`, `Infinity` and `-Infinity` (which
//! strict JSON refuses) read as null, and a file of one document or one per line
//! (vLLM's `--append-result`).

use serde_json::Value;

/// The documents in `text`, each with the line it starts on.
pub fn documents(text: &str) -> Result<Vec<(usize, Value)>, String> {
    let cleaned = python_constants_to_null(text);
    match serde_json::from_str::<Value>(&cleaned) {
        Ok(v) => Ok(vec![(1, v)]),
        Err(whole) => {
            let mut docs = Vec::new();
            for (i, line) in cleaned.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let v = serde_json::from_str(line).map_err(|e| {
                    if docs.is_empty() {
                        format!("line {}, column {}: {whole}", whole.line(), whole.column())
                    } else {
                        format!("line {}, column {}: {e}", i + 1, e.column())
                    }
                })?;
                docs.push((i + 1, v));
            }
            if docs.is_empty() {
                return Err("the file holds no JSON".into());
            }
            Ok(docs)
        }
    }
}

/// `NaN`, `Infinity` and `-Infinity` outside strings become `null` (padded to keep later columns where the word is longer).
fn python_constants_to_null(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else {
            let word = ["-Infinity", "Infinity", "NaN"]
                .into_iter()
                .find(|w| rest.starts_with(w));
            if let Some(w) = word {
                out.push_str("null");
                out.push_str(&" ".repeat(w.len().saturating_sub(4)));
                rest = &rest[w.len()..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_constants_read_as_null_outside_strings() {
        let docs = documents(r#"{"a": NaN, "b": -Infinity, "c": "NaN Infinity", "d": [Infinity]}"#)
            .unwrap();
        assert_eq!(docs.len(), 1);
        let v = &docs[0].1;
        assert!(v["a"].is_null() && v["b"].is_null() && v["d"][0].is_null());
        assert_eq!(v["c"], "NaN Infinity");
    }

    #[test]
    fn one_document_per_line_and_errors_with_their_line() {
        let docs = documents("{\"a\": 1}\n{\"a\": 2}\n").unwrap();
        assert_eq!(docs.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [1, 2]);
        let e = documents("{\"a\": 1}\n{\"a\": }\n").unwrap_err();
        assert!(e.starts_with("line 2, column 7"), "{e}");
        assert!(documents("\n\n").is_err());
    }
}
