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
