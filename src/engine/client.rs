//! The measurement client every engine shares: OpenAI-compatible requests, streamed through
//! kitt's SSE parser with a monotonic timestamp per read. Plain `http` endpoints go through
//! kitt's lean HTTP/1.1 client (`http1`); `https` ones through a pooled reqwest client.

use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Map, Value};

use super::generation::{Accumulator, GenerationRequest, GenerationResult};
use super::http1::{self, ReadError, WireError};
use super::openai::{self, Chunk};
use super::sse::Parser;

/// Longest a request may take unless the engine sets `request_timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Most bytes kitt reads of one response (a stream's chunks included).
pub const MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;
/// Most bytes kitt reads of an error answer or a probe's JSON.
const MAX_SMALL_BODY: usize = 1024 * 1024;
/// The largest embeddings answer kitt reads: 2,048 vectors of 4,096 values as JSON text.
pub const MAX_EMBEDDINGS_BODY: usize = 192 * 1024 * 1024;

/// One `/v1/embeddings` call as the client saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    pub latency: Duration,
    pub vectors: usize,
    /// Values per vector.
    pub dim: usize,
    /// The server's count of input tokens, when it gave one.
    pub prompt_tokens: Option<u64>,
}
/// Output chunks tolerated beyond a request's `max_tokens` (servers may split a token).
const EXTRA_CHUNKS: u64 = 64;

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response, headers included.
    pub read_timeout: Duration,
    /// Longest a whole request may take (sending, waiting and reading every byte).
    pub request_timeout: Option<Duration>,
    /// Idle connections kept per host.
    pub pool_max_idle_per_host: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(120),
            request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
            pool_max_idle_per_host: 1024,
        }
    }
}

/// Why a generation failed. Each variant says which step failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{url} sent nothing for {after:?} (read timeout)")]
    ReadTimeout { url: String, after: Duration },
    #[error("{url} did not finish within {after:?} (request timeout)")]
    RequestTimeout { url: String, after: Duration },
    #[error("{url} answered HTTP {status}: {message}")]
    Http {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url} reported an error mid-stream after {chunks} chunks: {message}")]
    StreamError {
        url: String,
        chunks: usize,
        message: String,
    },
    #[error("{url} closed the stream after {chunks} chunks without a finish reason or [DONE]")]
    Truncated { url: String, chunks: usize },
    #[error("{url} sent a response kitt cannot read: {reason}")]
    Protocol { url: String, reason: String },
    /// The server refused the request for lack of capacity (HTTP 429 or 503, or an
    /// in-stream "overloaded" error such as TGI's past `max_concurrent_requests`).
    #[error("{url} is overloaded: {message}")]
    Overloaded { url: String, message: String },
    #[error("request to {url} failed: {reason}")]
    Transport { url: String, reason: String },
}

impl ClientError {
    /// Whether the server turned the request away for lack of capacity.
    pub fn is_overload(&self) -> bool {
        matches!(self, ClientError::Overloaded { .. })
    }

    /// Whether retrying the request could help (connection trouble, timeouts, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::ReadTimeout { .. }
            | ClientError::RequestTimeout { .. }
            | ClientError::Transport { .. }
            | ClientError::Truncated { .. }
            | ClientError::Overloaded { .. } => true,
            ClientError::Http { status, .. } => *status == 429 || *status >= 500,
            ClientError::StreamError { .. } | ClientError::Protocol { .. } => false,
        }
    }
}

/// An OpenAI-compatible endpoint and how to talk to it.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The lean client for a plain-`http` base URL, and the URL's path prefix.
    plain: Option<(Arc<http1::Pool>, String)>,
    base_url: String,
    model: String,
    api_key: Option<String>,
    options: ClientOptions,
}

static CRYPTO: Once = Once::new();

