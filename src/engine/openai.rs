//! The OpenAI-compatible wire format: request bodies kitt sends and the response and chunk
//! shapes it reads (`/v1/chat/completions` and `/v1/completions`), lenient where servers differ.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::suite::model::Sampling;

/// Which OpenAI-compatible endpoint a request goes to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `/v1/chat/completions`
    #[default]
    Chat,
    /// `/v1/completions`
    Completions,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
        }
    }
}

/// A request to generate text.
#[derive(Debug, Clone, Default)]
pub struct GenerationRequest {
    pub endpoint: Endpoint,
    /// The text to continue (completions) or the user's newest message (chat).
    pub prompt: String,
    /// Chat only: the conversation before `prompt`, oldest first.
    pub history: Vec<ChatMessage>,
    pub stream: bool,
    pub sampling: Sampling,
    /// An OpenAI `response_format` (a JSON schema the answer must follow), sent as given.
    pub response_format: Option<Value>,
    /// Chat only: OpenAI `tools` (functions the model may call), sent as given.
    pub tools: Option<Value>,
    /// Chat only: OpenAI `tool_choice` (`auto`, `required`, or one function), sent as given.
    pub tool_choice: Option<Value>,
}

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

impl GenerationRequest {
    /// A streaming chat request with default sampling.
    pub fn chat(prompt: impl Into<String>) -> Self {
        GenerationRequest {
            prompt: prompt.into(),
            stream: true,
            ..GenerationRequest::default()
        }
    }
}

/// The JSON body of a request, with engine-specific extra fields merged in last.
pub fn request_body(req: &GenerationRequest, model: &str, extra: &Map<String, Value>) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    match req.endpoint {
        Endpoint::Chat => {
            let mut messages: Vec<Value> = req.history.iter().map(|m| json!(m)).collect();
            messages.push(json!({"role": "user", "content": req.prompt}));
            body.insert("messages".into(), Value::Array(messages));
        }
        Endpoint::Completions => {
            body.insert("prompt".into(), json!(req.prompt));
        }
    }
    body.insert("stream".into(), json!(req.stream));
    if req.stream {
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    let s = &req.sampling;
    if let Some(v) = s.max_tokens {
        body.insert("max_tokens".into(), json!(v));
    }
    if let Some(v) = s.temperature {
        body.insert("temperature".into(), json!(v));
    }
    if let Some(v) = s.top_p {
        body.insert("top_p".into(), json!(v));
    }
    if let Some(v) = s.seed {
        body.insert("seed".into(), json!(v));
    }
    if !s.stop.is_empty() {
        body.insert("stop".into(), json!(s.stop));
    }
    if let Some(format) = &req.response_format {
        body.insert("response_format".into(), format.clone());
    }
    if let Some(tools) = &req.tools {
        body.insert("tools".into(), tools.clone());
    }
    if let Some(choice) = &req.tool_choice {
        body.insert("tool_choice".into(), choice.clone());
    }
    for (k, v) in extra {
        body.insert(k.clone(), v.clone());
    }
    Value::Object(body)
}

/// One streamed chunk, or a whole non-streamed response (same shape with `message`).
#[derive(Debug, Default, Deserialize)]
pub struct Chunk {
    #[serde(default)]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
    /// An error reported inside the stream (vLLM, SGLang, TGI and llama.cpp all do this).
    #[serde(default)]
    pub error: Option<Value>,
    /// llama.cpp's own timing report, sent with the usage chunk.
    #[serde(default)]
    pub timings: Option<ServerTimings>,
}

/// llama.cpp's `timings`: prompt processing and generation as the server measured them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, serde::Serialize)]
pub struct ServerTimings {
    #[serde(default)]
    pub prompt_n: Option<u64>,
    #[serde(default)]
    pub prompt_ms: Option<f64>,
    #[serde(default)]
    pub predicted_n: Option<u64>,
    #[serde(default)]
    pub predicted_ms: Option<f64>,
    /// Prompt tokens served from the slot's cache, not processed again.
    #[serde(default)]
    pub cache_n: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub delta: Option<Delta>,
    #[serde(default)]
    pub message: Option<Delta>,
    /// `/v1/completions` text.
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// A chat delta (streaming) or message (non-streaming).
#[derive(Debug, Default, Deserialize)]
pub struct Delta {
    #[serde(default)]
    pub content: Option<String>,
    /// Reasoning text: `reasoning_content` (vLLM, SGLang, llama.cpp, DeepSeek) or `reasoning`.
    #[serde(default, alias = "reasoning")]
    pub reasoning_content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<Value>>,
}

/// Token counts as the server reports them.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    /// OpenAI's breakdown of the prompt (vLLM sends it with `--enable-prompt-tokens-details`).
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// The part of a prompt a server served from its cache.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

/// The human message inside an error object or body: `{"error": {"message": ...}}`,
/// `{"error": "..."}`, `{"message": ...}` or `{"detail": ...}`.
pub fn error_message(value: &Value) -> Option<String> {
    let inner = value.get("error").unwrap_or(value);
    if let Some(s) = inner.as_str() {
        return Some(s.to_string());
    }
    for key in ["message", "detail", "msg"] {
        if let Some(s) = inner.get(key).and_then(Value::as_str) {
            return Some(s.to_string());
        }
    }
    value
        .get("error")
        .map(|e| e.to_string())
        .or_else(|| value.get("detail").map(|d| d.to_string()))
}

/// A short, readable summary of an error body: the JSON error message, an HTML page's
/// title and text, or the first characters of anything else.
pub fn summarize_body(body: &str) -> String {
    if let Ok(value) = serde_json::from_str::<Value>(body)
        && let Some(message) = error_message(&value)
    {
        return message;
    }
    let trimmed = body.trim_start();
    if trimmed.starts_with('<') {
        let text = strip_tags(trimmed);
        return truncate(&text, 200);
    }
    truncate(body.trim(), 200)
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_summarized() {
        assert_eq!(
            summarize_body(r#"{"error":{"code":400,"message":"bad messages"}}"#),
            "bad messages"
        );
        assert_eq!(summarize_body(r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(
            summarize_body(
                "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
            ),
            "502 Bad Gateway 502 Bad Gateway"
        );
    }
}
