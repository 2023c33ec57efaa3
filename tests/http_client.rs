//! kitt's own HTTP/1.1 client (plain `http` endpoints) against a keep-alive test server:
//! chunked and length-framed answers split at awkward places, connections kept and reused,
//! a kept connection the server closed meanwhile, and the request as the server sees it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kitt::engine::client::{Client, ClientError, ClientOptions};
use kitt::engine::generation::GenerationRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the test server saw and did.
#[derive(Default)]
struct Seen {
    connections: usize,
    requests: Vec<(String, Vec<u8>)>,
}

/// A keep-alive server answering each request with `answer` written in `pieces` (each its
/// own write, 2 ms apart), closing a connection after `per_connection` answers.
async fn server(answer: Vec<Vec<u8>>, per_connection: usize) -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            log.lock().unwrap().connections += 1;
            tokio::spawn(serve(socket, answer.clone(), per_connection, log.clone()));
        }
    });
    (base, seen)
}

async fn serve(
    mut socket: TcpStream,
    answer: Vec<Vec<u8>>,
    per_connection: usize,
    log: Arc<Mutex<Seen>>,
) {
    let _ = socket.set_nodelay(true);
    let mut buffer = Vec::new();
    for _ in 0..per_connection {
        let Some(request) = read_request(&mut socket, &mut buffer).await else {
            return;
        };
        log.lock().unwrap().requests.push(request);
        for piece in &answer {
            if socket.write_all(piece).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let _ = socket.shutdown().await;
}

/// One request's head and body, or None when the client closed the connection.
async fn read_request(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let n = socket.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
                buffer.extend_from_slice(&chunk[..n]);
            }
            let body = buffer[end + 4..end + 4 + length].to_vec();
            buffer.drain(..end + 4 + length);
            return Some((head, body));
        }
        let n = socket.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// The SSE stream of a three-token answer.
fn sse() -> String {
    let mut s = String::new();
    for word in ["one", " two", " three"] {
        s += &format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{word}\"}}}}]}}\n\n");
    }
    s += "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\n";
    s += "data: [DONE]\n\n";
    s
}

/// `body` in chunked coding, cut into pieces that split chunk sizes, data and line ends.
fn chunked_pieces(body: &str) -> Vec<Vec<u8>> {
    let mut wire =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for part in body.as_bytes().chunks(37) {
        wire.extend_from_slice(format!("{:x};x=1\r\n", part.len()).as_bytes());
        wire.extend_from_slice(part);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    wire.chunks(29).map(<[u8]>::to_vec).collect()
}

fn client(base: &str, key: Option<&str>) -> Client {
    let options = ClientOptions {
        read_timeout: Duration::from_secs(2),
        ..ClientOptions::default()
    };
    Client::new(base, "m", key.map(String::from), options).expect("client")
}

#[tokio::test]
async fn chunked_streams_are_decoded_and_the_connection_kept() {
    let (base, seen) = server(chunked_pieces(&sse()), 100).await;
    let client = client(&base, Some("sk-test"));
    for _ in 0..3 {
        let r = client
            .generate(&GenerationRequest::chat("hello"))
            .await
            .expect("generation");
        assert_eq!(r.text, "one two three");
        assert_eq!(r.completion_tokens, 3);
        assert_eq!(r.chunk_times.len(), 3);
        assert!(r.done_marker);
        // Each token came in its own write, 2 ms or more apart, and was timed on arrival.
        assert!(r.chunk_times[2] - r.chunk_times[0] >= Duration::from_millis(2));
    }
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.connections, 1,
        "three requests on one kept-alive connection"
    );
    let (head, body) = &seen.requests[0];
    assert!(
        head.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("Authorization: Bearer sk-test"), "{head}");
    assert!(head.contains("Accept: text/event-stream"), "{head}");
    let json: serde_json::Value = serde_json::from_slice(body).expect("JSON body");
    assert_eq!(json["model"], "m");
    assert_eq!(json["stream"], true);
    assert_eq!(json["messages"][0]["content"], "hello");
}

#[tokio::test]
async fn a_kept_connection_the_server_closed_is_replaced() {
    // One answer per connection, without saying `Connection: close`: the client keeps the
    // connection, the server closes it, and the next request must go out on a fresh one.
    let (base, seen) = server(chunked_pieces(&sse()), 1).await;
    let client = client(&base, None);
    for _ in 0..3 {
        let r = client
            .generate(&GenerationRequest::chat("hi"))
            .await
            .expect("generation after the server closed the kept connection");
        assert_eq!(r.text, "one two three");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.connections, 3);
    assert_eq!(
        seen.requests.len(),
        3,
        "each request reached the server once"
    );
}

#[tokio::test]
async fn length_framed_answers_stream_and_complete() {
    let body = sse();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let wire = [head.as_bytes(), body.as_bytes()].concat();
    let (base, seen) = server(wire.chunks(50).map(<[u8]>::to_vec).collect(), 100).await;
    let client = client(&base, None);
    for _ in 0..2 {
        let r = client
            .generate(&GenerationRequest::chat("hi"))
            .await
            .expect("generation");
        assert_eq!(r.text, "one two three");
    }
    // Non-streaming: one JSON document, framed by its length.
    let doc = r#"{"choices":[{"message":{"content":"whole"},"finish_reason":"stop"}],"usage":{"completion_tokens":1}}"#;
    let wire = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{doc}",
        doc.len()
    );
    let (plain, _) = server(vec![wire.into_bytes()], 100).await;
    let mut req = GenerationRequest::chat("hi");
    req.stream = false;
    let r = client_for(&plain)
        .generate(&req)
        .await
        .expect("whole answer");
    assert_eq!(r.text, "whole");
    assert_eq!(seen.lock().unwrap().connections, 1);
}

fn client_for(base: &str) -> Client {
    client(base, None)
}

#[tokio::test]
async fn a_body_cut_short_and_a_malformed_chunk_are_errors() {
    // Content-Length promises more than comes before the connection closes.
    let (base, _) = server(
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n".to_vec()],
        1,
    )
    .await;
    let err = client(&base, None)
        .generate(&GenerationRequest::chat("hi"))
        .await
        .expect_err("cut short");
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains("of 500 body bytes"), "{err}");

    let (base, _) = server(
        vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec()],
        1,
    )
    .await;
    let err = client(&base, None)
        .generate(&GenerationRequest::chat("hi"))
        .await
        .expect_err("malformed");
    assert!(matches!(err, ClientError::Protocol { .. }), "{err:?}");
    assert!(err.to_string().contains("hex chunk size"), "{err}");
}
