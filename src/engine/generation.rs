//! One generation: what kitt asks for and what it measured, and the accumulator that turns
//! timestamped chunks into a result.

use std::time::Duration;

use serde::Serialize;

pub use super::openai::{ChatMessage, ChatRole, Endpoint, GenerationRequest};
use super::openai::{Chunk, ServerTimings, Usage};

/// Where a result's token counts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CountSource {
    /// The server's `usage` object.
    ServerUsage,
    /// Counted chunks carrying text: exact only when the server sends one token per chunk.
    ChunkCount,
}

/// What one generation produced and how long each part took.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationResult {
    /// Visible output text.
    pub text: String,
    /// Reasoning text, when the model produced any.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reasoning: String,
    /// Tool-call deltas, as the server sent them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<serde_json::Value>,
    pub finish_reason: Option<String>,
    pub prompt_tokens: Option<u64>,
    /// Prompt tokens the server served from its cache, when it says (OpenAI's
    /// `usage.prompt_tokens_details.cached_tokens`, llama.cpp's `timings.cache_n`).
    pub cached_prompt_tokens: Option<u64>,
    pub completion_tokens: u64,
    pub count_source: CountSource,
    /// Time to the first token of any kind, reasoning and tool calls included.
    #[serde(with = "duration_ms_opt")]
    pub ttft: Option<Duration>,
    /// Time to the first visible output (content or a tool call).
    #[serde(with = "duration_ms_opt")]
    pub ttfo: Option<Duration>,
    /// Arrival of each chunk that carried output, since the request was sent.
    #[serde(with = "duration_ms_vec")]
    pub chunk_times: Vec<Duration>,
    /// Request sent to the last byte of the response.
    #[serde(with = "duration_ms")]
    pub e2e: Duration,
    /// Whether the stream ended with `data: [DONE]`.
    pub done_marker: bool,
    /// `:` keep-alive comments received.
    pub keepalives: u64,
    /// The server's own timing report, when it sends one (llama.cpp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_timings: Option<ServerTimings>,
}

impl GenerationResult {
    /// Gaps between consecutive output chunks.
    pub fn itl(&self) -> impl Iterator<Item = Duration> + '_ {
        self.chunk_times
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
    }

    /// Time per output token after the first: (e2e − ttft) / (tokens − 1).
    pub fn tpot(&self) -> Option<Duration> {
        let ttft = self.ttft?;
        let n = self.completion_tokens.checked_sub(1).filter(|n| *n > 0)?;
        let n = u32::try_from(n).ok()?;
        Some(self.e2e.saturating_sub(ttft) / n)
    }
}

/// One function call an answer made, its streamed pieces put together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ToolCall {
    pub name: String,
    /// The arguments as the server sent them (JSON text, when it keeps to the format).
    pub arguments: String,
}

impl GenerationResult {
    /// The answer's tool calls, assembled from their pieces: pieces with the same `index`
    /// are one call (names and arguments concatenated); a piece without an index continues
    /// the last call unless it carries an `id`, which starts a new one.
    pub fn function_calls(&self) -> Vec<ToolCall> {
        let mut calls: Vec<(Option<u64>, ToolCall)> = Vec::new();
        for piece in &self.tool_calls {
            let index = piece.get("index").and_then(serde_json::Value::as_u64);
            let starts = piece.get("id").is_some_and(|id| !id.is_null());
            let at = match index {
                Some(i) => calls.iter().position(|(k, _)| *k == Some(i)),
                None if starts => None,
                None => calls.len().checked_sub(1),
            };
            let at = at.unwrap_or_else(|| {
                calls.push((index, ToolCall::default()));
                calls.len() - 1
            });
            let call = &mut calls[at].1;
            let text = |key: &str| piece.pointer(key).and_then(serde_json::Value::as_str);
            if let Some(name) = text("/function/name") {
                call.name.push_str(name);
            }
            match piece.pointer("/function/arguments") {
                Some(serde_json::Value::String(a)) => call.arguments.push_str(a),
                // Some servers send the arguments as an object rather than its text.
                Some(v @ serde_json::Value::Object(_)) => call.arguments.push_str(&v.to_string()),
                _ => {}
            }
        }
        calls.into_iter().map(|(_, c)| c).collect()
    }
}

/// Builds a result chunk by chunk, each with the time it arrived.
#[derive(Debug, Default)]
pub struct Accumulator {
    text: String,
    reasoning: String,
    tool_calls: Vec<serde_json::Value>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    timings: Option<ServerTimings>,
    ttft: Option<Duration>,
    ttfo: Option<Duration>,
    chunk_times: Vec<Duration>,
    done_marker: bool,
}