/// Builds the pooled HTTP client (rustls with the ring provider).
pub fn http_client(options: &ClientOptions) -> Result<reqwest::Client, reqwest::Error> {
    CRYPTO.call_once(|| {
        // Another part of the process may have installed a provider first; either is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .pool_max_idle_per_host(options.pool_max_idle_per_host)
        .tcp_nodelay(true)
        .no_proxy()
        .build()
}

impl Client {
    /// A client for `base_url` (e.g. `http://127.0.0.1:8080`) sending `model` in requests.
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<String>,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        let base_url = base_url.trim_end_matches('/').to_string();
        let http = http_client(&options).map_err(|e| ClientError::Transport {
            url: base_url.clone(),
            reason: e.to_string(),
        })?;
        let plain = plain_pool(&base_url, &options);
        Ok(Client {
            http,
            plain,
            base_url,
            model: model.to_string(),
            api_key,
            options,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends one request and measures it. Streaming requests are timed per read.
    pub async fn generate(&self, req: &GenerationRequest) -> Result<GenerationResult, ClientError> {
        self.generate_with(req, &Map::new()).await
    }

    /// Like `generate`, with engine-specific body fields (e.g. `ignore_eos`) merged in.
    pub async fn generate_with(
        &self,
        req: &GenerationRequest,
        extra_body: &Map<String, Value>,
    ) -> Result<GenerationResult, ClientError> {
        let work = self.generate_inner(req, extra_body);
        match self.options.request_timeout {
            Some(limit) => tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
                Err(ClientError::RequestTimeout {
                    url: self.url(req),
                    after: limit,
                })
            }),
            None => work.await,
        }
    }

    fn url(&self, req: &GenerationRequest) -> String {
        format!("{}{}", self.base_url, req.endpoint.path())
    }

    async fn generate_inner(
        &self,
        req: &GenerationRequest,
        extra_body: &Map<String, Value>,
    ) -> Result<GenerationResult, ClientError> {
        let url = self.url(req);
        if let Some((pool, prefix)) = &self.plain {
            let body = serde_json::to_vec(&openai::request_body(req, &self.model, extra_body))
                .map_err(|e| ClientError::Protocol {
                    url: url.clone(),
                    reason: format!("cannot encode the request: {e}"),
                })?;
            return self.generate_plain(pool, prefix, &url, req, body).await;
        }
        let body = openai::request_body(req, &self.model, extra_body);
        let mut builder = self.http.post(&url).json(&body);
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key);
        }
        let retry = builder.try_clone();
        let mut start = Instant::now();
        let response = match (builder.send().await, retry) {
            (Ok(r), _) => r,
            // A pooled connection the server had already closed: the request never reached
            // it, so it is sent once more on a fresh connection and timed from there.
            (Err(e), Some(again)) if stale_connection(&e) => {
                start = Instant::now();
                again
                    .send()
                    .await
                    .map_err(|e| self.transport_error(&url, e))?
            }
            (Err(e), _) => return Err(self.transport_error(&url, e)),
        };
        let status = response.status();
        if !status.is_success() {
            let body = self
                .body_capped(&url, response, MAX_SMALL_BODY)
                .await
                .unwrap_or_default();
            return Err(http_error(&url, status, &String::from_utf8_lossy(&body)));
        }
        let kind = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase);
        if req.stream
            && let Some(kind) = kind.filter(|t| !is_event_stream(t))
        {
            let body = self
                .body_capped(&url, response, MAX_SMALL_BODY)
                .await
                .unwrap_or_default();
            return Err(not_streamed(&url, &kind, &body));
        }
        if req.stream {
            self.read_stream(&url, req, response, start).await
        } else {
            let bytes = self
                .body_capped(&url, response, MAX_RESPONSE_BYTES as usize)
                .await?;
            whole_answer(&url, &bytes, start.elapsed())
        }
    }

    /// `generate` over kitt's own HTTP/1.1 client.
    async fn generate_plain(
        &self,
        pool: &http1::Pool,
        prefix: &str,
        url: &str,
        req: &GenerationRequest,
        body: Vec<u8>,
    ) -> Result<GenerationResult, ClientError> {
        let wire = |e| self.wire_error(url, e);
        // The request's buffers are gone before the (possibly long) answer is read.
        let mut response = {
            let bearer = self.api_key.as_ref().map(|k| format!("Bearer {k}"));
            let mut headers = vec![("Content-Type", "application/json")];
            if req.stream {
                headers.push(("Accept", "text/event-stream"));
            }
            if let Some(b) = &bearer {
                headers.push(("Authorization", b.as_str()));
            }
            let path = format!("{prefix}{}", req.endpoint.path());
            let request = http1::Request {
                method: "POST",
                path: &path,
                headers: &headers,
                body: &body,
            };
            pool.send(&request).await.map_err(wire)?
        };
        drop(body);
        let start = response.sent_at;
        if !(200..300).contains(&response.status) {
            let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let text = match response.bytes(MAX_SMALL_BODY).await {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                // The status is the news; an enormous body is not read to tell it.
                Err(WireError::TooLong(limit)) => {
                    format!("(an answer body of more than {limit} bytes, not read)")
                }
                Err(e) => return Err(wire(e)),
            };
            return Err(http_error(url, status, &text));
        }
        if !req.stream {
            let bytes = response
                .bytes(MAX_RESPONSE_BYTES as usize)
                .await
                .map_err(wire)?;
            return whole_answer(url, &bytes, start.elapsed());
        }
        if let Some(kind) = response
            .content_type
            .clone()
            .filter(|t| !is_event_stream(t))
        {
            let body = response.bytes(MAX_SMALL_BODY).await.map_err(wire)?;
            return Err(not_streamed(url, &kind, &body));
        }
        let mut stream = StreamState::new(start, req);
        loop {
            let more = response
                .read(|bytes, at| stream.bytes(self, url, bytes, at))
                .await
                .map_err(|e| match e {
                    ReadError::Wire(e) => wire(e),
                    ReadError::Consumer(e) => e,
                })?;
            if stream.acc.done_marker() {
                // Measured; what is left of the body only decides whether the connection
                // can be kept.
                response.drain(Duration::from_secs(1)).await;
                break;
            }
            if !more {
                break;
            }
        }
        stream.end(self, url)
    }

    fn wire_error(&self, url: &str, e: WireError) -> ClientError {
        let url = url.to_string();
        match e {
            WireError::Connect(e) => ClientError::Connect {
                url,
                reason: e.to_string(),
            },
            WireError::ConnectTimeout(after) => ClientError::Connect {
                url,
                reason: format!("no connection within {after:?}"),
            },
            WireError::ReadTimeout(after) => ClientError::ReadTimeout { url, after },
            WireError::Malformed(reason) => ClientError::Protocol { url, reason },
            e => ClientError::Transport {
                url,
                reason: e.to_string(),
            },
        }
    }

    async fn read_stream(
        &self,
        url: &str,
        req: &GenerationRequest,
        response: reqwest::Response,
        start: Instant,
    ) -> Result<GenerationResult, ClientError> {
        let mut body = response.bytes_stream();
        let mut stream = StreamState::new(start, req);
        while let Some(read) = body.next().await {
            let bytes = read.map_err(|e| self.transport_error(url, e))?;
            stream.bytes(self, url, &bytes, Instant::now())?;
            if stream.acc.done_marker() {
                break;
            }
        }
        stream.end(self, url)
    }

    /// Handles one event's data; returns true at `[DONE]`.
    fn event(
        &self,
        url: &str,
        data: &str,
        at: Duration,
        acc: &mut Accumulator,
    ) -> Result<bool, ClientError> {
        let data = data.trim();
        if data == "[DONE]" {
            acc.done();
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| ClientError::Protocol {
            url: url.to_string(),
            reason: format!("chunk is not JSON ({e}): {}", preview(data)),
        })?;
        if let Some(error) = &chunk.error {
            let wrapped = serde_json::json!({"error": error});
            let message = openai::error_message(&wrapped).unwrap_or_else(|| error.to_string());
            if message.to_ascii_lowercase().contains("overloaded") {
                return Err(ClientError::Overloaded {
                    url: url.to_string(),
                    message,
                });
            }
            return Err(ClientError::StreamError {
                url: url.to_string(),
                chunks: acc.chunks(),
                message,
            });
        }
        acc.chunk(chunk, at);
        Ok(false)
    }

    /// The model name sent in requests.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// GETs a JSON document (probes such as llama.cpp's `/props` or `/v1/models`).
    pub async fn get_json(&self, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base_url);
        let mut builder = self.http.get(&url);
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key);
        }
        self.json_answer(&url, builder).await
    }

    /// POSTs a JSON body and reads a JSON answer, unmeasured (probes, log-likelihoods).
    /// The body gets this client's `model` unless it names one.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base_url);
        let mut body = body.clone();
        if let Some(map) = body.as_object_mut() {
            map.entry("model")
                .or_insert_with(|| Value::String(self.model.clone()));
        }
        let mut builder = self.http.post(&url).json(&body);
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key);
        }
        self.json_answer(&url, builder).await
    }

    /// Embeds `inputs` through `/v1/embeddings`, timing the call; the answer is read up to
    /// [`MAX_EMBEDDINGS_BODY`] and must hold one vector per input, all of one length.
    pub async fn embed(&self, inputs: &[String]) -> Result<Embedded, ClientError> {
        let url = format!("{}/v1/embeddings", self.base_url);
        let body = serde_json::json!({"model": self.model, "input": inputs});
        let mut builder = self.http.post(&url).json(&body);
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key);
        }
        let started = std::time::Instant::now();
        let answer = self
            .json_answer_capped(&url, builder, MAX_EMBEDDINGS_BODY)
            .await?;
        let latency = started.elapsed();
        let protocol = |reason: String| ClientError::Protocol {
            url: url.clone(),
            reason,
        };
        let data = answer
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| protocol("no `data` list in the embeddings answer".into()))?;
        let dims: Vec<usize> = data
            .iter()
            .map(|d| {
                d.get("embedding")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            })
            .collect();
        if data.len() != inputs.len() || dims.iter().any(|d| *d == 0 || *d != dims[0]) {
            return Err(protocol(format!(
                "{} inputs got {} vectors of lengths {:?}",
                inputs.len(),
                data.len(),
                &dims[..dims.len().min(8)]
            )));
        }
        Ok(Embedded {
            latency,
            vectors: data.len(),
            dim: dims[0],
            prompt_tokens: answer
                .pointer("/usage/prompt_tokens")
                .and_then(Value::as_u64),
        })
    }

    async fn json_answer(
        &self,
        url: &str,
        builder: reqwest::RequestBuilder,
    ) -> Result<Value, ClientError> {
        self.json_answer_capped(url, builder, MAX_SMALL_BODY).await
    }

    async fn json_answer_capped(
        &self,
        url: &str,
        builder: reqwest::RequestBuilder,
        cap: usize,
    ) -> Result<Value, ClientError> {
        let response = builder
            .send()
            .await
            .map_err(|e| self.transport_error(url, e))?;
        let status = response.status();
        let body = self.body_capped(url, response, cap).await?;
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            return Err(http_error(url, status, &text));
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Protocol {
            url: url.to_string(),
            reason: format!("answer is not JSON ({e}): {}", preview(&text)),
        })
    }

    /// A reqwest response's body, refused past `cap` bytes.
    async fn body_capped(
        &self,
        url: &str,
        response: reqwest::Response,
        cap: usize,
    ) -> Result<Vec<u8>, ClientError> {
        let mut body = response.bytes_stream();
        let mut bytes = Vec::new();
        while let Some(read) = body.next().await {
            let read = read.map_err(|e| self.transport_error(url, e))?;
            if bytes.len() + read.len() > cap {
                return Err(ClientError::Protocol {
                    url: url.to_string(),
                    reason: format!(
                        "the answer is larger than {cap} bytes; kitt stopped reading it"
                    ),
                });
            }
            bytes.extend_from_slice(&read);
        }
        Ok(bytes)
    }

    fn transport_error(&self, url: &str, e: reqwest::Error) -> ClientError {
        transport_error(url, e, self.options.read_timeout)
    }
}

