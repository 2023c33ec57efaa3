//! Performance benchmarks against the simulator, whose timing is known: each metric must
//! match that timing. Tolerances: the simulator guarantees lower bounds (it never answers
//! early); upper bounds allow 30 ms per request for scheduling on a busy 2-core machine.
//! Per-token figures (tpot, itl) get ±2 ms: a late first token shortens the gaps after it,
//! since the simulator keeps each token on its own schedule.

mod common;
#[path = "common/bench.rs"]
mod harness;

use harness::{metric, run, run_with, simulator, start, within};
use serde_json::json;

const SLACK_MS: f64 = 30.0;
const TOKEN_SLACK_MS: f64 = 2.0;

#[tokio::test]
async fn latency_matches_the_simulators_timing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(
        &simulator(json!({"ttft": "40ms", "itl": "8ms"})),
        dir.path(),
    )
    .await;
    let r = run(
        &engine,
        "latency",
        json!({"requests": 8, "input_tokens": 50, "output_tokens": 32}),
    )
    .await;
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "requests"), 8.0);
    assert_eq!(metric(&r, "errors"), 0.0);
    for stat in ["p50", "p99", "mean"] {
        within(
            &format!("ttft_{stat}"),
            metric(&r, &format!("ttft_{stat}_ms")),
            40.0,
            40.0 + SLACK_MS,
        );
        // 40 ms + 31 gaps of 8 ms.
        within(
            &format!("e2e_{stat}"),
            metric(&r, &format!("e2e_{stat}_ms")),
            288.0,
            288.0 + SLACK_MS,
        );
        within(
            &format!("tpot_{stat}"),
            metric(&r, &format!("tpot_{stat}_ms")),
            8.0 - TOKEN_SLACK_MS,
            8.0 + TOKEN_SLACK_MS,
        );
    }
    within(
        "itl_p50",
        metric(&r, "itl_p50_ms"),
        7.0,
        8.0 + TOKEN_SLACK_MS,
    );
    // Tokens come from the server's usage: exactly what was asked for, and the prompt's
    // words plus the request-number prefix.
    assert_eq!(metric(&r, "output_tokens_mean"), 32.0);
    assert_eq!(metric(&r, "prompt_tokens_mean"), 51.0);
    within(
        "per-request tokens/s",
        metric(&r, "output_tokens_per_s_per_request"),
        32.0 / (0.288 + SLACK_MS / 1e3),
        32.0 / 0.288,
    );
    assert!(
        r.outputs["schedule_hash"]
            .as_str()
            .is_some_and(|h| h.len() == 16)
    );
    assert_eq!(r.details["token_counts"], "server usage");
}

#[tokio::test]
async fn throughput_is_bounded_by_the_servers_slots_and_queueing_shows_in_ttft() {
    let dir = tempfile::tempdir().unwrap();
    // Two slots; each request holds one for 50 + 9 × 10 = 140 ms.
    let sim = simulator(json!({"ttft": "50ms", "itl": "10ms", "max_concurrency": 2}));
    let engine = start(&sim, dir.path()).await;
    let r = run(
        &engine,
        "throughput",
        json!({"requests": 12, "concurrency": 4, "input_tokens": 8, "output_tokens": 10}),
    )
    .await;
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    let ceiling = 2.0 / 0.140;
    within(
        "requests_per_s",
        metric(&r, "requests_per_s"),
        ceiling * 0.6,
        ceiling,
    );
    within(
        "output_tokens_per_s",
        metric(&r, "output_tokens_per_s"),
        ceiling * 10.0 * 0.6,
        ceiling * 10.0,
    );
    // With 4 streams on 2 slots, half the requests wait one service time in the queue.
    within(
        "ttft_p50",
        metric(&r, "ttft_p50_ms"),
        50.0,
        50.0 + 140.0 + SLACK_MS,
    );
    within(
        "ttft_max",
        metric(&r, "ttft_max_ms"),
        190.0,
        190.0 + SLACK_MS * 2.0,
    );
    within(
        "tpot_p50",
        metric(&r, "tpot_p50_ms"),
        10.0 - TOKEN_SLACK_MS,
        10.0 + TOKEN_SLACK_MS,
    );
}

