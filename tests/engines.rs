//! Engines started for real: the simulator (known timing), llama-server natively, and the
//! model preflight and fault paths. Each start is followed by a check that nothing is left.

mod common;

use std::time::Duration;

use kitt::engine::client::ClientError;
use kitt::engine::error::ErrorKind;
use kitt::engine::generation::{CountSource, GenerationRequest};
use kitt::engine::runtime::StartContext;
use kitt::suite::model::{EngineSpec, RuntimeMode, Sampling};
use serde_json::json;

fn context(dir: &std::path::Path) -> StartContext {
    common::supervisor();
    StartContext {
        run_dir: dir.to_path_buf(),
        default_startup_timeout: Duration::from_secs(60),
        ..StartContext::new_run()
    }
}

fn simulator(config: serde_json::Value) -> EngineSpec {
    EngineSpec {
        uses: "simulator".into(),
        config: serde_json::from_value(config).expect("config object"),
        ..EngineSpec::default()
    }
}

fn request(max_tokens: u32) -> GenerationRequest {
    GenerationRequest {
        sampling: Sampling {
            max_tokens: Some(max_tokens),
            ignore_eos: Some(true),
            ..Sampling::default()
        },
        ..GenerationRequest::chat("one two three")
    }
}

#[tokio::test]
async fn simulator_timing_is_what_its_config_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = kitt::assemble::builtins();
    let spec = simulator(json!({"ttft": "100ms", "itl": "20ms"}));
    let engine = kitt::engine::initialize(&registry, "sim", &spec, &context(dir.path()))
        .await
        .expect("simulator starts");
    let r = engine.generate(&request(10)).await.expect("generation");
    assert_eq!(r.completion_tokens, 10);
    assert_eq!(r.prompt_tokens, Some(3));
    assert_eq!(r.count_source, CountSource::ServerUsage);
    assert_eq!(r.chunk_times.len(), 10);
    let ttft = r.ttft.expect("ttft");
    assert!(ttft >= Duration::from_millis(100), "{ttft:?}");
    assert!(ttft < Duration::from_millis(1000), "{ttft:?}");
    let gaps: Vec<Duration> = r.itl().collect();
    assert_eq!(gaps.len(), 9);
    // The last token is due ttft + 9 × itl after the request got its slot; the server never
    // sends early, so this lower bound holds however loaded the machine is.
    assert!(
        r.chunk_times[9] >= Duration::from_millis(280),
        "{:?}",
        r.chunk_times
    );
    let base = engine.base_url.clone();
    engine.cleanup().await;
    assert!(
        reqwest::get(format!("{base}/health")).await.is_err(),
        "the simulator still answers after cleanup"
    );
}

/// The simulator's `/metrics`, scraped as kitt scrapes.
async fn scrape(base: &str) -> kitt::engine::prometheus::Page {
    let http = kitt::engine::client::http_client(&Default::default()).expect("client");
    kitt::engine::scrape::scrape(
        &http,
        &format!("{base}/metrics"),
        Duration::from_secs(5),
        Default::default(),
    )
    .await
    .expect("a valid page")
}

fn value(page: &kitt::engine::prometheus::Page, name: &str) -> f64 {
    page.series(name).map(|s| s.value).sum()
}

