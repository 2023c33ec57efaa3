//! The hostile-server matrix: servers that stall at each step, drip, stream without end,
//! send giant lines or invalid framing, keep the connection alive with comments, answer
//! 429/500 mid-run or reset the connection. Each case is `kitt test run latency` through the
//! binary against a loopback server of the test's own; each must end within its deadline
//! with a named error, and kitt's peak memory must stay under MEMORY_BOUND_KIB.
//! (Defects 3 and 9 of the December 2026 adversarial round.)

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::binary::{Env, Run};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// The most memory kitt may use against any hostile server (its own baseline is ~30 MiB).
const MEMORY_BOUND_KIB: u64 = 150 * 1024;

/// What a hostile server does with each connection, after reading the request.
type Behaviour =
    Arc<dyn Fn(TcpStream, u64) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

/// Serves `behaviour` on a loopback port from a thread of its own; returns the base URL.
fn serve(behaviour: Behaviour) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let count = Arc::new(AtomicU64::new(0));
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let behaviour = behaviour.clone();
                let count = count.clone();
                tokio::spawn(async move {
                    let get = common::read_request(&mut socket)
                        .await
                        .is_some_and(|r| r.starts_with(b"GET "));
                    let _ = socket.set_nodelay(true);
                    if get {
                        // The health check is answered; only generation requests are hostile.
                        let body = "{\"object\":\"list\",\"data\":[{\"id\":\"m\"}]}";
                        let _ = socket
                            .write_all(
                                format!(
                                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                    body.len()
                                )
                                .as_bytes(),
                            )
                            .await;
                        return;
                    }
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    behaviour(socket, n).await;
                });
            }
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

const SSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";

fn token(i: u64) -> String {
    format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{i} \"}}}}]}}\n\n")
}

/// Runs one latency request against `url` with a 3 s request deadline, 8 output tokens.
fn run(url: &str, extra: &[&str], limit: Duration) -> Run {
    let env = Env::new();
    let mut args = vec![
        "test",
        "run",
        "latency",
        "--engine",
        "openai",
        "--url",
        url,
        "--model",
        "m",
        "--request-timeout",
        "3s",
        "-p",
        "output_tokens=8",
    ];
    args.extend_from_slice(extra);
    if !extra.iter().any(|a| a.starts_with("requests=")) {
        args.extend_from_slice(&["-p", "requests=1"]);
    }
    env.run(&args, limit)
}

/// Asserts that a run ended in time with `error` named, within the memory bound.
fn assert_named(case: &str, r: &Run, error: &str) {
    assert_eq!(r.code(), Some(1), "{case}: {}", r.text());
    assert!(
        r.text().contains(error),
        "{case}: expected `{error}` in:\n{}",
        r.text()
    );
    assert!(
        r.peak_kib < MEMORY_BOUND_KIB,
        "{case}: kitt peaked at {} KiB",
        r.peak_kib
    );
}

fn behaviour<F, Fut>(f: F) -> Behaviour
where
    F: Fn(TcpStream, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    Arc::new(move |s, n| Box::pin(f(s, n)))
}

