//! The simulator engine: an OpenAI-compatible server inside kitt's own process, on a loopback
//! port, whose timing is set by its config. It generates filler words, not language: it is
//! for trying kitt without a GPU and for testing suites and kitt itself, where a server with
//! known timing is what is needed.
//!
//! Timing model: a request waits for one of `max_concurrency` slots (a queue, as on a real
//! server), then its first token comes `ttft` (plus `prefill` per 1,000 prompt tokens) after
//! it got the slot and each further token `itl` after the previous one. Answers are
//! `output_tokens` long (fixed, or drawn uniformly from 50–150 % or exponentially around
//! it), capped by `max_tokens`; with `ignore_eos` they are exactly `max_tokens`. Prompt
//! tokens are counted as whitespace-separated words; prompts longer than `context` get HTTP
//! 400, and `/v1/models` reports `context` as `max_model_len`. A fraction `error_rate` of
//! requests gets HTTP 500. The seed fixes lengths and errors. `/v1/completions` with `echo`
//! and `logprobs` returns the prompt with a fixed log-probability per word
//! (`word_logprob`), so log-likelihood scoring can be tested against known values.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;

use crate::suite::model::Duration as SuiteDuration;

/// The simulator's settings (`config:` of a `simulator` engine).
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub ttft: Duration,
    pub itl: Duration,
    pub output_tokens: u32,
    pub distribution: LengthDistribution,
    pub max_concurrency: u32,
    pub error_rate: f64,
    pub seed: u64,
    /// The model name it reports.
    pub model: String,
    /// Extra time to first token per 1,000 prompt tokens.
    pub prefill: Duration,
    /// Context length in tokens.
    pub context: u64,
    /// The text of a beginning-of-sequence token its scored echoes start with, as vLLM's do
    /// for tokenizers that add one (offsets then count it).
    pub bos_token: Option<String>,
}

/// How answer lengths vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthDistribution {
    Fixed,
    Uniform,
    Exponential,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            ttft: Duration::from_millis(50),
            itl: Duration::from_millis(10),
            output_tokens: 64,
            distribution: LengthDistribution::Fixed,
            max_concurrency: 64,
            error_rate: 0.0,
            seed: 0,
            model: "simulator".into(),
            prefill: Duration::ZERO,
            context: 8192,
            bos_token: None,
        }
    }
}

impl SimConfig {
    /// Reads `config:` (already checked against the engine's schema by `kitt validate`).
    pub fn from_config(config: &Map<String, Value>, model: Option<&str>) -> Result<Self, String> {
        let mut c = SimConfig::default();
        let duration = |key: &str| -> Result<Option<Duration>, String> {
            match config.get(key).and_then(Value::as_str) {
                Some(text) => SuiteDuration::parse(text)
                    .map(|d| Some(d.0))
                    .map_err(|e| format!("config.{key}: {e}")),
                None => Ok(None),
            }
        };
        if let Some(d) = duration("ttft")? {
            c.ttft = d;
        }
        if let Some(d) = duration("itl")? {
            c.itl = d;
        }
        if let Some(d) = duration("prefill")? {
            c.prefill = d;
        }
        if let Some(n) = config.get("context").and_then(Value::as_u64) {
            c.context = n.max(16);
        }
        if let Some(n) = config.get("output_tokens").and_then(Value::as_u64) {
            c.output_tokens = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        }
        if let Some(n) = config.get("max_concurrency").and_then(Value::as_u64) {
            c.max_concurrency = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        }
        if let Some(r) = config.get("error_rate").and_then(Value::as_f64) {
            c.error_rate = r.clamp(0.0, 1.0);
        }
        if let Some(s) = config.get("seed").and_then(Value::as_u64) {
            c.seed = s;
        }
        c.distribution = match config.get("output_distribution").and_then(Value::as_str) {
            None | Some("fixed") => LengthDistribution::Fixed,
            Some("uniform") => LengthDistribution::Uniform,
            Some("exponential") => LengthDistribution::Exponential,
            Some(other) => return Err(format!("config.output_distribution: unknown `{other}`")),
        };
        if let Some(bos) = config.get("bos_token").and_then(Value::as_str) {
            c.bos_token = Some(bos.to_string());
        }
        if let Some(m) = model {
            c.model = m.to_string();
        }
        Ok(c)
    }
}