#[tokio::test]
async fn open_loop_keeps_its_rate_and_reports_goodput() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(
        &simulator(json!({"ttft": "20ms", "itl": "5ms"})),
        dir.path(),
    )
    .await;
    let params = |slo: serde_json::Value| {
        json!({"rate": 25, "arrival": "constant", "requests": 25, "input_tokens": 8,
               "output_tokens": 8, "slo": slo})
    };
    let r = run(
        &engine,
        "load",
        params(json!({"ttft_ms": 1000, "tpot_ms": 100})),
    )
    .await;
    assert!(r.passed, "{:?}", r.errors);
    within("send_rate", metric(&r, "send_rate"), 24.0, 26.0);
    within("send_lag_p99", metric(&r, "send_lag_p99_ms"), 0.0, 5.0);
    assert_eq!(metric(&r, "error_rate"), 0.0);
    assert_eq!(metric(&r, "goodput_ratio"), 1.0);
    // In flight on average: rate × e2e = 25/s × 55 ms ≈ 1.4.
    within("concurrency_mean", metric(&r, "concurrency_mean"), 0.9, 2.2);
    let timeline = r.details["concurrency_timeline"].as_array().unwrap();
    assert!(!timeline.is_empty());
    // An objective nobody can meet leaves no goodput.
    let strict = run(&engine, "load", params(json!({"ttft_ms": 1}))).await;
    engine.cleanup().await;
    assert_eq!(metric(&strict, "goodput"), 0.0);
    assert_eq!(metric(&strict, "goodput_ratio"), 0.0);
}

/// Throughput and goodput are completion rates over one window, the send rate is its own
/// figure: in a closed loop the sends run ahead of the completions.
#[tokio::test]
async fn rates_are_completions_over_one_window_and_goodput_is_a_share_of_them() {
    let dir = tempfile::tempdir().unwrap();
    // Two slots for four streams: after the first two, every request waits a whole request
    // in the queue, so only the first two meet a 50 ms TTFT.
    let engine = start(
        &simulator(json!({"ttft": "20ms", "itl": "5ms", "max_concurrency": 2})),
        dir.path(),
    )
    .await;
    let r = run(
        &engine,
        "load",
        json!({"concurrency": 4, "requests": 40, "input_tokens": 8, "output_tokens": 8,
               "slo": {"ttft_ms": 50}}),
    )
    .await;
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    let (throughput, goodput) = (metric(&r, "requests_per_s"), metric(&r, "goodput"));
    // 40 requests of 55 ms through 2 slots: a window of 20 × 55 ms = 1.1 s.
    within(
        "requests_per_s",
        throughput,
        40.0 / (1.1 + 20.0 * SLACK_MS / 1e3),
        40.0 / 1.1,
    );
    assert!(
        goodput > 0.0 && goodput < throughput,
        "{goodput} vs {throughput}"
    );
    let ratio = metric(&r, "goodput_ratio");
    assert!((ratio - goodput / throughput).abs() < 1e-9, "{ratio}");
    assert_eq!(ratio, 2.0 / 40.0);
    // The first four go out together and each later one as a slot frees: over the span of
    // the sends that is faster than the completions over the whole window.
    assert!(metric(&r, "send_rate") > throughput, "{:?}", r.metrics);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_cannot_keep_up_is_marked_client_limited() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(
        &simulator(json!({"ttft": "0ms", "itl": "0ms", "output_tokens": 2})),
        dir.path(),
    )
    .await;
    // 200,000 sends a second is far beyond any client: it falls behind its schedule.
    let flooded = run(
        &engine,
        "load",
        json!({"rate": 200000, "arrival": "constant", "requests": 4000,
               "input_tokens": 4, "output_tokens": 2}),
    )
    .await;
    engine.cleanup().await;
    // One request at a time against a slow engine leaves the client idle.
    let slow = start(
        &simulator(json!({"ttft": "30ms", "itl": "5ms"})),
        dir.path(),
    )
    .await;
    let idle = run(
        &slow,
        "load",
        json!({"concurrency": 1, "requests": 3, "input_tokens": 4, "output_tokens": 2}),
    )
    .await;
    slow.cleanup().await;
    assert_eq!(metric(&flooded, "client_limited"), 1.0);
    assert_eq!(flooded.outputs["client_limited"], json!(true));
    let why = flooded.details["client_limited"].to_string();
    assert!(why.contains("requests/s of the"), "{why}");
    assert!(metric(&flooded, "client_cpu_ms_per_request") > 0.0);
    assert!(metric(&flooded, "client_loop_busy") > 0.0);
    assert!(metric(&flooded, "client_cpu_cores") > 0.0);
    assert_eq!(metric(&idle, "client_limited"), 0.0, "{:?}", idle.details);
    assert_eq!(idle.outputs["client_limited"], json!(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_cpu_is_its_own_figure_and_no_more_than_its_thread_could_use() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(
        &simulator(json!({"ttft": "20ms", "itl": "2ms"})),
        dir.path(),
    )
    .await;
    let started = std::time::Instant::now();
    let r = run(
        &engine,
        "load",
        json!({"concurrency": 8, "requests": 64, "input_tokens": 4, "output_tokens": 16}),
    )
    .await;
    let wall_ms = started.elapsed().as_secs_f64() * 1e3;
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    let engine_ms = metric(&r, "engine_cpu_ms_per_request");
    // It served 64 streams of 16 tokens: some CPU, but one thread's at most.
    assert!(engine_ms > 0.0, "{:?}", r.metrics);
    assert!(
        engine_ms * 64.0 <= wall_ms,
        "{engine_ms} ms x 64 > {wall_ms} ms"
    );
    assert!(metric(&r, "client_cpu_ms_per_request") > 0.0);
}

#[tokio::test]
async fn a_capped_open_loop_queues_and_latency_counts_from_the_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(
        &simulator(json!({"ttft": "50ms", "itl": "1ms"})),
        dir.path(),
    )
    .await;
    // Sends due every 20 ms, but one at a time, each taking 50 ms: the queue grows.
    let r = run(
        &engine,
        "load",
        json!({"rate": 50, "arrival": "constant", "requests": 20, "max_concurrency": 1,
               "input_tokens": 4, "output_tokens": 1}),
    )
    .await;
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    // The last request is due at 380 ms and served after 20 × 50 ms = 1000 ms.
    within(
        "ttft_max",
        metric(&r, "ttft_max_ms"),
        600.0,
        600.0 + SLACK_MS * 4.0,
    );
    within(
        "queue_wait_p99",
        metric(&r, "queue_wait_p99_ms"),
        500.0,
        600.0 + SLACK_MS * 4.0,
    );
    assert_eq!(metric(&r, "concurrency_max"), 1.0);
    within("send_rate", metric(&r, "send_rate"), 15.0, 21.0);
}

#[tokio::test]
async fn the_same_seed_sends_the_same_load() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&simulator(json!({"ttft": "1ms", "itl": "1ms"})), dir.path()).await;
    let load = |seed: u64| {
        json!({"rate": 200, "requests": 10, "seed": seed, "input_tokens": 8,
               "output_tokens": 2, "length_spread": 0.5})
    };
    let a = run(&engine, "load", load(1)).await;
    let b = run(&engine, "load", load(1)).await;
    let c = run(&engine, "load", load(2)).await;
    engine.cleanup().await;
    assert_eq!(a.outputs["schedule_hash"], b.outputs["schedule_hash"]);
    assert_ne!(a.outputs["schedule_hash"], c.outputs["schedule_hash"]);
}