#[tokio::test]
async fn simulator_metrics_count_what_the_client_saw() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = kitt::assemble::builtins();
    let spec = simulator(json!({"ttft": "300ms", "itl": "1ms", "max_concurrency": 1,
                                "kv_cache_tokens": 100}));
    let engine = kitt::engine::initialize(&registry, "sim", &spec, &context(dir.path()))
        .await
        .expect("simulator starts");
    let base = engine.base_url.clone();
    // Two requests at once on one slot: while the first waits for its first token, one runs
    // holding its 3 prompt tokens and one waits.
    let (five, seven) = (request(5), request(7));
    let (first, second, page) =
        tokio::join!(engine.generate(&five), engine.generate(&seven), async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            scrape(&base).await
        });
    assert_eq!(value(&page, "vllm:num_requests_running"), 1.0);
    assert_eq!(value(&page, "vllm:num_requests_waiting"), 1.0);
    assert_eq!(value(&page, "vllm:kv_cache_usage_perc"), 0.03);
    let (first, second) = (first.expect("first"), second.expect("second"));
    let page = scrape(&base).await;
    engine.cleanup().await;
    let client_tokens = first.completion_tokens + second.completion_tokens;
    assert_eq!(client_tokens, 12);
    assert_eq!(
        value(&page, "vllm:generation_tokens_total"),
        client_tokens as f64
    );
    assert_eq!(value(&page, "vllm:prompt_tokens_total"), 6.0);
    assert_eq!(value(&page, "vllm:num_requests_running"), 0.0);
    assert_eq!(value(&page, "vllm:num_requests_waiting"), 0.0);
    assert_eq!(value(&page, "vllm:kv_cache_usage_perc"), 0.0);
    assert_eq!(value(&page, "vllm:num_preemptions_total"), 0.0);
    assert_eq!(value(&page, "vllm:request_success_total"), 2.0);
    assert_eq!(value(&page, "vllm:time_to_first_token_seconds_count"), 2.0);
    // The server's TTFT counts from arrival, so the second request's includes its wait for
    // the slot (about 300 ms): their sum is about 300 + 600 ms, and no more than the
    // client's own TTFTs (which add the way in and out).
    let server_ttft = value(&page, "vllm:time_to_first_token_seconds_sum");
    let client_ttft = (first.ttft.expect("ttft") + second.ttft.expect("ttft")).as_secs_f64();
    assert!(server_ttft >= 0.89, "{server_ttft}");
    assert!(server_ttft <= client_ttft, "{server_ttft} > {client_ttft}");
    assert_eq!(value(&page, "vllm:request_queue_time_seconds_count"), 2.0);
}

#[tokio::test]
async fn simulator_queues_beyond_max_concurrency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = kitt::assemble::builtins();
    let spec = simulator(json!({"ttft": "50ms", "itl": "10ms", "max_concurrency": 1}));
    let engine = kitt::engine::initialize(&registry, "sim", &spec, &context(dir.path()))
        .await
        .expect("simulator starts");
    let req = request(10);
    let (a, b) = tokio::join!(engine.generate(&req), engine.generate(&req));
    let (a, b) = (a.expect("first"), b.expect("second"));
    let (first, second) = if a.ttft <= b.ttft { (a, b) } else { (b, a) };
    // One slot: the second request waits for the whole first answer (50 + 9 × 10 ms).
    assert!(
        second.ttft.expect("ttft") >= first.e2e.min(Duration::from_millis(140)),
        "first e2e {:?}, second ttft {:?}",
        first.e2e,
        second.ttft
    );
    engine.cleanup().await;
}

#[tokio::test]
async fn simulator_error_rate_gives_http_500() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = kitt::assemble::builtins();
    let spec = simulator(json!({"error_rate": 1.0}));
    let engine = kitt::engine::initialize(&registry, "sim", &spec, &context(dir.path()))
        .await
        .expect("simulator starts");
    let err = engine.generate(&request(5)).await.expect_err("500");
    assert!(
        matches!(err, ClientError::Http { status: 500, .. }),
        "{err:?}"
    );
    engine.cleanup().await;
}

#[tokio::test]
async fn wrong_model_format_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = kitt::assemble::builtins();
    let spec = EngineSpec {
        uses: "llama.cpp".into(),
        mode: Some(RuntimeMode::Native),
        model: Some("meta-llama/Llama-3.1-8B".into()),
        ..EngineSpec::default()
    };
    let err = kitt::engine::initialize(&registry, "local", &spec, &context(dir.path()))
        .await
        .expect_err("format mismatch");
    assert_eq!(err.kind, ErrorKind::Config);
    let text = err.to_string();
    assert!(text.contains("safetensors"), "{text}");
    assert!(
        text.contains("`vllm`") && text.contains("`sglang`"),
        "{text}"
    );
    assert!(
        !dir.path().join("local.log").exists(),
        "something was started"
    );
}