struct Shared {
    config: SimConfig,
    rng: Mutex<StdRng>,
    slots: Semaphore,
}

/// A running simulator; stops when stopped or dropped.
#[derive(Debug)]
pub struct Simulator {
    port: u16,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Simulator {
    /// Starts serving on `127.0.0.1` at a free port.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            slots: Semaphore::new(config.max_concurrency as usize),
            config,
        });
        let app = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route("/v1/models", get(models))
            .route("/v1/chat/completions", post(chat))
            .route("/v1/completions", post(completions))
            .with_state(shared);
        let (tx, rx) = oneshot::channel::<()>();
        // Each token goes out when it is due: no Nagle delay behind an unacknowledged write.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Simulator {
            port,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops accepting requests and ends the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn models(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(
        json!({"object": "list", "data": [{"id": s.config.model, "object": "model",
        "owned_by": "kitt-simulator", "max_model_len": s.config.context}]}),
    )
    .into_response()
}

async fn chat(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    serve(s, body, true).await
}

async fn completions(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    serve(s, body, false).await
}

/// What one request asks for.
struct Ask {
    stream: bool,
    include_usage: bool,
    prompt_tokens: u64,
    max_tokens: Option<u32>,
    ignore_eos: bool,
    /// `/v1/completions` with `echo` and `logprobs`: the prompt comes back scored.
    echo_logprobs: Option<String>,
}

fn parse_ask(body: &[u8], chat: bool) -> Result<Ask, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let prompt_tokens = if chat {
        let messages = v
            .get("messages")
            .and_then(Value::as_array)
            .ok_or("Expected 'messages' to be an array")?;
        messages
            .iter()
            .filter_map(|m| m.get("content").and_then(Value::as_str))
            .map(|c| c.split_whitespace().count() as u64)
            .sum()
    } else {
        let prompt = v
            .get("prompt")
            .and_then(Value::as_str)
            .ok_or("Expected 'prompt' to be a string")?;
        prompt.split_whitespace().count() as u64
    };
    Ok(Ask {
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: v
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        prompt_tokens,
        max_tokens: v
            .get("max_tokens")
            .and_then(Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        ignore_eos: v
            .get("ignore_eos")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        echo_logprobs: (!chat
            && v.get("echo").and_then(Value::as_bool) == Some(true)
            && v.get("logprobs").is_some_and(|l| !l.is_null()))
        .then(|| {
            v.get("prompt")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        }),
    })
}

fn error_response(status: StatusCode, message: &str, kind: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": message, "type": kind, "code": status.as_u16()}})),
    )
        .into_response()
}

/// Draws (fails, answer length) for one request.
fn draw(s: &Shared, ask: &Ask) -> (bool, u32) {
    let mut rng = s.rng.lock().unwrap_or_else(|p| p.into_inner());
    let fails = s.config.error_rate > 0.0 && rng.random::<f64>() < s.config.error_rate;
    let mean = f64::from(s.config.output_tokens);
    let drawn = match s.config.distribution {
        LengthDistribution::Fixed => mean,
        LengthDistribution::Uniform => mean * (0.5 + rng.random::<f64>()),
        LengthDistribution::Exponential => -mean * (1.0 - rng.random::<f64>()).ln(),
    };
    let drawn = (drawn.round() as u32).max(1);
    let len = match (ask.max_tokens, ask.ignore_eos) {
        (Some(max), true) => max,
        (Some(max), false) => drawn.min(max),
        (None, _) => drawn,
    };
    (fails, len.max(1))
}