/// One streamed answer being read: the SSE parser, what it produced, and when; and the
/// caps that stop a stream that never ends.
struct StreamState {
    start: Instant,
    parser: Parser,
    acc: Accumulator,
    last_byte: Duration,
    bytes_read: u64,
    /// The request's `max_tokens`, and the most output chunks accepted for it (twice as
    /// many, at least 64 more: servers may split a token).
    max_tokens: Option<(u32, u64)>,
}

impl StreamState {
    fn new(start: Instant, req: &GenerationRequest) -> Self {
        let max_tokens = req
            .sampling
            .max_tokens
            .map(|n| (n, (2 * u64::from(n)).max(u64::from(n) + EXTRA_CHUNKS)));
        StreamState {
            start,
            parser: Parser::default(),
            acc: Accumulator::default(),
            last_byte: Duration::ZERO,
            bytes_read: 0,
            max_tokens,
        }
    }

    /// Takes the bytes of one read, which arrived `at`; events after `[DONE]` are ignored.
    fn bytes(
        &mut self,
        client: &Client,
        url: &str,
        bytes: &[u8],
        at: Instant,
    ) -> Result<(), ClientError> {
        if self.acc.done_marker() {
            return Ok(());
        }
        let at = at.saturating_duration_since(self.start);
        self.last_byte = at;
        self.bytes_read += bytes.len() as u64;
        if self.bytes_read > MAX_RESPONSE_BYTES {
            return Err(ClientError::Protocol {
                url: url.to_string(),
                reason: format!(
                    "the answer is larger than {} MiB; kitt stopped reading it",
                    MAX_RESPONSE_BYTES >> 20
                ),
            });
        }
        let events = self.parser.push(bytes).map_err(|e| ClientError::Protocol {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        for event in events {
            if client.event(url, &event.data, at, &mut self.acc)? {
                break;
            }
            if let Some((tokens, max)) = self.max_tokens
                && self.acc.chunks() as u64 > max
            {
                return Err(ClientError::Protocol {
                    url: url.to_string(),
                    reason: format!(
                        "it sent more than {max} output chunks for a request of at most {tokens} tokens (max_tokens); kitt stopped reading"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The stream ended (or `[DONE]` came): the result, or why it is incomplete.
    fn end(mut self, client: &Client, url: &str) -> Result<GenerationResult, ClientError> {
        if !self.acc.done_marker()
            && let Some(event) = self.parser.finish().map_err(|e| ClientError::Protocol {
                url: url.to_string(),
                reason: e.to_string(),
            })?
        {
            client.event(url, &event.data, self.last_byte, &mut self.acc)?;
        }
        if !self.acc.done_marker() && self.acc.finish_reason().is_none() {
            return Err(ClientError::Truncated {
                url: url.to_string(),
                chunks: self.acc.chunks(),
            });
        }
        if self.acc.chunks() == 0 && self.acc.finish_reason().is_none() {
            return Err(ClientError::Protocol {
                url: url.to_string(),
                reason: "the stream ended without any output or finish reason".into(),
            });
        }
        Ok(self.acc.finish(self.last_byte, self.parser.comments))
    }
}

/// Whether a `Content-Type` is a server-sent event stream.
fn is_event_stream(content_type: &str) -> bool {
    content_type.starts_with("text/event-stream")
}

/// A streaming request answered with a whole body: nothing can be timed per token.
fn not_streamed(url: &str, content_type: &str, body: &[u8]) -> ClientError {
    let summary = openai::summarize_body(&String::from_utf8_lossy(body));
    ClientError::Protocol {
        url: url.to_string(),
        reason: format!(
            "it did not stream: a streaming request was answered with `Content-Type: {content_type}`{}",
            if summary.is_empty() {
                String::new()
            } else {
                format!(" ({summary})")
            }
        ),
    }
}

/// A whole (non-streamed) answer read in `e2e`.
fn whole_answer(url: &str, bytes: &[u8], e2e: Duration) -> Result<GenerationResult, ClientError> {
    let chunk: Chunk = serde_json::from_slice(bytes).map_err(|e| ClientError::Protocol {
        url: url.to_string(),
        reason: format!("response is not an OpenAI completion: {e}"),
    })?;
    if let Some(error) = &chunk.error {
        return Err(ClientError::StreamError {
            url: url.to_string(),
            chunks: 0,
            message: openai::error_message(&serde_json::json!({"error": error}))
                .unwrap_or_default(),
        });
    }
    let mut acc = Accumulator::default();
    acc.chunk(chunk, e2e);
    acc.done();
    Ok(acc.finish(e2e, 0))
}

/// kitt's own HTTP/1.1 client for a plain-`http` base URL, with the URL's path prefix.
fn plain_pool(base_url: &str, options: &ClientOptions) -> Option<(Arc<http1::Pool>, String)> {
    let url = reqwest::Url::parse(base_url).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let pool = http1::Pool::new(
        url.host_str()?,
        url.port_or_known_default()?,
        options.pool_max_idle_per_host,
        options.connect_timeout,
        options.read_timeout,
    );
    let prefix = url.path().trim_end_matches('/').to_string();
    Some((Arc::new(pool), prefix))
}

/// Whether sending failed because a kept-alive connection was closed under it before any
/// answer (the server's keep-alive timeout or request limit raced the reuse).
fn stale_connection(e: &reqwest::Error) -> bool {
    if e.is_connect() || e.is_timeout() {
        return false;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if text.contains("connection closed before message completed")
            || text.contains("connection reset")
            || text.contains("broken pipe")
        {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            )
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// Maps a reqwest error to what happened, in words.
pub fn transport_error(url: &str, e: reqwest::Error, read_timeout: Duration) -> ClientError {
    let url = url.to_string();
    if e.is_connect() {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason = s.to_string();
            source = s.source();
        }
        return ClientError::Connect { url, reason };
    }
    if e.is_timeout() {
        return ClientError::ReadTimeout {
            url,
            after: read_timeout,
        };
    }
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    ClientError::Transport { url, reason }
}

fn http_error(url: &str, status: StatusCode, body: &str) -> ClientError {
    let summary = openai::summarize_body(body);
    let message = if summary.is_empty() {
        status.canonical_reason().unwrap_or("no body").to_string()
    } else {
        summary
    };
    if matches!(status.as_u16(), 429 | 503) {
        return ClientError::Overloaded {
            url: url.to_string(),
            message: format!("HTTP {}: {message}", status.as_u16()),
        };
    }
    ClientError::Http {
        url: url.to_string(),
        status: status.as_u16(),
        message,
    }
}

fn preview(s: &str) -> String {
    s.chars().take(120).collect()
}