#[tokio::test]
async fn missing_model_path_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = EngineSpec {
        uses: "llama.cpp".into(),
        mode: Some(RuntimeMode::Native),
        model: Some("/no/such/model.gguf".into()),
        ..EngineSpec::default()
    };
    let err = kitt::engine::initialize(
        &kitt::assemble::builtins(),
        "local",
        &spec,
        &context(dir.path()),
    )
    .await
    .expect_err("missing model");
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(err.to_string().contains("/no/such/model.gguf"), "{err}");
}

#[tokio::test]
async fn unreachable_external_endpoint_is_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let spec = EngineSpec {
        uses: "openai".into(),
        url: Some(format!("http://127.0.0.1:{port}")),
        model: Some("gpt".into()),
        startup_timeout: Some(kitt::suite::model::Duration(Duration::from_millis(300))),
        ..EngineSpec::default()
    };
    let err = kitt::engine::initialize(
        &kitt::assemble::builtins(),
        "remote",
        &spec,
        &context(dir.path()),
    )
    .await
    .expect_err("unreachable");
    assert_eq!(err.kind, ErrorKind::Unavailable);
    let text = err.to_string();
    assert!(
        text.contains("remote") && text.contains(&port.to_string()),
        "{text}"
    );
}

fn process_exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

#[tokio::test]
async fn llama_server_native_agrees_with_its_own_timings() {
    if common::skipped("llama") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = common::llama_spec(&[]);
    let engine = kitt::engine::initialize(
        &kitt::assemble::builtins(),
        "local",
        &spec,
        &context(dir.path()),
    )
    .await
    .unwrap_or_else(|e| panic!("llama-server starts: {e}"));
    let pid = engine.pid().expect("native pid");
    let mut req = request(16);
    req.sampling.temperature = Some(0.0);
    req.prompt = "Name three colors.".into();
    let r = engine.generate(&req).await.expect("generation");
    let timings = r.server_timings.expect("llama-server sends timings");
    // Token counts: kitt's come from the server's usage and match its own timing report.
    assert_eq!(r.count_source, CountSource::ServerUsage);
    assert_eq!(Some(r.completion_tokens), timings.predicted_n);
    assert_eq!(r.prompt_tokens, timings.prompt_n);
    assert!(r.completion_tokens >= 1 && r.completion_tokens <= 16);
    // TTFT covers the server's prompt processing plus the first decode step and transport.
    let ttft_ms = r.ttft.expect("ttft").as_secs_f64() * 1e3;
    let prompt_ms = timings.prompt_ms.expect("prompt_ms");
    let predicted_ms = timings.predicted_ms.expect("predicted_ms");
    assert!(
        ttft_ms >= prompt_ms,
        "ttft {ttft_ms} ms < prompt {prompt_ms} ms"
    );
    assert!(
        ttft_ms <= prompt_ms + predicted_ms + 250.0,
        "ttft {ttft_ms} ms is far beyond prompt {prompt_ms} + generation {predicted_ms} ms"
    );
    let e2e_ms = r.e2e.as_secs_f64() * 1e3;
    assert!(e2e_ms >= prompt_ms + predicted_ms * 0.9, "e2e {e2e_ms} ms");
    assert!(!r.text.is_empty());
    // Non-streaming and /v1/completions work too.
    let mut plain = req.clone();
    plain.stream = false;
    let p = engine.generate(&plain).await.expect("non-streaming");
    assert!(p.completion_tokens >= 1);
    engine.cleanup().await;
    assert!(
        !process_exists(pid),
        "llama-server {pid} still runs after cleanup"
    );
}