const WORDS: &[&str] = &[
    " the",
    " model",
    " answers",
    " with",
    " simulated",
    " tokens",
    " at",
    " a",
    " known",
    " pace",
    ".",
];

async fn serve(s: Arc<Shared>, body: Bytes, chat: bool) -> Response {
    let ask = match parse_ask(&body, chat) {
        Ok(a) => a,
        Err(msg) => return error_response(StatusCode::BAD_REQUEST, &msg, "invalid_request_error"),
    };
    if ask.prompt_tokens > s.config.context {
        return error_response(
            StatusCode::BAD_REQUEST,
            &format!(
                "the prompt has {} tokens; the context is {}",
                ask.prompt_tokens, s.config.context
            ),
            "invalid_request_error",
        );
    }
    if let Some(prompt) = &ask.echo_logprobs {
        return axum::Json(scored_echo(&s.config, prompt, ask.max_tokens)).into_response();
    }
    let (fails, len) = draw(&s, &ask);
    if fails {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "simulated server error (error_rate)",
            "server_error",
        );
    }
    let finish = if ask.max_tokens == Some(len) {
        "length"
    } else {
        "stop"
    };
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let usage = json!({"prompt_tokens": ask.prompt_tokens, "completion_tokens": len,
                       "total_tokens": ask.prompt_tokens + u64::from(len)});
    let model = s.config.model.clone();
    if !ask.stream {
        let Ok(_slot) = s.slots.acquire().await else {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting down",
                "server_error",
            );
        };
        let total =
            first_token_delay(&s.config, ask.prompt_tokens) + s.config.itl * len.saturating_sub(1);
        tokio::time::sleep(total).await;
        let text: String = (0..len).map(|i| WORDS[i as usize % WORDS.len()]).collect();
        let choice = if chat {
            json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": text, "finish_reason": finish})
        };
        let object = if chat {
            "chat.completion"
        } else {
            "text_completion"
        };
        return axum::Json(json!({"id": "sim", "object": object, "model": model,
                                 "choices": [choice], "usage": usage}))
        .into_response();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        let send = |v: Value| {
            let tx = tx.clone();
            async move {
                tx.send(Ok(Bytes::from(format!("data: {v}\n\n"))))
                    .await
                    .is_ok()
            }
        };
        let chunk = |delta: Value, finish: Option<&str>| {
            let choice = if chat {
                json!({"index": 0, "delta": delta, "finish_reason": finish})
            } else {
                json!({"index": 0, "text": delta.get("content").cloned().unwrap_or(json!("")), "finish_reason": finish})
            };
            json!({"id": "sim", "object": object, "model": model, "choices": [choice]})
        };
        if chat && !send(chunk(json!({"role": "assistant", "content": null}), None)).await {
            return;
        }
        let Ok(_slot) = s.slots.acquire().await else {
            return;
        };
        let start = Instant::now();
        for i in 0..len {
            let due = start + first_token_delay(&s.config, ask.prompt_tokens) + s.config.itl * i;
            tokio::time::sleep_until(due).await;
            let word = WORDS[i as usize % WORDS.len()];
            if !send(chunk(json!({"content": word}), None)).await {
                return; // the client went away; free the slot
            }
        }
        if !send(chunk(json!({}), Some(finish))).await {
            return;
        }
        if ask.include_usage {
            let v = json!({"id": "sim", "object": object, "model": model, "choices": [], "usage": usage});
            if !send(v).await {
                return;
            }
        }
        let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
    });
    let stream = tokio_stream_from(rx);
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| {
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "response",
                "server_error",
            )
        })
}

/// `ttft` plus `prefill` per 1,000 prompt tokens.
fn first_token_delay(config: &SimConfig, prompt_tokens: u64) -> Duration {
    config.ttft + config.prefill.mul_f64(prompt_tokens as f64 / 1000.0)
}

