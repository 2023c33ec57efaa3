//! `tool_calls`: chat requests that declare `tools`; besides latency, the share of answers
//! that call a tool, and the share whose every call names a declared tool with arguments
//! its parameters schema accepts.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::structured::judge;
use crate::bench::{BenchContext, BenchError, Outcome, params};
use crate::engine::generation::{Endpoint, GenerationRequest, ToolCall};

/// Params of `tool_calls`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolCallsParams {
    /// OpenAI function tools (`[{type: function, function: {name, description, parameters}}]`);
    /// by default one `get_weather(city, unit)`.
    #[serde(default = "default_tools")]
    pub tools: Vec<Value>,
    /// OpenAI `tool_choice`: `auto` (the default), `required`, `none`, or
    /// `{type: function, function: {name}}`.
    #[serde(default)]
    pub tool_choice: Option<Value>,
    /// What each request asks.
    #[serde(default = "default_prompt")]
    pub prompt: String,
    /// Requests to send.
    #[serde(default = "super::structured::default_requests")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub requests: u64,
    /// Requests in flight.
    #[serde(default = "super::structured::default_concurrency")]
    #[schemars(range(min = 1, max = 10_000))]
    pub concurrency: u32,
    /// Most tokens an answer may take; arguments cut short do not parse.
    #[serde(default = "super::structured::default_max_tokens")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_tokens: u32,
}

fn default_tools() -> Vec<Value> {
    vec![json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "minLength": 1},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"], "additionalProperties": false}}})]
}
fn default_prompt() -> String {
    "What is the weather in Paris, in celsius? Call the tool.".into()
}

/// The metrics `tool_calls` reports beside [`super::CALL_METRICS`] and
/// [`super::ANSWER_METRICS`] (name, unit, whether higher is better).
pub const METRICS: [(&str, &str, bool); 4] = [
    ("tool_call_ratio", "ratio", true),
    ("valid_tool_call_ratio", "ratio", true),
    ("arguments_parse_ratio", "ratio", true),
    ("tool_calls_mean", "calls", true),
];

/// A declared tool: its name and the validator of its parameters.
struct Declared {
    name: String,
    validator: jsonschema::Validator,
}

/// Reads the declared tools, refusing one without a name or with a schema kitt cannot check.
fn declared(tools: &[Value]) -> Result<Vec<Declared>, BenchError> {
    if tools.is_empty() {
        return Err(BenchError::Params {
            message: "`tools` is empty: declare at least one function".into(),
            pointer: Some("/tools".into()),
        });
    }
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let at = |message: String, key: &str| BenchError::Params {
                message,
                pointer: Some(format!("/tools/{i}{key}")),
            };
            let name = tool
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    at(
                        "a tool needs `function: {name, parameters}` (OpenAI's function tools)"
                            .into(),
                        "",
                    )
                })?;
            let schema = tool
                .pointer("/function/parameters")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            let validator = jsonschema::validator_for(&schema).map_err(|e| {
                at(
                    format!("the parameters of `{name}` are no JSON Schema kitt can check: {e}"),
                    "/function/parameters",
                )
            })?;
            Ok(Declared {
                name: name.to_string(),
                validator,
            })
        })
        .collect()
}

/// Whether a call names a declared tool with arguments that parse and validate, and why not.
fn check(tools: &[Declared], call: &ToolCall) -> (bool, bool, Option<String>) {
    let Some(tool) = tools.iter().find(|t| t.name == call.name) else {
        let parses = serde_json::from_str::<Value>(&call.arguments).is_ok();
        return (
            parses,
            false,
            Some(format!("calls `{}`, which is not declared", call.name)),
        );
    };
    judge(&tool.validator, &call.arguments)
}

pub async fn execute(ctx: &BenchContext<'_>, params: &Value) -> Result<Outcome, BenchError> {
    let p: ToolCallsParams = params::parse(params)?;
    let tools = declared(&p.tools)?;
    ctx.say(&format!(
        "{} requests declaring {} tools, {} in flight",
        p.requests,
        tools.len(),
        p.concurrency
    ));
    let request = |i: u64| {
        let mut sampling = ctx.sampling.clone();
        sampling.max_tokens = Some(p.max_tokens);
        GenerationRequest {
            endpoint: Endpoint::Chat,
            prompt: format!("{:08x}-{i}: {}", ctx.salt as u32, p.prompt),
            stream: true,
            sampling,
            tools: Some(Value::Array(p.tools.clone())),
            tool_choice: p.tool_choice.clone(),
            ..GenerationRequest::default()
        }
    };
    let (mut calling, mut valid, mut parsed, mut tool_calls) = (0u64, 0u64, 0u64, 0u64);
    let mut invalid: Vec<Value> = Vec::new();
    let answers = super::answer_each(ctx, p.requests, p.concurrency, request, |r| {
        let made = r.function_calls();
        tool_calls += made.len() as u64;
        let mut why = None;
        let mut all_valid = !made.is_empty();
        for call in &made {
            let (parses, validates, reason) = check(&tools, call);
            parsed += u64::from(parses);
            all_valid &= validates;
            why = why.or(reason);
        }
        if made.is_empty() {
            why = Some("no tool call".to_string());
        } else {
            calling += 1;
        }
        valid += u64::from(all_valid);
        if let Some(why) = why.filter(|_| invalid.len() < super::ERROR_EXAMPLES) {
            let text: String = r.text.chars().take(300).collect();
            invalid.push(json!({"calls": made, "text": text, "why": why,
                                "finish_reason": r.finish_reason}));
        }
    })
    .await;
    let ok = answers.calls.ok;
    let mut outcome = answers.outcome(p.requests);
    if ok > 0 {
        outcome.set("tool_call_ratio", calling as f64 / ok as f64);
        outcome.set("valid_tool_call_ratio", valid as f64 / ok as f64);
        outcome.set("tool_calls_mean", tool_calls as f64 / ok as f64);
    }
    if tool_calls > 0 {
        outcome.set("arguments_parse_ratio", parsed as f64 / tool_calls as f64);
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
    fn calls_are_checked_against_the_declared_tools() {
        let tools = declared(&default_tools()).unwrap();
        let call = |name: &str, arguments: &str| ToolCall {
            name: name.into(),
            arguments: arguments.into(),
        };
        assert_eq!(
            check(
                &tools,
                &call("get_weather", r#"{"city": "Paris", "unit": "celsius"}"#)
            ),
            (true, true, None)
        );
        let (parses, valid, why) = check(&tools, &call("get_weather", r#"{"city": "Paris"}"#));
        assert!(parses && !valid && why.unwrap().contains("unit"));
        let (parses, valid, why) = check(&tools, &call("get_time", "{}"));
        assert!(parses && !valid && why.unwrap().contains("not declared"));
        let (parses, _, _) = check(&tools, &call("get_weather", r#"{"city": "#));
        assert!(!parses);
        let no_name = declared(&[json!({"type": "function"})]).err().unwrap();
        assert!(no_name.to_string().contains("needs `function"), "{no_name}");
    }
}
