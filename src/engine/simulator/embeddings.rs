//! The simulator's `/v1/embeddings`: one vector per input, a fixed function of its text
//! (`embedding_dim` values, unit length), answered after `ttft` plus `prefill` per 1,000 input
//! tokens (words) in one of its slots. Embedding requests count nowhere on `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Shared, error_response, first_token_delay};

/// The vector of `text`: `dim` values from its hash, scaled to unit length.
pub fn vector(text: &str, dim: usize) -> Vec<f64> {
    let seed = crate::seed::of_text(text);
    let raw: Vec<f64> = (0..dim as u64)
        .map(|k| crate::seed::unit(crate::seed::mix(seed, k)) - 0.5)
        .collect();
    let norm = raw.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
    raw.into_iter().map(|v| v / norm).collect()
}

/// The inputs of a request body: a string or a list of strings.
fn inputs(body: &[u8]) -> Result<Vec<String>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    match v.get("input") {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| "the simulator embeds strings only, not token ids".to_string())
            })
            .collect(),
        _ => Err("Expected 'input' to be a string or a non-empty list of strings".into()),
    }
}

pub async fn embeddings(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let inputs = match inputs(&body) {
        Ok(i) => i,
        Err(msg) => return error_response(StatusCode::BAD_REQUEST, &msg, "invalid_request_error"),
    };
    let tokens: Vec<u64> = inputs
        .iter()
        .map(|i| i.split_whitespace().count() as u64)
        .collect();
    if let Some(long) = tokens.iter().find(|t| **t > s.config.context) {
        return error_response(
            StatusCode::BAD_REQUEST,
            &format!(
                "an input has {long} tokens; the context is {}",
                s.config.context
            ),
            "invalid_request_error",
        );
    }
    let Ok(_slot) = s.slots.acquire().await else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down",
            "server_error",
        );
    };
    let total: u64 = tokens.iter().sum();
    s.clock
        .sleep_until(Instant::now() + first_token_delay(&s.config, total))
        .await;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            json!({"object": "embedding", "index": index,
                   "embedding": vector(text, s.config.embedding_dim)})
        })
        .collect();
    axum::Json(
        json!({"object": "list", "model": s.config.model, "data": data,
                      "usage": {"prompt_tokens": total, "total_tokens": total}}),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_unit_length_and_a_function_of_the_text() {
        let a = vector("river road", 8);
        assert_eq!(a.len(), 8);
        assert!((a.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(a, vector("river road", 8));
        assert_ne!(a, vector("river roads", 8));
    }

    #[test]
    fn inputs_are_a_string_or_strings() {
        assert_eq!(inputs(br#"{"input": "a b"}"#).unwrap(), ["a b"]);
        assert_eq!(inputs(br#"{"input": ["a", "b c"]}"#).unwrap(), ["a", "b c"]);
        assert!(
            inputs(br#"{"input": [1, 2]}"#)
                .unwrap_err()
                .contains("token ids")
        );
        assert!(inputs(br#"{"input": []}"#).is_err());
        assert!(inputs(b"{").unwrap_err().contains("not JSON"));
    }
}