#[tokio::test]
async fn errors_are_counted_and_all_errors_fail() {
    let dir = tempfile::tempdir().unwrap();
    let some = start(
        &simulator(json!({"ttft": "1ms", "itl": "1ms", "error_rate": 0.5, "seed": 3})),
        dir.path(),
    )
    .await;
    let r = run(
        &some,
        "load",
        json!({"concurrency": 4, "requests": 60, "output_tokens": 2}),
    )
    .await;
    some.cleanup().await;
    assert!(r.passed, "some errors still measure: {:?}", r.errors);
    within("error_rate", metric(&r, "error_rate"), 0.25, 0.75);
    assert_eq!(metric(&r, "requests") + metric(&r, "errors"), 60.0);
    assert!(
        r.errors.iter().any(|e| e.contains("HTTP 500")),
        "{:?}",
        r.errors
    );

    let all = start(&simulator(json!({"error_rate": 1.0})), dir.path()).await;
    let r = run(&all, "latency", json!({"requests": 3})).await;
    all.cleanup().await;
    assert!(!r.passed);
    assert!(
        r.errors[0].contains("no request succeeded"),
        "{:?}",
        r.errors
    );
    assert_eq!(metric(&r, "error_rate"), 1.0);
}

#[tokio::test]
async fn sweep_finds_the_highest_concurrency_within_the_slo_and_stops_there() {
    let dir = tempfile::tempdir().unwrap();
    // Two slots of 30 + 4 × 5 = 50 ms: up to 2 streams nobody queues; at 6 most do.
    let sim = simulator(json!({"ttft": "30ms", "itl": "5ms", "max_concurrency": 2}));
    let engine = start(&sim, dir.path()).await;
    let r = run(
        &engine,
        "sweep",
        json!({"over": "concurrency", "values": [1, 2, 6, 8], "requests": 12,
               "input_tokens": 8, "output_tokens": 5, "slo": {"ttft_p99_ms": 75}}),
    )
    .await;
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "max_concurrency"), 2.0);
    assert_eq!(metric(&r, "max_value"), 2.0);
    assert_eq!(metric(&r, "points"), 3.0, "stops at the first breach");
    within(
        "max_rate",
        metric(&r, "max_rate"),
        2.0 / 0.05 * 0.5,
        2.0 / 0.05,
    );
    let curve = r.details["curve"].as_array().unwrap();
    assert_eq!(curve[2]["value"], 6.0);
    assert_eq!(curve[2]["passed"], false);
    assert!(
        curve[2]["breaches"][0]
            .as_str()
            .unwrap()
            .contains("ttft_p99_ms")
    );
    assert!(r.outputs["stop_reason"].as_str().unwrap().contains('6'));
}