impl Accumulator {
    /// Takes one parsed chunk that arrived `at` after the request was sent.
    pub fn chunk(&mut self, chunk: Chunk, at: Duration) {
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        if let Some(timings) = chunk.timings {
            self.timings = Some(timings);
        }
        let mut any_token = false;
        let mut visible = false;
        for choice in chunk.choices {
            // TGI's completions stream sends `finish_reason: ""` on every unfinished chunk.
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                self.finish_reason = Some(reason);
            }
            if let Some(text) = choice.text.filter(|t| !t.is_empty()) {
                self.text.push_str(&text);
                any_token = true;
                visible = true;
            }
            if let Some(delta) = choice.delta.or(choice.message) {
                if let Some(r) = delta.reasoning_content.filter(|r| !r.is_empty()) {
                    self.reasoning.push_str(&r);
                    any_token = true;
                }
                if let Some(c) = delta.content.filter(|c| !c.is_empty()) {
                    self.text.push_str(&c);
                    any_token = true;
                    visible = true;
                }
                if let Some(calls) = delta.tool_calls.filter(|c| !c.is_empty()) {
                    self.tool_calls.extend(calls);
                    any_token = true;
                    visible = true;
                }
            }
        }
        if any_token {
            self.ttft.get_or_insert(at);
            self.chunk_times.push(at);
        }
        if visible {
            self.ttfo.get_or_insert(at);
        }
    }

    /// Records the `[DONE]` marker.
    pub fn done(&mut self) {
        self.done_marker = true;
    }

    pub fn done_marker(&self) -> bool {
        self.done_marker
    }

    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    /// Output chunks received so far.
    pub fn chunks(&self) -> usize {
        self.chunk_times.len()
    }

    /// The finished result; `e2e` is when the last byte arrived.
    pub fn finish(self, e2e: Duration, keepalives: u64) -> GenerationResult {
        let server_count = self.usage.and_then(|u| u.completion_tokens);
        let (completion_tokens, count_source) = match server_count {
            Some(n) => (n, CountSource::ServerUsage),
            None => (self.chunk_times.len() as u64, CountSource::ChunkCount),
        };
        GenerationResult {
            text: self.text,
            reasoning: self.reasoning,
            tool_calls: self.tool_calls,
            finish_reason: self.finish_reason,
            prompt_tokens: self.usage.and_then(|u| u.prompt_tokens),
            cached_prompt_tokens: self
                .usage
                .and_then(|u| u.prompt_tokens_details)
                .and_then(|d| d.cached_tokens)
                .or_else(|| self.timings.and_then(|t| t.cache_n)),
            completion_tokens,
            count_source,
            ttft: self.ttft,
            ttfo: self.ttfo,
            chunk_times: self.chunk_times,
            e2e,
            done_marker: self.done_marker,
            keepalives,
            server_timings: self.timings,
        }
    }
}

mod duration_ms {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1e3)
    }
}

mod duration_ms_opt {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_secs_f64() * 1e3)),
            None => s.serialize_none(),
        }
    }
}

mod duration_ms_vec {
    use serde::ser::SerializeSeq;
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for d in v {
            seq.serialize_element(&(d.as_secs_f64() * 1e3))?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(pieces: Vec<serde_json::Value>) -> GenerationResult {
        Accumulator {
            tool_calls: pieces,
            ..Accumulator::default()
        }
        .finish(Duration::ZERO, 0)
    }

    #[test]
    fn streamed_tool_call_pieces_are_put_together_by_index() {
        let r = result(vec![
            json!({"index": 0, "id": "a", "type": "function", "function": {"name": "get", "arguments": ""}}),
            json!({"index": 1, "id": "b", "type": "function", "function": {"name": "put", "arguments": "{}"}}),
            json!({"index": 0, "function": {"arguments": "{\"x\":"}}),
            json!({"index": 0, "function": {"arguments": " 1}"}}),
        ]);
        let calls = r.function_calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].name.as_str(), calls[0].arguments.as_str()),
            ("get", "{\"x\": 1}")
        );
        assert_eq!(
            (calls[1].name.as_str(), calls[1].arguments.as_str()),
            ("put", "{}")
        );
        // Without indexes: an id starts a call, the rest continue it; object arguments are
        // written out.
        let r = result(vec![
            json!({"id": "a", "function": {"name": "get", "arguments": "{"}}),
            json!({"function": {"arguments": "}"}}),
            json!({"id": "b", "function": {"name": "put", "arguments": {"y": 2}}}),
        ]);
        let calls = r.function_calls();
        assert_eq!(calls[0].arguments, "{}");
        assert_eq!(calls[1].arguments, "{\"y\":2}");
    }
}
