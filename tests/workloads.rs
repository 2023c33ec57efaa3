//! Production-shaped workloads held to the simulator's exact arithmetic: prompts that share
//! prefixes on purpose are served from its prefix cache just as their parameters say.

mod common;
#[path = "common/bench.rs"]
mod harness;

use std::time::Duration;

use harness::{metric, simulator, start};
use serde_json::json;

/// A load of 8 requests, 2 groups sharing 40-word prefixes, 8 words each of their own.
async fn shared_prefix_load(prime: bool) -> kitt::bench::BenchResult {
    let dir = tempfile::tempdir().unwrap();
    // 1 ms of prefill a prompt token the cache did not serve; blocks of 4 words.
    let engine = start(
        &simulator(
            json!({"ttft": "5ms", "itl": "1ms", "prefill": "1000ms", "prefix_block_tokens": 4}),
        ),
        dir.path(),
    )
    .await;
    let r = harness::run_with_telemetry(
        &engine,
        "load",
        json!({"concurrency": 1, "requests": 8, "input_tokens": 8, "output_tokens": 2,
               "shared_prefix": {"groups": 2, "prefix_tokens": 40, "prime": prime}}),
        kitt::telemetry::Settings {
            interval: Duration::from_millis(100),
            ..Default::default()
        },
    )
    .await;
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primed_shared_prefixes_are_served_whole_and_the_expected_hit_rate_is_the_servers() {
    let r = shared_prefix_load(true).await;
    // Sent: 2 primes of 40 words, 8 requests of 40 + 1 (salt and number) + 8 words. Every
    // request finds its prefix's 10 whole blocks cached; the primes find nothing.
    assert_eq!(metric(&r, "server_prompt_tokens"), 2.0 * 40.0 + 8.0 * 49.0);
    assert_eq!(metric(&r, "prefix_cache_hit_tokens"), 8.0 * 40.0);
    let expected = 320.0 / 472.0;
    assert!((metric(&r, "expected_prefix_cache_hit_rate") - expected).abs() < 1e-12);
    assert!((metric(&r, "prefix_cache_hit_rate") - expected).abs() < 1e-12);
    // TTFT is the base plus the 9 uncached tokens' prefill, for every measured request.
    for name in ["ttft_p50_ms", "ttft_p99_ms"] {
        let ttft = metric(&r, name);
        assert!((14.0..44.0).contains(&ttft), "{name} {ttft}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprimed_shared_prefixes_miss_once_per_group() {
    let r = shared_prefix_load(false).await;
    // The first request of each group computes its prefix; the other six hit it.
    assert_eq!(metric(&r, "server_prompt_tokens"), 8.0 * 49.0);
    assert_eq!(metric(&r, "prefix_cache_hit_tokens"), 6.0 * 40.0);
    let expected = 240.0 / 392.0;
    assert!((metric(&r, "expected_prefix_cache_hit_rate") - expected).abs() < 1e-12);
    assert!((metric(&r, "prefix_cache_hit_rate") - expected).abs() < 1e-12);
    // Two requests paid 49 tokens of prefill, six only 9: the p99 shows the cold ones.
    assert!(metric(&r, "ttft_p50_ms") < 44.0);
    assert!(metric(&r, "ttft_p99_ms") >= 54.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_on_the_simulator_take_its_prefill_per_input_word() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(
        &simulator(
            json!({"ttft": "5ms", "prefill": "1000ms", "max_concurrency": 2, "embedding_dim": 16}),
        ),
        dir.path(),
    )
    .await;
    let r = harness::run_with_telemetry(
        &engine,
        "embeddings",
        json!({"requests": 6, "concurrency": 2, "batch_size": 3, "input_tokens": 10}),
        Default::default(),
    )
    .await;
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "requests"), 6.0);
    assert_eq!(metric(&r, "errors"), 0.0);
    assert_eq!(metric(&r, "embedding_dim"), 16.0);
    // Three inputs of ten words: 5 ms plus 30 ms of prefill, two requests at a time.
    assert_eq!(metric(&r, "input_tokens_mean"), 10.0);
    for name in ["latency_p50_ms", "latency_max_ms"] {
        let ms = metric(&r, name);
        assert!((35.0..65.0).contains(&ms), "{name} {ms}");
    }
    let rate = metric(&r, "inputs_per_s");
    assert!((3.0 * metric(&r, "requests_per_s") - rate).abs() < 1e-6 * rate);
    // The client counted every input token the server reported.
    assert_eq!(metric(&r, "client_prompt_tokens"), 180.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_on_the_real_llama_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = common::llama_spec(&[]);
    spec.config.insert("embeddings".into(), json!(true));
    spec.config.insert("pooling".into(), json!("mean"));
    let engine = start(&spec, dir.path()).await;
    let r = harness::run_with_telemetry(
        &engine,
        "embeddings",
        json!({"requests": 8, "concurrency": 2, "batch_size": 4, "input_tokens": 24}),
        Default::default(),
    )
    .await;
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "requests"), 8.0);
    // SmolLM2-135M's hidden size.
    assert_eq!(metric(&r, "embedding_dim"), 576.0);
    // Its tokenizer splits the salted head and common words into a few more tokens than
    // words, never fewer.
    let tokens = metric(&r, "input_tokens_mean");
    assert!((24.0..80.0).contains(&tokens), "{tokens}");
    assert!(metric(&r, "latency_p50_ms") > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_output_on_the_simulator_validates_unless_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&simulator(json!({"ttft": "5ms", "itl": "1ms"})), dir.path()).await;
    let r = harness::run(
        &engine,
        "structured_output",
        json!({"requests": 5, "concurrency": 2}),
    )
    .await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "requests"), 5.0);
    assert_eq!(metric(&r, "json_parse_ratio"), 1.0);
    assert_eq!(metric(&r, "schema_valid_ratio"), 1.0);
    // `{"color":"red","count":0}` in pieces of four characters.
    assert_eq!(metric(&r, "output_tokens_mean"), 7.0);
    // Two tokens are half a document: nothing parses, and the answers are kept as examples.
    let cut = harness::run(
        &engine,
        "structured_output",
        json!({"requests": 3, "max_tokens": 2}),
    )
    .await;
    assert_eq!(metric(&cut, "json_parse_ratio"), 0.0);
    assert_eq!(metric(&cut, "schema_valid_ratio"), 0.0);
    let examples = cut.details["invalid_answers"].as_array().unwrap();
    assert_eq!(examples[0]["answer"], json!(r#"{"color""#));
    assert_eq!(examples[0]["finish_reason"], json!("length"));
    // A schema the validator cannot compile is a params error at its key.
    let bad = harness::run_with(
        &engine,
        "structured_output",
        json!({"schema": {"type": 12}}),
        0,
        dir.path(),
    )
    .await
    .unwrap_err();
    assert!(bad.to_string().contains("no JSON Schema"), "{bad}");
    engine.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_output_on_the_real_llama_server_follows_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&common::llama_spec(&[]), dir.path()).await;
    let r = harness::run(
        &engine,
        "structured_output",
        json!({"requests": 3, "max_tokens": 48}),
    )
    .await;
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    // llama-server turns the schema into a grammar: every answer follows it.
    assert_eq!(metric(&r, "schema_valid_ratio"), 1.0, "{:?}", r.details);
    assert!(metric(&r, "output_tokens_mean") >= 5.0);
}