#[tokio::test]
async fn warmup_analysis_skips_the_warmup_and_finds_a_flat_start_flat() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(
        &simulator(json!({"ttft": "20ms", "itl": "4ms"})),
        dir.path(),
    )
    .await;
    let base = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let r = run_with(
        &engine,
        "warmup_analysis",
        json!({"requests": 8, "output_tokens": 6, "input_tokens": 8}),
        5,
        &base,
    )
    .await
    .unwrap();
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(r.warmup.requests, 0);
    assert!(r.warmup.skipped.is_some());
    // 20 ms + 5 × 4 ms, with no cold start to speak of.
    within(
        "steady_e2e",
        metric(&r, "steady_e2e_ms"),
        40.0,
        40.0 + SLACK_MS,
    );
    within(
        "first_to_steady",
        metric(&r, "first_to_steady_ratio"),
        0.9,
        2.0,
    );
    assert_eq!(r.details["series"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn node_warmup_requests_are_sent_before_measuring() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&simulator(json!({"ttft": "1ms", "itl": "1ms"})), dir.path()).await;
    let base = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let r = run_with(
        &engine,
        "latency",
        json!({"requests": 2, "output_tokens": 2}),
        3,
        &base,
    )
    .await
    .unwrap();
    engine.cleanup().await;
    assert_eq!(r.warmup.requests, 3);
    assert_eq!(r.warmup.errors, 0);
    assert_eq!(metric(&r, "requests"), 2.0);
}

#[tokio::test]
async fn long_context_measures_ttft_growth_against_the_context() {
    let dir = tempfile::tempdir().unwrap();
    // 10 ms plus 100 ms per 1,000 prompt tokens, context 2,048.
    let sim = simulator(json!({"ttft": "10ms", "itl": "1ms", "prefill": "100ms", "context": 2048}));
    let engine = start(&sim, dir.path()).await;
    let r = run(
        &engine,
        "long_context",
        json!({"requests_per_length": 1, "output_tokens": 4}),
    )
    .await;
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(r.outputs["context"], 2048, "read from /v1/models");
    within(
        "growth",
        metric(&r, "ttft_growth_ms_per_1k_tokens"),
        85.0,
        115.0,
    );
    // Lengths 128 … 1024 and the rest of the context (2048 − 4 − 8).
    within(
        "longest",
        metric(&r, "longest_prompt_tokens"),
        2030.0,
        2036.0,
    );
    let at_1024 = r
        .metrics
        .iter()
        .find(|m| m.name == "ttft_ms_at_1024")
        .unwrap();
    within(
        "ttft at 1024",
        at_1024.value,
        10.0 + 102.4,
        10.0 + 102.4 + SLACK_MS,
    );
    assert_eq!(r.details["calibration"]["measured"], true);
}

#[tokio::test]
async fn memory_samples_the_engine_during_load() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&simulator(json!({"ttft": "5ms", "itl": "5ms"})), dir.path()).await;
    let r = run(
        &engine,
        "memory",
        json!({"requests": 20, "concurrency": 4, "output_tokens": 10, "interval": "10ms"}),
    )
    .await;
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    assert!(metric(&r, "memory_samples") >= 2.0);
    let peak = metric(&r, "memory_peak_mib");
    within(
        "peak",
        peak,
        metric(&r, "memory_baseline_mib"),
        64.0 * 1024.0,
    );
    assert!(peak > 1.0);
    assert!(
        r.outputs["memory_source"]
            .as_str()
            .unwrap()
            .contains("kitt's own process")
    );
}

