//! The measuring client against canned streams: the real llama-server recordings, streams
//! written from vLLM, SGLang, TGI and Ollama's documented formats, and faults (HTTP errors,
//! HTML bodies, truncation, stalls, split UTF-8, refused connections).

mod common;

use std::time::Duration;

use common::{Step, canned_server, head, sleep_ms, test_data, write};
use kitt::engine::client::{Client, ClientError, ClientOptions};
use kitt::engine::generation::{CountSource, Endpoint, GenerationRequest, GenerationResult};

fn client(base: &str) -> Client {
    let options = ClientOptions {
        read_timeout: Duration::from_millis(500),
        ..ClientOptions::default()
    };
    Client::new(base, "m", None, options).expect("client")
}

/// SSE events of a file, each written `gap` after the previous one; the first after `first`.
fn paced(stream: &[u8], first: u64, gap: u64) -> Vec<Step> {
    let text = String::from_utf8(stream.to_vec()).expect("utf-8 stream");
    let mut steps = vec![head("200 OK", "text/event-stream")];
    for (i, event) in text.split_inclusive("\n\n").enumerate() {
        steps.push(sleep_ms(if i == 0 { first } else { gap }));
        steps.push(write(event));
    }
    steps
}

async fn run(steps: Vec<Step>) -> Result<GenerationResult, ClientError> {
    let base = canned_server(steps).await;
    client(&base).generate(&GenerationRequest::chat("hi")).await
}

#[tokio::test]
async fn llama_server_chat_recording() {
    let r = run(paced(&test_data("sse/llama-server-chat-usage.sse"), 80, 5))
        .await
        .expect("generation");
    assert_eq!(r.text, "1. Red\n2. Blue\n3. Green");
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    assert_eq!(r.completion_tokens, 12);
    assert_eq!(r.prompt_tokens, Some(34));
    assert_eq!(r.count_source, CountSource::ServerUsage);
    assert!(r.done_marker);
    // The role prelude (content: null) does not count as the first token: it came at 80 ms,
    // the first token 5 ms later.
    let ttft = r.ttft.expect("ttft");
    assert!(ttft >= Duration::from_millis(85), "{ttft:?}");
    assert_eq!(r.ttft, r.ttfo);
    // 11 text chunks for 12 tokens: the end-of-sequence token is counted but not sent,
    // which is why server usage beats counting chunks.
    assert_eq!(r.chunk_times.len(), 11);
    assert!(r.e2e >= ttft);
    assert_eq!(r.server_timings.and_then(|t| t.predicted_n), Some(12));
    let tpot = r.tpot().expect("tpot");
    assert_eq!(
        tpot,
        (r.e2e - ttft) / 11,
        "tpot = (e2e - ttft) / (tokens - 1)"
    );
}

#[tokio::test]
async fn llama_server_completions_recording() {
    let base = canned_server(paced(&test_data("sse/llama-server-completions.sse"), 0, 1)).await;
    let mut req = GenerationRequest::chat("The capital of France is");
    req.endpoint = Endpoint::Completions;
    let r = client(&base).generate(&req).await.expect("generation");
    assert!(r.text.starts_with(" Paris."), "{:?}", r.text);
    assert_eq!(r.completion_tokens, 12);
    assert_eq!(r.count_source, CountSource::ServerUsage);
    assert_eq!(r.finish_reason.as_deref(), Some("length"));
}

