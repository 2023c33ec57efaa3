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
//! (`word_logprob`), so log-likelihood scoring can be tested against known values. Its prefix
//! cache (`prefix_cache.rs`) also caches the blocks each finished answer fills, so a
//! conversation's next turn finds its history cached; usage says how many prompt tokens came
//! from the cache (`prompt_tokens_details.cached_tokens`).
//!
//! It runs on a thread of its own with a single-threaded runtime: its tokens go out on a
//! precise clock (`clock.rs`) instead of tokio's millisecond ticks, the client's load does
//! not share its runtime, and its CPU time is its thread's, so benchmarks can tell the
//! simulator's cost from the client's. Each token's SSE event is built once when the
//! simulator starts and only referenced per request.

mod clock;
mod embeddings;
mod metrics;
mod prefix_cache;
mod structured;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

use self::clock::Clock;
use self::metrics::{Metrics, Tracked};
use self::prefix_cache::{Chain, PrefixCache};

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
    /// KV-cache capacity in tokens, the denominator of `/metrics`' KV-cache usage and the
    /// prefix cache's capacity.
    pub kv_cache_tokens: u64,
    /// Words per prefix-cache block; `None`: no prefix cache.
    pub prefix_block_tokens: Option<usize>,
    /// Values in each `/v1/embeddings` vector.
    pub embedding_dim: usize,
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
            kv_cache_tokens: 65_536,
            prefix_block_tokens: Some(16),
            embedding_dim: 8,
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
        if let Some(n) = config.get("kv_cache_tokens").and_then(Value::as_u64) {
            c.kv_cache_tokens = n.max(1);
        }
        if let Some(n) = config.get("prefix_block_tokens").and_then(Value::as_u64) {
            c.prefix_block_tokens = Some(n.clamp(1, 4096) as usize);
        }
        if config.get("prefix_cache") == Some(&Value::Bool(false)) {
            c.prefix_block_tokens = None;
        }
        if let Some(n) = config.get("embedding_dim").and_then(Value::as_u64) {
            c.embedding_dim = n.clamp(1, 8192) as usize;
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
    slots: Arc<Semaphore>,
    clock: Clock,
    metrics: Arc<Metrics>,
    prefix: Option<Mutex<PrefixCache>>,
    /// Each token's event, built once: `[chat?][word]`.
    token_events: [Vec<Bytes>; 2],
    /// The role prelude of a chat stream.
    role_event: Bytes,
}

/// A running simulator; stops when stopped or dropped.
#[derive(Debug)]
pub struct Simulator {
    port: u16,
    /// The thread's id, to read its CPU time.
    tid: i32,
    shutdown: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<()>>,
}