#[tokio::test]
async fn bad_params_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&simulator(json!({})), dir.path()).await;
    let base = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let err = |name: &'static str, params: serde_json::Value| {
        let engine = &engine;
        let base = base.clone();
        async move {
            run_with(engine, name, params, 0, &base)
                .await
                .expect_err("refused")
                .to_string()
        }
    };
    let both = err("load", json!({"concurrency": 2, "rate": 3})).await;
    assert!(both.contains("not both"), "{both}");
    let neither = err("load", json!({"requests": 2})).await;
    assert!(
        neither.contains("`concurrency`") && neither.contains("`rate`"),
        "{neither}"
    );
    let unknown = err("latency", json!({"reqests": 2})).await;
    assert!(
        unknown.contains("reqests") && unknown.contains("kitt test show latency"),
        "{unknown}"
    );
    let cooldown = err(
        "load",
        json!({"concurrency": 1, "requests": 2, "cooldown": "1s"}),
    )
    .await;
    assert!(
        cooldown.contains("`cooldown` needs `duration`"),
        "{cooldown}"
    );
    let slo = err(
        "sweep",
        json!({"over": "rate", "values": [1], "slo": {"ttft_p42_ms": 1}}),
    )
    .await;
    assert!(slo.contains("ttft_p42_ms"), "{slo}");
    engine.cleanup().await;
}

#[tokio::test]
async fn a_duration_run_excludes_warmup_and_cooldown() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&simulator(json!({"ttft": "1ms", "itl": "1ms"})), dir.path()).await;
    let r = run(
        &engine,
        "load",
        json!({"rate": 100, "arrival": "constant", "duration": "1s", "warmup": "200ms",
               "cooldown": "300ms", "output_tokens": 2, "input_tokens": 4}),
    )
    .await;
    engine.cleanup().await;
    let requests = r.details["requests"].clone();
    let measured = requests["ok"].as_u64().unwrap() + requests["errors"].as_u64().unwrap();
    // Sends at 0, 10, … 990 ms; measured are those scheduled in [200, 700] ms.
    within("measured", measured as f64, 50.0, 52.0);
    within(
        "excluded",
        requests["excluded"].as_f64().unwrap(),
        48.0,
        50.0,
    );
    within("send_rate", metric(&r, "send_rate"), 95.0, 105.0);
}

#[tokio::test]
async fn sweep_bisects_between_the_last_pass_and_the_first_breach() {
    let dir = tempfile::tempdir().unwrap();
    // As above: two slots of 50 ms; queued requests wait at least 50 ms for their first token.
    let sim = simulator(json!({"ttft": "30ms", "itl": "5ms", "max_concurrency": 2}));
    let engine = start(&sim, dir.path()).await;
    let r = run(
        &engine,
        "sweep",
        json!({"over": "concurrency", "values": [1, 8], "refine": 3, "requests": 12,
               "input_tokens": 8, "output_tokens": 5, "slo": {"ttft_p99_ms": 75}}),
    )
    .await;
    engine.cleanup().await;
    // 1 passes, 8 breaches; then 4 breaches (30 + 50 ms queued), 2 passes, 3 breaches.
    let values: Vec<f64> = r.details["curve"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [1.0, 2.0, 3.0, 4.0, 8.0]);
    assert_eq!(metric(&r, "max_concurrency"), 2.0);
    let reason = r.outputs["stop_reason"].as_str().unwrap();
    assert!(
        reason.contains("refined to Concurrency 2") && reason.contains("3 (breaches)"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_sweep_where_no_value_holds_fails_and_failing_requests_breach() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&simulator(json!({"ttft": "5ms", "itl": "1ms"})), dir.path()).await;
    let strict = run(
        &engine,
        "sweep",
        json!({"over": "rate", "values": [20, 40], "requests": 4, "output_tokens": 2,
               "slo": {"ttft_p99_ms": 1}}),
    )
    .await;
    engine.cleanup().await;
    assert!(!strict.passed);
    assert_eq!(metric(&strict, "points"), 1.0);
    assert_eq!(metric(&strict, "max_rate"), 0.0);
    assert!(
        strict.errors[0].contains("no rate value met the SLOs"),
        "{:?}",
        strict.errors
    );

    // Without an error_rate objective, any failed request breaches a point.
    let flaky = start(
        &simulator(json!({"ttft": "1ms", "itl": "1ms", "error_rate": 0.5, "seed": 5})),
        dir.path(),
    )
    .await;
    let r = run(
        &flaky,
        "sweep",
        json!({"over": "concurrency", "values": [1, 2], "requests": 8, "output_tokens": 2}),
    )
    .await;
    flaky.cleanup().await;
    assert!(!r.passed);
    let curve = r.details["curve"].as_array().unwrap();
    assert!(
        curve[0]["breaches"][0]
            .as_str()
            .unwrap()
            .contains("error_rate"),
        "{curve:?}"
    );
    assert!(
        r.errors.iter().any(|e| e.contains("HTTP 500")),
        "{:?}",
        r.errors
    );
}