#[tokio::test]
async fn llama_server_bad_request_recording() {
    let raw = test_data("sse/llama-server-bad-request.http");
    let err = run(vec![Step::Write(raw)]).await.expect_err("400");
    match err {
        ClientError::Http {
            status, message, ..
        } => {
            assert_eq!(status, 400);
            assert_eq!(message, "Expected 'messages' to be an array");
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

#[tokio::test]
async fn reasoning_comes_before_visible_output() {
    let r = run(paced(&test_data("sse/vllm-chat-reasoning.sse"), 10, 40))
        .await
        .expect("generation");
    assert_eq!(r.reasoning, "The user greets.");
    assert_eq!(r.text, "Hello!");
    let (ttft, ttfo) = (r.ttft.expect("ttft"), r.ttfo.expect("ttfo"));
    // Reasoning arrives at 50 ms, visible content at 130 ms (server-side sleeps).
    assert!(ttft >= Duration::from_millis(50), "ttft {ttft:?}");
    assert!(ttfo >= Duration::from_millis(130), "ttfo {ttfo:?}");
    assert!(ttfo > ttft, "ttft {ttft:?}, ttfo {ttfo:?}");
    assert_eq!(r.completion_tokens, 6);
    assert_eq!(r.chunk_times.len(), 4);
}

#[tokio::test]
async fn tool_call_deltas_are_output() {
    let r = run(paced(&test_data("sse/vllm-chat-tool-calls.sse"), 0, 1))
        .await
        .expect("generation");
    assert_eq!(r.tool_calls.len(), 2);
    assert_eq!(r.finish_reason.as_deref(), Some("tool_calls"));
    assert!(r.ttfo.is_some());
    assert_eq!(r.text, "");
}

#[tokio::test]
async fn several_tokens_in_one_chunk_use_server_counts() {
    let r = run(paced(&test_data("sse/sglang-chat-multitoken.sse"), 0, 1))
        .await
        .expect("generation");
    assert_eq!(r.text, "The sky is blue today.");
    assert_eq!(r.chunk_times.len(), 2);
    assert_eq!(r.completion_tokens, 6);
    assert_eq!(r.count_source, CountSource::ServerUsage);
}

#[tokio::test]
async fn tgi_stream_without_role_prelude() {
    let r = run(paced(&test_data("sse/tgi-chat.sse"), 0, 1))
        .await
        .expect("generation");
    assert_eq!(r.text, "Deep learning is");
    assert_eq!(r.completion_tokens, 3);
    assert_eq!(r.finish_reason.as_deref(), Some("length"));
}

#[tokio::test]
async fn without_usage_counts_fall_back_to_chunks_and_say_so() {
    let r = run(paced(&test_data("sse/generic-no-usage.sse"), 0, 1))
        .await
        .expect("generation");
    assert_eq!(r.text, "Hi there");
    assert_eq!(r.completion_tokens, 2);
    assert_eq!(r.count_source, CountSource::ChunkCount);
    assert_eq!(r.prompt_tokens, None);
}

#[tokio::test]
async fn ollama_sends_its_usage_after_the_finish_chunk() {
    let r = run(paced(&test_data("sse/ollama-chat.sse"), 0, 1))
        .await
        .expect("generation");
    assert_eq!(r.text, "Hi there");
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    assert_eq!(r.completion_tokens, 2);
    assert_eq!(r.prompt_tokens, Some(26));
    assert_eq!(r.count_source, CountSource::ServerUsage);
}

async fn tgi_completions(steps: Vec<Step>) -> Result<GenerationResult, ClientError> {
    let base = canned_server(steps).await;
    let mut req = GenerationRequest::chat("The capital of France is");
    req.endpoint = Endpoint::Completions;
    client(&base).generate(&req).await
}

/// TGI marks unfinished completion chunks with `finish_reason: ""`: not a finish, so a
/// stream cut before its last chunk is incomplete, not done.
#[tokio::test]
async fn tgi_completions_empty_finish_reasons_are_not_finishes() {
    let stream = test_data("sse/tgi-completions.sse");
    let r = tgi_completions(paced(&stream, 0, 1))
        .await
        .expect("generation");
    assert_eq!(r.text, " Paris, the");
    assert_eq!(r.finish_reason.as_deref(), Some("length"));
    assert_eq!(r.completion_tokens, 3);
    let text = String::from_utf8(stream).unwrap();
    let cut: String = text.split_inclusive("\n\n").take(2).collect();
    let e = tgi_completions(paced(cut.as_bytes(), 0, 1))
        .await
        .expect_err("two chunks and no finish");
    assert!(matches!(e, ClientError::Truncated { chunks: 2, .. }), "{e}");
}

/// TGI's in-stream "overloaded" error is a refusal for capacity: retryable, counted apart.
#[tokio::test]
async fn tgi_overloaded_in_the_stream_is_an_overload() {
    let e = run(paced(&test_data("sse/tgi-overloaded.sse"), 0, 1))
        .await
        .expect_err("overloaded");
    assert!(matches!(e, ClientError::Overloaded { .. }), "{e}");
    assert!(e.is_transient() && e.is_overload());
    assert!(e.to_string().contains("Model is overloaded"), "{e}");
}

#[tokio::test]
async fn error_object_mid_stream() {
    let err = run(paced(&test_data("sse/vllm-error-midstream.sse"), 0, 1))
        .await
        .expect_err("stream error");
    match err {
        ClientError::StreamError {
            chunks, message, ..
        } => {
            assert_eq!(chunks, 1);
            assert_eq!(message, "CUDA out of memory while decoding");
        }
        other => panic!("expected a stream error, got {other:?}"),
    }
}

#[tokio::test]
async fn keepalive_comments_and_crlf() {
    let body = ": ping\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\n: ping\r\n\r\ndata: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\ndata: [DONE]\r\n\r\n";
    let r = run(vec![head("200 OK", "text/event-stream"), write(body)])
        .await
        .expect("generation");
    assert_eq!(r.text, "a");
    assert_eq!(r.keepalives, 2);
}

#[tokio::test]
async fn utf8_split_across_reads() {
    let event = "data: {\"choices\":[{\"delta\":{\"content\":\"日本é\"}}]}\n\n".as_bytes();
    let cut = event
        .iter()
        .position(|&b| b == 0xE6)
        .expect("multi-byte char")
        + 1;
    let steps = vec![
        head("200 OK", "text/event-stream"),
        write(&event[..cut]),
        sleep_ms(30),
        write(&event[cut..]),
        write(
            "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
        ),
    ];
    let r = run(steps).await.expect("generation");
    assert_eq!(r.text, "日本é");
}

#[tokio::test]
async fn stream_without_done_but_finished_is_accepted() {
    let body = "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}";
    let r = run(vec![head("200 OK", "text/event-stream"), write(body)])
        .await
        .expect("generation");
    assert_eq!(r.text, "ok");
    assert!(!r.done_marker);
}

#[tokio::test]
async fn stream_closed_mid_answer_is_truncated() {
    let body = "data: {\"choices\":[{\"delta\":{\"content\":\"half\"}}]}\n\n";
    let err = run(vec![head("200 OK", "text/event-stream"), write(body)])
        .await
        .expect_err("truncated");
    assert!(
        matches!(err, ClientError::Truncated { chunks: 1, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn http_500_with_json_body() {
    let body = r#"{"error":{"message":"engine overloaded","type":"server_error"}}"#;
    let err = run(vec![
        head("500 Internal Server Error", "application/json"),
        write(body),
    ])
    .await
    .expect_err("500");
    assert!(
        matches!(&err, ClientError::Http { status: 500, message, .. } if message == "engine overloaded"),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn http_502_with_html_body() {
    let body = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";
    let err = run(vec![head("502 Bad Gateway", "text/html"), write(body)])
        .await
        .expect_err("502");
    let text = err.to_string();
    assert!(
        text.contains("HTTP 502") && text.contains("Bad Gateway"),
        "{text}"
    );
    assert!(!text.contains("<title>"), "{text}");
}

#[tokio::test]
async fn html_answered_with_200_is_a_protocol_error() {
    let body = "data: <html>oops</html>\n\n";
    let err = run(vec![head("200 OK", "text/event-stream"), write(body)])
        .await
        .expect_err("not json");
    assert!(matches!(err, ClientError::Protocol { .. }), "{err:?}");
}

#[tokio::test]
async fn stalled_stream_hits_the_read_timeout() {
    let steps = vec![
        head("200 OK", "text/event-stream"),
        write("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"),
        Step::Stall(Duration::from_secs(5)),
    ];
    let started = std::time::Instant::now();
    let err = run(steps).await.expect_err("stall");
    assert!(matches!(err, ClientError::ReadTimeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn stalled_headers_hit_the_read_timeout() {
    let err = run(vec![Step::Stall(Duration::from_secs(5))])
        .await
        .expect_err("stall");
    assert!(matches!(err, ClientError::ReadTimeout { .. }), "{err:?}");
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port(); // the listener is dropped here, so nothing listens
    let err = client(&format!("http://127.0.0.1:{port}"))
        .generate(&GenerationRequest::chat("hi"))
        .await
        .expect_err("refused");
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&port.to_string()));
}

#[tokio::test]
async fn non_streaming_response() {
    let body = r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
    let base = canned_server(vec![
        head("200 OK", "application/json"),
        sleep_ms(50),
        write(body),
    ])
    .await;
    let mut req = GenerationRequest::chat("hi");
    req.stream = false;
    let r = client(&base).generate(&req).await.expect("generation");
    assert_eq!(r.text, "Hello there");
    assert_eq!(r.completion_tokens, 2);
    assert!(r.e2e >= Duration::from_millis(50));
}

#[tokio::test]
async fn a_kept_alive_connection_closed_by_the_server_is_retried_on_a_fresh_one() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: keep-alive\r\n\r\n{body}",
        body.len()
    );
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        // First connection: answer one request, read the next, close without answering.
        let (mut first, _) = listener.accept().await.unwrap();
        common::read_request(&mut first).await;
        first.write_all(answer.as_bytes()).await.unwrap();
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        common::read_request(&mut first).await;
        drop(first);
        // The retry arrives on a fresh connection.
        let (mut second, _) = listener.accept().await.unwrap();
        common::read_request(&mut second).await;
        second.write_all(answer.as_bytes()).await.unwrap();
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let c = client(&base);
    let a = c
        .generate(&GenerationRequest::chat("one"))
        .await
        .expect("first");
    let b = c
        .generate(&GenerationRequest::chat("two"))
        .await
        .expect("second, retried");
    assert_eq!((a.text.as_str(), b.text.as_str()), ("ok", "ok"));
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 2);
}