#[tokio::test]
async fn llama_server_that_exits_at_start_fails_fast_with_its_log() {
    if common::skipped("llama") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = common::llama_spec(&["--no-such-flag"]);
    let started = std::time::Instant::now();
    let err = kitt::engine::initialize(
        &kitt::assemble::builtins(),
        "local",
        &spec,
        &context(dir.path()),
    )
    .await
    .expect_err("bad flag");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited for the deadline"
    );
    assert_eq!(err.kind, ErrorKind::Failed);
    let text = err.to_string();
    assert!(text.contains("exited"), "{text}");
    assert!(
        text.contains("no-such-flag"),
        "the log tail is shown: {text}"
    );
}

#[tokio::test]
async fn missing_binary_names_the_setting_to_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("m.gguf");
    std::fs::write(&model, b"GGUF").expect("write");
    let mut spec = EngineSpec {
        uses: "llama.cpp".into(),
        mode: Some(RuntimeMode::Native),
        model: Some(model.display().to_string()),
        ..EngineSpec::default()
    };
    spec.config
        .insert("binary".into(), json!("/no/such/llama-server"));
    let err = kitt::engine::initialize(
        &kitt::assemble::builtins(),
        "local",
        &spec,
        &context(dir.path()),
    )
    .await
    .expect_err("no binary");
    assert_eq!(err.kind, ErrorKind::Config);
    assert!(err.to_string().contains("config.binary"), "{err}");
}

/// A scrape of a server that misbehaves ends within its deadline with what went wrong.
#[tokio::test]
async fn scrapes_of_bad_servers_end_in_time_with_the_reason() {
    use common::{head, write};
    use kitt::engine::prometheus::Limits;
    use kitt::engine::scrape::{ScrapeError, scrape};
    let http = kitt::engine::client::http_client(&Default::default()).expect("client");
    let deadline = Duration::from_millis(500);
    let limits = Limits {
        bytes: 4096,
        ..Limits::default()
    };
    let stalls = common::canned_server(vec![
        head("200 OK", "text/plain"),
        write("a 1\n"),
        common::Step::Stall(Duration::from_secs(30)),
    ])
    .await;
    let garbage = common::canned_server(vec![head("200 OK", "text/plain"), write("a{ 1\n")]).await;
    let huge = common::canned_server(vec![
        head("200 OK", "text/plain"),
        write("a 1\n".repeat(2000)),
    ])
    .await;
    let refused = common::canned_server(vec![head("503 Service Unavailable", "text/plain")]).await;
    let gone = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let started = std::time::Instant::now();
    let stalled = scrape(&http, &format!("{stalls}/metrics"), deadline, limits).await;
    assert!(
        matches!(stalled, Err(ScrapeError::TimedOut { .. })),
        "{stalled:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let parsed = scrape(&http, &format!("{garbage}/metrics"), deadline, limits).await;
    assert!(
        matches!(&parsed, Err(ScrapeError::Parse { .. }))
            && parsed.as_ref().unwrap_err().to_string().contains("line 1"),
        "{parsed:?}"
    );
    let big = scrape(&http, &format!("{huge}/metrics"), deadline, limits).await;
    assert!(
        matches!(big, Err(ScrapeError::TooLarge { limit: 4096, .. })),
        "{big:?}"
    );
    let status = scrape(&http, &format!("{refused}/metrics"), deadline, limits).await;
    assert!(
        matches!(status, Err(ScrapeError::Status { status: 503, .. })),
        "{status:?}"
    );
    let nobody = scrape(&http, &format!("{gone}/metrics"), deadline, limits).await;
    assert!(
        matches!(nobody, Err(ScrapeError::Transport(_))),
        "{nobody:?}"
    );
    // And a server that answers well gives its page.
    let good = common::canned_server(vec![
        head("200 OK", "text/plain"),
        write("# TYPE a counter\na_total 7\n"),
    ])
    .await;
    let page = scrape(&http, &format!("{good}/metrics"), deadline, limits)
        .await
        .expect("a page");
    assert_eq!(page.series("a_total").next().map(|s| s.value), Some(7.0));
}