impl Simulator {
    /// Starts serving on `127.0.0.1` at a free port, on a thread of its own.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let (started_tx, started_rx) = oneshot::channel::<std::io::Result<i32>>();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("kitt-simulator".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(serve_until(listener, config, started_tx, shutdown_rx));
                drop(runtime);
                let _ = done_tx.send(());
            })?;
        let tid = started_rx
            .await
            .map_err(|_| std::io::Error::other("the simulator thread ended at start"))??;
        Ok(Simulator {
            port,
            tid,
            shutdown: Some(shutdown_tx),
            done: Some(done_rx),
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// CPU time the simulator's thread has used (user and system), when the kernel says.
    pub fn cpu_time(&self) -> Option<Duration> {
        let text =
            std::fs::read_to_string(format!("/proc/self/task/{}/schedstat", self.tid)).ok()?;
        let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_nanos(ns))
    }

    /// Stops accepting requests and waits for the thread to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        // The thread ends its runtime, and with it every connection, once told.
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The simulator's thread: serves until shutdown, dropping every connection then.
async fn serve_until(
    listener: std::net::TcpListener,
    config: SimConfig,
    started: oneshot::Sender<std::io::Result<i32>>,
    shutdown: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    let (clock, driver) = Clock::new();
    tokio::spawn(driver);
    let shared = Arc::new(Shared {
        rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
        slots: Arc::new(Semaphore::new(config.max_concurrency as usize)),
        metrics: Arc::new(Metrics::new(&config.model, config.kv_cache_tokens)),
        prefix: config
            .prefix_block_tokens
            .map(|b| Mutex::new(PrefixCache::new(b, config.kv_cache_tokens))),
        token_events: [
            token_events(&config.model, false),
            token_events(&config.model, true),
        ],
        role_event: event(&json!({"id": "sim", "object": "chat.completion.chunk",
            "model": config.model, "choices": [{"index": 0,
            "delta": {"role": "assistant", "content": null}, "finish_reason": null}]})),
        clock,
        config,
    });
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/v1/models", get(models))
        .route("/metrics", get(metrics_page))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .with_state(shared);
    // Each token goes out when it is due: no Nagle delay behind an unacknowledged write.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let _ = started.send(Ok(nix::unistd::gettid().as_raw()));
    tokio::select! {
        _ = axum::serve(listener, app) => {}
        _ = shutdown => {}
    }
}

/// An SSE event carrying `v`.
fn event(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// The event of each word as a streamed token, for chat or completions.
fn token_events(model: &str, chat: bool) -> Vec<Bytes> {
    piece_events(model, chat, WORDS.iter().copied())
}

/// The event of each piece of text as a streamed token, for chat or completions.
fn piece_events<'a>(model: &str, chat: bool, pieces: impl Iterator<Item = &'a str>) -> Vec<Bytes> {
    pieces
        .map(|word| {
            let choice = if chat {
                json!({"index": 0, "delta": {"content": word}, "finish_reason": null})
            } else {
                json!({"index": 0, "text": word, "finish_reason": null})
            };
            let object = if chat {
                "chat.completion.chunk"
            } else {
                "text_completion"
            };
            event(&json!({"id": "sim", "object": object, "model": model, "choices": [choice]}))
        })
        .collect()
}

/// The events of a streamed tool call: the first names the function, every one carries a
/// piece of its arguments (OpenAI's `delta.tool_calls` by `index`).
fn tool_call_events(model: &str, name: &str, arguments: &[String]) -> Vec<Bytes> {
    arguments
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let call = if i == 0 {
                json!({"index": 0, "id": "call_sim", "type": "function",
                       "function": {"name": name, "arguments": piece}})
            } else {
                json!({"index": 0, "function": {"arguments": piece}})
            };
            event(
                &json!({"id": "sim", "object": "chat.completion.chunk", "model": model,
                          "choices": [{"index": 0, "delta": {"tool_calls": [call]},
                                       "finish_reason": null}]}),
            )
        })
        .collect()
}

async fn models(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(
        json!({"object": "list", "data": [{"id": s.config.model, "object": "model",
        "owned_by": "kitt-simulator", "max_model_len": s.config.context}]}),
    )
    .into_response()
}

async fn metrics_page(State(s): State<Arc<Shared>>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render(),
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
    /// The chain of its prompt's prefix-cache blocks (none without a cache).
    chain: Option<Chain>,
    max_tokens: Option<u32>,
    ignore_eos: bool,
    /// `/v1/completions` with `echo` and `logprobs`: the prompt comes back scored.
    echo_logprobs: Option<String>,
    /// A `response_format` asking for JSON: the answer, in streamed pieces.
    json_answer: Option<Vec<String>>,
    /// Chat with `tools`: the function it calls, its arguments in streamed pieces.
    tool_call: Option<(String, Vec<String>)>,
}