/// The simulator's log-probability of a word (a fixed function of its text, so tests can
/// compute what a log-likelihood scorer must pick).
pub fn word_logprob(word: &str) -> f64 {
    let hash = word.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    -1.0 - (hash % 400) as f64 / 100.0
}

/// A `/v1/completions` answer echoing `prompt` with a log-probability per word-token (the
/// first token has none, as on real servers), then the generated tokens `max_tokens` asks
/// for. With a `bos_token` the echo starts with it and offsets count its text, as vLLM's do.
fn scored_echo(config: &SimConfig, prompt: &str, max_tokens: Option<u32>) -> Value {
    let mut tokens = Vec::new();
    let mut offsets = Vec::new();
    let mut logprobs = Vec::new();
    let mut at = 0usize; // characters of token text so far, as the server counts them
    if let Some(bos) = &config.bos_token {
        tokens.push(bos.clone());
        offsets.push(0);
        logprobs.push(Value::Null);
        at = bos.chars().count();
    }
    let mut start = 0usize;
    let bytes = prompt.as_bytes();
    while start < bytes.len() {
        // A token is leading whitespace plus a word.
        let mut end = start;
        while end < bytes.len() && bytes[end].is_ascii_whitespace() {
            end += 1;
        }
        while end < bytes.len() && !bytes[end].is_ascii_whitespace() {
            end += 1;
        }
        let token = &prompt[start..end];
        logprobs.push(if tokens.is_empty() {
            Value::Null
        } else {
            json!(word_logprob(token.trim()))
        });
        tokens.push(token.to_string());
        offsets.push(at);
        at += token.chars().count();
        start = end;
    }
    let prompt_tokens = tokens.len();
    let generated = max_tokens.unwrap_or(0).min(1) as usize;
    for _ in 0..generated {
        tokens.push(" the".into());
        offsets.push(at);
        logprobs.push(json!(word_logprob("the")));
    }
    json!({"id": "sim", "object": "text_completion", "model": config.model,
           "choices": [{"index": 0, "text": prompt, "finish_reason": "length",
                        "logprobs": {"tokens": tokens, "token_logprobs": logprobs,
                                     "text_offset": offsets, "top_logprobs": null}}],
           "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": generated,
                     "total_tokens": prompt_tokens + generated}})
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, Infallible>>,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_read_with_defaults() {
        let config: Map<String, Value> = serde_json::from_value(json!({
            "ttft": "200ms", "itl": "5ms", "output_tokens": 32, "max_concurrency": 2,
            "output_distribution": "uniform", "seed": 7
        }))
        .unwrap();
        let c = SimConfig::from_config(&config, None).unwrap();
        assert_eq!(c.ttft, Duration::from_millis(200));
        assert_eq!(c.itl, Duration::from_millis(5));
        assert_eq!(c.max_concurrency, 2);
        assert_eq!(c.distribution, LengthDistribution::Uniform);
        assert_eq!(c.model, "simulator");
    }

    #[test]
    fn lengths_follow_max_tokens_and_ignore_eos() {
        let shared = Shared {
            config: SimConfig {
                distribution: LengthDistribution::Uniform,
                ..SimConfig::default()
            },
            rng: Mutex::new(StdRng::seed_from_u64(1)),
            slots: Semaphore::new(1),
        };
        let ask = |max_tokens, ignore_eos| Ask {
            stream: true,
            include_usage: true,
            prompt_tokens: 1,
            max_tokens,
            ignore_eos,
            echo_logprobs: None,
        };
        for _ in 0..100 {
            let (_, n) = draw(&shared, &ask(None, false));
            assert!((32..=96).contains(&n), "{n}");
            let (_, n) = draw(&shared, &ask(Some(10), false));
            assert!(n <= 10);
            let (_, n) = draw(&shared, &ask(Some(300), true));
            assert_eq!(n, 300);
        }
    }
}