#[test]
fn stalls_at_each_step_end_at_the_request_deadline() {
    let silent = serve(behaviour(|s, _| async move {
        let _held = s;
        tokio::time::sleep(Duration::from_secs(60)).await;
    }));
    let after_head = serve(behaviour(|mut s, _| async move {
        let _ = s.write_all(SSE_HEAD).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
    }));
    let after_a_token = serve(behaviour(|mut s, _| async move {
        let _ = s.write_all(SSE_HEAD).await;
        let _ = s.write_all(token(0).as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
    }));
    let mid_chunk = serve(behaviour(|mut s, _| async move {
        let _ = s.write_all(SSE_HEAD).await;
        let _ = s.write_all(b"data: {\"choi").await;
        tokio::time::sleep(Duration::from_secs(60)).await;
    }));
    for (case, url) in [
        ("no answer", silent),
        ("headers then nothing", after_head),
        ("a token then nothing", after_a_token),
        ("half a chunk then nothing", mid_chunk),
    ] {
        let r = run(&url, &[], Duration::from_secs(20));
        assert_named(case, &r, "did not finish within 3s (request timeout)");
        assert!(
            r.elapsed < Duration::from_secs(10),
            "{case}: {:?}",
            r.elapsed
        );
    }
}

#[test]
fn keep_alive_comments_and_drips_cannot_hold_a_request_open() {
    let comments = serve(behaviour(|mut s, _| async move {
        let _ = s.write_all(SSE_HEAD).await;
        loop {
            if s.write_all(b": keep-alive\n\n").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }));
    let drip = serve(behaviour(|mut s, _| async move {
        let _ = s.write_all(SSE_HEAD).await;
        for b in token(0).bytes().cycle() {
            if s.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }));
    for (case, url) in [("comments forever", comments), ("one byte at a time", drip)] {
        let r = run(&url, &[], Duration::from_secs(20));
        assert_named(case, &r, "did not finish within 3s (request timeout)");
    }
}

#[test]
fn endless_streams_stop_at_their_caps() {
    let endless_tokens = serve(behaviour(|mut s, _| async move {
        let _ = s.write_all(SSE_HEAD).await;
        for i in 0.. {
            if s.write_all(token(i).as_bytes()).await.is_err() {
                return;
            }
        }
    }));
    let endless_event = serve(behaviour(|mut s, _| async move {
        let _ = s.write_all(SSE_HEAD).await;
        let line = format!("data: {}\n", "x".repeat(64 * 1024));
        loop {
            if s.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    }));
    let endless_line = serve(behaviour(|mut s, _| async move {
        let _ = s.write_all(SSE_HEAD).await;
        let _ = s.write_all(b"data: ").await;
        let block = vec![b'y'; 1 << 20];
        for _ in 0..100 {
            if s.write_all(&block).await.is_err() {
                return;
            }
        }
    }));
    for (case, url, error) in [
        (
            "tokens without end for an 8-token request",
            endless_tokens,
            "more than 72 output chunks for a request of at most 8 tokens",
        ),
        (
            "data lines without an event end",
            endless_event,
            "gathered more than 4194304 bytes",
        ),
        (
            "a 100 MB line",
            endless_line,
            "longer than 4194304 bytes without a line end",
        ),
    ] {
        let r = run(&url, &[], Duration::from_secs(30));
        assert_named(case, &r, error);
    }
}

#[test]
fn invalid_framing_and_giant_heads_are_named() {
    let chunked = |body: &'static [u8]| {
        serve(behaviour(move |mut s, _| async move {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            let _ = s.write_all(body).await;
        }))
    };
    let giant_head = serve(behaviour(|mut s, _| async move {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nX-Big: ").await;
        let _ = s.write_all(&vec![b'h'; 2 << 20]).await;
    }));
    let giant_error = serve(behaviour(|mut s, _| async move {
        let _ = s
            .write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 209715200\r\n\r\n")
            .await;
        let block = vec![b'e'; 1 << 20];
        for _ in 0..200 {
            if s.write_all(&block).await.is_err() {
                return;
            }
        }
    }));
    let garbage_status = serve(behaviour(|mut s, _| async move {
        let _ = s.write_all(b"HELLO THERE\r\n\r\n").await;
    }));
    for (case, url, error) in [
        (
            "non-hex chunk size",
            chunked(b"zz\r\nhello\r\n"),
            "expected a hex chunk size",
        ),
        (
            "20-digit chunk size",
            chunked(b"FFFFFFFFFFFFFFFFFFFF\r\n"),
            "chunk size too large",
        ),
        ("a 2 MiB header", giant_head, "64 KiB"),
        ("a 200 MB error body", giant_error, "HTTP 500"),
        ("no status line", garbage_status, "cannot read"),
    ] {
        let r = run(&url, &[], Duration::from_secs(20));
        assert_named(case, &r, error);
    }
}

#[test]
fn errors_mid_run_are_counted_and_resets_named() {
    // Every second request is refused (429, then 500); the others succeed.
    let flaky = serve(behaviour(|mut s, n| async move {
        if n % 2 == 1 {
            let status = if n % 4 == 1 {
                "429 Too Many Requests"
            } else {
                "500 Internal Server Error"
            };
            let body = format!("{{\"error\":{{\"message\":\"busy {n}\"}}}}");
            let _ = s
                .write_all(
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
            return;
        }
        let _ = s.write_all(SSE_HEAD).await;
        for i in 0..8 {
            let _ = s.write_all(token(i).as_bytes()).await;
        }
        let _ = s
            .write_all(b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n")
            .await;
    }));
    let r = run(
        &flaky,
        &["-p", "requests=8", "--json"],
        Duration::from_secs(30),
    );
    assert_eq!(r.code(), Some(0), "half succeeded: {}", r.text());
    let result: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON result");
    let error_rate = result["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "error_rate")
        .unwrap()["value"]
        .as_f64()
        .unwrap();
    assert!((error_rate - 0.5).abs() < 1e-9, "{error_rate}");
    assert!(
        r.text().contains("HTTP 429") || r.text().contains("HTTP 500"),
        "{}",
        r.text()
    );
    assert!(r.peak_kib < MEMORY_BOUND_KIB);
    // A connection reset in the middle of a stream.
    let reset = serve(behaviour(|mut s, _| async move {
        let _ = s.write_all(SSE_HEAD).await;
        let _ = s.write_all(token(0).as_bytes()).await;
        // SO_LINGER 0: closing sends a reset (blocking on drop is fine in this test).
        #[allow(deprecated)]
        let _ = s.set_linger(Some(Duration::ZERO));
        drop(s);
    }));
    let r = run(&reset, &[], Duration::from_secs(20));
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(
        r.text().contains("reset") || r.text().contains("closed the stream after 1 chunks"),
        "{}",
        r.text()
    );
}

#[test]
fn answers_without_output_or_without_a_stream_are_errors() {
    let empty = serve(behaviour(|mut s, _| async move {
        let _ = s.write_all(SSE_HEAD).await;
        let _ = s
            .write_all(b"data: {\"choices\":[]}\n\ndata: {\"choices\":[]}\n\ndata: [DONE]\n\n")
            .await;
    }));
    let whole = serve(behaviour(|mut s, _| async move {
        let body = "{\"choices\":[{\"index\":0,\"message\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}";
        let _ = s
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
    }));
    for (case, url, error) in [
        ("no choices, then [DONE]", empty, "without any output"),
        (
            "a whole JSON answer to a streaming request",
            whole,
            "did not stream",
        ),
    ] {
        let r = run(&url, &[], Duration::from_secs(20));
        assert_named(case, &r, error);
    }
}