fn parse_ask(body: &[u8], chat: bool, cache: Option<&Mutex<PrefixCache>>) -> Result<Ask, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let texts: Vec<&str> = if chat {
        let messages = v
            .get("messages")
            .and_then(Value::as_array)
            .ok_or("Expected 'messages' to be an array")?;
        messages
            .iter()
            .filter_map(|m| m.get("content").and_then(Value::as_str))
            .collect()
    } else {
        vec![
            v.get("prompt")
                .and_then(Value::as_str)
                .ok_or("Expected 'prompt' to be a string")?,
        ]
    };
    let words = || texts.iter().flat_map(|t| t.split_whitespace());
    let prompt_tokens = words().count() as u64;
    let chain = cache.map(|c| c.lock().unwrap_or_else(|p| p.into_inner()).chain(words()));
    let json_answer = v
        .get("response_format")
        .and_then(structured::answer)
        .map(|text| structured::pieces(&text));
    Ok(Ask {
        json_answer,
        tool_call: chat
            .then(|| structured::tool_call(&v))
            .flatten()
            .map(|(name, arguments)| (name, structured::pieces(&arguments))),
        chain,
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
fn draw(config: &SimConfig, rng: &Mutex<StdRng>, ask: &Ask) -> (bool, u32) {
    let mut rng = rng.lock().unwrap_or_else(|p| p.into_inner());
    let fails = config.error_rate > 0.0 && rng.random::<f64>() < config.error_rate;
    let mean = f64::from(config.output_tokens);
    let drawn = match config.distribution {
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
    let ask = match parse_ask(&body, chat, s.prefix.as_ref()) {
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
    let (fails, mut len) = draw(&s.config, &s.rng, &ask);
    // A JSON answer or a tool call's arguments are as long as their pieces, cut at
    // `max_tokens` (and then invalid).
    let pieces = ask
        .tool_call
        .as_ref()
        .map(|(_, p)| p)
        .or(ask.json_answer.as_ref());
    if let Some(pieces) = pieces {
        len = u32::try_from(pieces.len())
            .unwrap_or(u32::MAX)
            .min(ask.max_tokens.unwrap_or(u32::MAX))
            .max(1);
    }
    if fails {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "simulated server error (error_rate)",
            "server_error",
        );
    }
    let finish = if ask.max_tokens == Some(len) {
        "length"
    } else if ask.tool_call.is_some() {
        "tool_calls"
    } else {
        "stop"
    };
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    // Prefill skips the prompt's leading blocks already cached.
    let cached = match (&s.prefix, &ask.chain) {
        (Some(c), Some(chain)) => c
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .serve(&chain.blocks),
        _ => 0,
    };
    let uncached = ask.prompt_tokens - cached.min(ask.prompt_tokens);
    let text = || answer_text(pieces.map(Vec::as_slice), len);
    // The blocks the answer fills after its prompt, cached once it is finished.
    let answer_blocks = ask.chain.clone().map(|mut chain| {
        let before = chain.blocks.len();
        chain.extend(text().split_whitespace());
        chain.blocks.split_off(before)
    });
    let usage = json!({"prompt_tokens": ask.prompt_tokens, "completion_tokens": len,
                       "total_tokens": ask.prompt_tokens + u64::from(len),
                       "prompt_tokens_details": {"cached_tokens": cached}});
    let model = s.config.model.clone();
    if !ask.stream {
        let mut tracked = s.metrics.arrived(ask.prompt_tokens, cached);
        let Ok(_slot) = s.slots.acquire().await else {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting down",
                "server_error",
            );
        };
        tracked.started();
        let start = Instant::now();
        let first = start + first_token_delay(&s.config, uncached);
        s.clock.sleep_until(first).await;
        tracked.sent(1);
        s.clock
            .sleep_until(first + s.config.itl * len.saturating_sub(1))
            .await;
        tracked.sent(u64::from(len.saturating_sub(1)));
        tracked.finished(finish == "length");
        remember(&s, answer_blocks.as_deref());
        let text = text();
        let choice = if let Some((name, _)) = &ask.tool_call {
            json!({"index": 0, "message": {"role": "assistant", "content": null,
                   "tool_calls": [{"id": "call_sim", "type": "function",
                                   "function": {"name": name, "arguments": text}}]},
                   "finish_reason": finish})
        } else if chat {
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
    let end = {
        let finish_choice = if chat {
            json!({"index": 0, "delta": {}, "finish_reason": finish})
        } else {
            json!({"index": 0, "text": "", "finish_reason": finish})
        };
        let mut end = format!(
            "data: {}\n\n",
            json!({"id": "sim", "object": object, "model": model, "choices": [finish_choice]})
        );
        if ask.include_usage {
            let v = json!({"id": "sim", "object": object, "model": model, "choices": [], "usage": usage});
            end.push_str(&format!("data: {v}\n\n"));
        }
        end.push_str("data: [DONE]\n\n");
        Bytes::from(end)
    };
    let stream = token_stream(Answer {
        step: if chat { Step::Prelude } else { Step::Slot },
        tracked: s.metrics.arrived(ask.prompt_tokens, cached),
        s,
        chat,
        uncached_tokens: uncached,
        answer_blocks,
        len,
        at_length: finish == "length",
        end,
        pieces: match &ask.tool_call {
            Some((name, arguments)) => Some(Arc::new(tool_call_events(&model, name, arguments))),
            None => ask
                .json_answer
                .as_ref()
                .map(|p| Arc::new(piece_events(&model, chat, p.iter().map(String::as_str)))),
        },
    });
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

/// The text of an answer `len` tokens long: its JSON pieces, or the filler words.
fn answer_text(json_pieces: Option<&[String]>, len: u32) -> String {
    match json_pieces {
        Some(pieces) => pieces
            .iter()
            .take(len as usize)
            .map(String::as_str)
            .collect(),
        None => (0..len).map(|i| WORDS[i as usize % WORDS.len()]).collect(),
    }
}

/// Caches the blocks a finished answer filled.
fn remember(s: &Shared, blocks: Option<&[u64]>) {
    if let (Some(cache), Some(blocks)) = (&s.prefix, blocks) {
        cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remember(blocks);
    }
}

/// Where a stream is.
enum Step {
    /// The chat role prelude, sent before a slot is had (as servers do).
    Prelude,
    /// Waiting for a slot, then the first token.
    Slot,
    /// Token `i` is next; the slot is held since `start`.
    Token(u32, Instant, tokio::sync::OwnedSemaphorePermit),
    /// The finish chunk, the usage chunk and `[DONE]`.
    End,
    Done,
}

/// One streamed answer: where it is and what it needs.
struct Answer {
    step: Step,
    s: Arc<Shared>,
    chat: bool,
    /// Prompt tokens it must prefill (those the prefix cache did not serve).
    uncached_tokens: u64,
    /// The prefix-cache blocks its answer fills, cached when it is finished.
    answer_blocks: Option<Vec<u64>>,
    len: u32,
    /// It stops at `max_tokens` (finish reason `length`).
    at_length: bool,
    /// The finish chunk, the usage chunk and `[DONE]`, as one write.
    end: Bytes,
    tracked: Tracked,
    /// This answer's own token events (a JSON answer), instead of the filler words.
    pieces: Option<Arc<Vec<Bytes>>>,
}

type Event = Result<Bytes, Infallible>;

/// A stream's events, each when it is due: no task or channel of its own; the response body
/// polls it, and dropping it (the client went away) frees the slot and takes the request out
/// of the metrics' gauges.
fn token_stream(answer: Answer) -> impl futures_util::Stream<Item = Event> + Send {
    futures_util::stream::unfold(answer, |mut a| async move {
        match std::mem::replace(&mut a.step, Step::Done) {
            Step::Prelude => {
                a.step = Step::Slot;
                Some((Ok(a.s.role_event.clone()), a))
            }
            Step::Slot => {
                let permit = a.s.slots.clone().acquire_owned().await.ok()?;
                a.tracked.started();
                next_token(a, 0, Instant::now(), permit).await
            }
            Step::Token(i, start, permit) => next_token(a, i, start, permit).await,
            Step::End => Some((Ok(a.end.clone()), a)),
            Step::Done => None,
        }
    })
}

/// Waits for token `i`'s due time and yields it.
async fn next_token(
    mut a: Answer,
    i: u32,
    start: Instant,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Option<(Event, Answer)> {
    let due = start + first_token_delay(&a.s.config, a.uncached_tokens) + a.s.config.itl * i;
    a.s.clock.sleep_until(due).await;
    let events = match &a.pieces {
        Some(own) => own.as_slice(),
        None => &a.s.token_events[usize::from(a.chat)],
    };
    let out = events[i as usize % events.len()].clone();
    a.tracked.sent(1);
    a.step = if i + 1 < a.len {
        Step::Token(i + 1, start, permit)
    } else {
        a.tracked.finished(a.at_length);
        remember(&a.s, a.answer_blocks.as_deref());
        drop(permit);
        Step::End
    };
    Some((Ok(out), a))
}

/// The wait from a slot to the first token: `ttft`, plus `prefill` per 1,000 prompt tokens
/// the prefix cache did not serve.
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
        let config = SimConfig {
            distribution: LengthDistribution::Uniform,
            ..SimConfig::default()
        };
        let rng = Mutex::new(StdRng::seed_from_u64(1));
        let ask = |max_tokens, ignore_eos| Ask {
            stream: true,
            include_usage: true,
            prompt_tokens: 1,
            chain: None,
            max_tokens,
            ignore_eos,
            echo_logprobs: None,
            json_answer: None,
            tool_call: None,
        };
        for _ in 0..100 {
            let (_, n) = draw(&config, &rng, &ask(None, false));
            assert!((32..=96).contains(&n), "{n}");
            let (_, n) = draw(&config, &rng, &ask(Some(10), false));
            assert!(n <= 10);
            let (_, n) = draw(&config, &rng, &ask(Some(300), true));
            assert_eq!(n, 300);
        }
    }
}
