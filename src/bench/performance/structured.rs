//! `structured_output`: chat requests whose `response_format` is a JSON schema; besides
//! latency, the share of answers that parse as JSON and the share a validator accepts.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bench::{BenchContext, BenchError, Outcome, params};
use crate::engine::generation::{Endpoint, GenerationRequest};

/// Params of `structured_output`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StructuredParams {
    /// The JSON Schema every answer must follow (sent as `response_format`); by default an
    /// object with a `color` of three and a whole `count`.
    #[serde(default = "default_schema")]
    pub schema: Value,
    /// What each request asks.
    #[serde(default = "default_prompt")]
    pub prompt: String,
    /// Requests to send.
    #[serde(default = "default_requests")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub requests: u64,
    /// Requests in flight.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 10_000))]
    pub concurrency: u32,
    /// Most tokens an answer may take; one cut short does not parse.
    #[serde(default = "default_max_tokens")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_tokens: u32,
}

fn default_schema() -> Value {
    json!({"type": "object", "properties": {
        "color": {"type": "string", "enum": ["red", "green", "blue"]},
        "count": {"type": "integer", "minimum": 0}},
        "required": ["color", "count"], "additionalProperties": false})
}
fn default_prompt() -> String {
    "Pick a color and a count. Answer in JSON.".into()
}
pub(super) fn default_requests() -> u64 {
    20
}
pub(super) fn default_concurrency() -> u32 {
    1
}
pub(super) fn default_max_tokens() -> u32 {
    128
}

/// The metrics `structured_output` reports beside [`super::CALL_METRICS`] and
/// [`super::ANSWER_METRICS`] (name, unit,
/// whether higher is better).
pub const METRICS: [(&str, &str, bool); 2] = [
    ("json_parse_ratio", "ratio", true),
    ("schema_valid_ratio", "ratio", true),
];

/// Answers that failed validation, kept as examples.
const EXAMPLES: usize = super::ERROR_EXAMPLES;

/// Whether an answer parsed and validated, and why not.
pub(super) fn judge(validator: &jsonschema::Validator, text: &str) -> (bool, bool, Option<String>) {
    match serde_json::from_str::<Value>(text) {
        Err(e) => (false, false, Some(format!("not JSON ({e})"))),
        Ok(v) => match validator.iter_errors(&v).next() {
            None => (true, true, None),
            Some(e) => (
                true,
                false,
                Some(format!("at `{}`: {e}", e.instance_path())),
            ),
        },
    }
}

pub async fn execute(ctx: &BenchContext<'_>, params: &Value) -> Result<Outcome, BenchError> {
    let p: StructuredParams = params::parse(params)?;
    let validator = jsonschema::validator_for(&p.schema).map_err(|e| BenchError::Params {
        message: format!("`schema` is no JSON Schema kitt can check answers with: {e}"),
        pointer: Some("/schema".into()),
    })?;
    let format = json!({"type": "json_schema",
                        "json_schema": {"name": "answer", "schema": p.schema, "strict": true}});
    ctx.say(&format!(
        "{} structured-output requests, {} in flight",
        p.requests, p.concurrency
    ));
    let request = |i: u64| {
        let mut sampling = ctx.sampling.clone();
        sampling.max_tokens = Some(p.max_tokens);
        GenerationRequest {
            endpoint: Endpoint::Chat,
            prompt: format!("{:08x}-{i}: {}", ctx.salt as u32, p.prompt),
            stream: true,
            sampling,
            response_format: Some(format.clone()),
            ..GenerationRequest::default()
        }
    };
    let (mut parsed, mut valid) = (0u64, 0u64);
    let mut invalid: Vec<Value> = Vec::new();
    let answers = super::answer_each(ctx, p.requests, p.concurrency, request, |r| {
        let (json_ok, schema_ok, why) = judge(&validator, &r.text);
        parsed += u64::from(json_ok);
        valid += u64::from(schema_ok);
        if let Some(why) = why
            && invalid.len() < EXAMPLES
        {
            let answer: String = r.text.chars().take(300).collect();
            invalid.push(json!({"answer": answer, "why": why,
                                "finish_reason": r.finish_reason}));
        }
    })
    .await;
    let ok = answers.calls.ok;
    let mut outcome = answers.outcome(p.requests);
    if ok > 0 {
        outcome.set("json_parse_ratio", parsed as f64 / ok as f64);
        outcome.set("schema_valid_ratio", valid as f64 / ok as f64);
    }
    if !invalid.is_empty() {
        outcome.detail("invalid_answers", invalid);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_by_parse_then_schema() {
        let validator = jsonschema::validator_for(&default_schema()).unwrap();
        assert_eq!(
            judge(&validator, r#"{"color": "red", "count": 2}"#),
            (true, true, None)
        );
        let (parsed, valid, why) = judge(&validator, r#"{"color": "pink", "count": 2}"#);
        assert!(parsed && !valid && why.unwrap().contains("/color"));
        let (parsed, valid, why) = judge(&validator, r#"{"color": "re"#);
        assert!(!parsed && !valid && why.unwrap().starts_with("not JSON"));
    }
}
