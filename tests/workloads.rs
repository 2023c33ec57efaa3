//! Production-shaped workloads held to the simulator's exact arithmetic: prompts that share
//! prefixes on purpose are served from its prefix cache just as their parameters say.

mod common;
#[path = "common/bench.rs"]
mod harness;

use std::time::Duration;

use harness::{metric, simulator, start};
use serde_json::json;

/// Runs `benchmark` once on a simulator of `config` with server telemetry every 100 ms;
/// the run must pass.
async fn on_simulator(
    config: kitt::suite::model::EngineSpec,
    benchmark: &str,
    params: serde_json::Value,
) -> kitt::bench::BenchResult {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&config, dir.path()).await;
    let r = harness::run_with_telemetry(
        &engine,
        benchmark,
        params,
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

/// A load of 8 requests, 2 groups sharing 40-word prefixes, 8 words each of their own.
async fn shared_prefix_load(prime: bool) -> kitt::bench::BenchResult {
    // 1 ms of prefill a prompt token the cache did not serve; blocks of 4 words.
    on_simulator(
        simulator(
            json!({"ttft": "5ms", "itl": "1ms", "prefill": "1000ms", "prefix_block_tokens": 4}),
        ),
        "load",
        json!({"concurrency": 1, "requests": 8, "input_tokens": 8, "output_tokens": 2,
               "shared_prefix": {"groups": 2, "prefix_tokens": 40, "prime": prime}}),
    )
    .await
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

/// The simulator for conversations: 5 ms to a slot's first token plus 10 ms of prefill for
/// each prompt word its prefix cache (blocks of 4 words) did not serve, 1 ms a token.
fn conversation_simulator(cache: bool) -> kitt::suite::model::EngineSpec {
    simulator(json!({"ttft": "5ms", "itl": "1ms", "prefill": "10000ms",
                     "prefix_block_tokens": 4, "prefix_cache": cache}))
}

/// Three sessions of three turns, 4-word user messages, 10-token answers, 20 ms think time.
async fn three_turns(cache: bool) -> kitt::bench::BenchResult {
    on_simulator(
        conversation_simulator(cache),
        "conversation",
        json!({"sessions": 3, "concurrency": 3, "turns": 3, "user_tokens": 4,
               "answer_tokens": 10, "think_time": "20ms"}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_turns_resend_their_history_and_find_it_cached() {
    let r = three_turns(true).await;
    assert_eq!(metric(&r, "requests"), 9.0);
    assert_eq!(metric(&r, "sessions_completed"), 3.0);
    // Turn 1: the session's head and 4 words. Each answer is the simulator's 10 filler
    // words; each later turn adds the answer and 4 words to the history.
    // Cached: the whole 4-word blocks of the previous prompt and its answer (15 → 12,
    // 29 → 28 words), as the simulator caches the blocks an answer fills.
    for (turn, prompt, cached, ttft) in [
        (1, 5.0, 0.0, 55.0),
        (2, 19.0, 12.0, 75.0),
        (3, 33.0, 28.0, 55.0),
    ] {
        assert_eq!(metric(&r, &format!("turn_{turn}_requests")), 3.0);
        assert_eq!(
            metric(&r, &format!("turn_{turn}_prompt_tokens_mean")),
            prompt
        );
        assert_eq!(
            metric(&r, &format!("turn_{turn}_cached_prompt_tokens_mean")),
            cached
        );
        // TTFT = 5 ms + 10 ms × the uncached words (and a little scheduling).
        harness::within(
            &format!("turn {turn} TTFT"),
            metric(&r, &format!("turn_{turn}_ttft_mean_ms")),
            ttft,
            ttft + 25.0,
        );
    }
    assert_eq!(metric(&r, "cached_prompt_share"), 40.0 / 57.0);
    // The server counted what the client sent and what its cache served.
    assert_eq!(metric(&r, "server_prompt_tokens"), 3.0 * 57.0);
    assert_eq!(metric(&r, "prefix_cache_hit_tokens"), 3.0 * 40.0);
    assert_eq!(metric(&r, "output_tokens_mean"), 10.0);
    // Each session: three turns of TTFT + 9 ms of tokens, and two think times.
    assert!(metric(&r, "think_time_mean_ms") >= 20.0);
    harness::within(
        "session e2e",
        metric(&r, "session_e2e_mean_ms"),
        252.0,
        330.0,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_prefix_cache_later_turns_pay_for_the_whole_history() {
    let r = three_turns(false).await;
    assert_eq!(metric(&r, "turn_3_prompt_tokens_mean"), 33.0);
    assert_eq!(metric(&r, "turn_3_cached_prompt_tokens_mean"), 0.0);
    // 5 ms + 330 ms of prefill: six times turn 1's.
    harness::within(
        "turn 3 TTFT",
        metric(&r, "turn_3_ttft_mean_ms"),
        335.0,
        360.0,
    );
    assert!(metric(&r, "ttft_later_to_first_turn_ratio") > 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_from_a_sharegpt_dataset_send_every_user_turn() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&conversation_simulator(true), dir.path()).await;
    let r = harness::run(
        &engine,
        "conversation",
        json!({"sessions": 2, "concurrency": 1, "answer_tokens": 3,
               "dataset": "tests/data/workloads/conversations.jsonl"}),
    )
    .await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "requests"), 5.0);
    assert_eq!(metric(&r, "sessions_completed"), 2.0);
    // Row 1: its system message (with the session's head) and "a b c", then the 3-word
    // answer and "d e". Row 2: the head and "x y z w", then "q", then "s t"; the dataset's
    // own answers are replaced by the model's.
    assert_eq!(metric(&r, "turn_1_prompt_tokens_mean"), (7.0 + 5.0) / 2.0);
    assert_eq!(metric(&r, "turn_2_prompt_tokens_mean"), (12.0 + 9.0) / 2.0);
    assert_eq!(metric(&r, "turn_3_prompt_tokens_mean"), 14.0);
    assert_eq!(metric(&r, "turn_3_requests"), 1.0);
    // A row that is no conversation is a params error that names it.
    let bad = harness::run_with(
        &engine,
        "conversation",
        json!({"dataset": "tests/data/gsm8k/test-first50.jsonl"}),
        0,
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
    )
    .await;
    engine.cleanup().await;
    let bad = bad.unwrap_err().to_string();
    assert!(bad.contains("row 1 has no `conversations`"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_on_the_real_llama_server_reuse_the_cached_history() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&common::llama_spec(&[]), dir.path()).await;
    let r = harness::run(
        &engine,
        "conversation",
        json!({"sessions": 2, "concurrency": 1, "turns": 3, "user_tokens": 24,
               "answer_tokens": 16}),
    )
    .await;
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "requests"), 6.0);
    // llama-server keeps the slot's tokens: a later turn's history comes from its cache
    // (`timings.cache_n`), the first turn's salted head never does.
    let first = metric(&r, "turn_1_cached_prompt_tokens_mean");
    let later = metric(&r, "turn_3_cached_prompt_tokens_mean");
    assert!(later > first + 40.0, "turn 1 {first}, turn 3 {later}");
    assert!(metric(&r, "turn_3_prompt_tokens_mean") > metric(&r, "turn_1_prompt_tokens_mean"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_conversations_start_at_their_rate() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&conversation_simulator(true), dir.path()).await;
    let r = harness::run(
        &engine,
        "conversation",
        json!({"sessions": 4, "session_rate": 40, "arrival": "constant", "turns": 2,
               "user_tokens": 4, "answer_tokens": 2}),
    )
    .await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "requests"), 8.0);
    assert_eq!(metric(&r, "sessions_completed"), 4.0);
    assert!(metric(&r, "session_start_lag_p99_ms") >= 0.0);
    // Both loop shapes at once are refused.
    let both = harness::run_with(
        &engine,
        "conversation",
        json!({"session_rate": 1, "concurrency": 2}),
        0,
        dir.path(),
    )
    .await
    .unwrap_err();
    engine.cleanup().await;
    assert!(both.to_string().contains("not both"), "{both}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mooncake_trace_is_replayed_with_its_lengths_times_and_shared_blocks() {
    // Blocks of 4 words on both sides; a cache large enough to keep everything.
    let r = on_simulator(
        simulator(json!({"ttft": "2ms", "itl": "1ms", "prefix_block_tokens": 4})),
        "trace_replay",
        json!({"trace": concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/workloads/mooncake.jsonl"),
               "block_tokens": 4,
               "time_scale": 0.5}),
    )
    .await;
    assert_eq!(metric(&r, "requests"), 10.0);
    assert_eq!(metric(&r, "trace_requests"), 10.0);
    // The server got exactly the trace's lengths.
    assert_eq!(metric(&r, "server_prompt_tokens"), 89.0);
    assert_eq!(metric(&r, "server_generation_tokens"), 26.0);
    // Hits, request by request: 0, 8, 4, 0, 12, 4, 8, 0, 4, 0 of 89 tokens (a block hits
    // when an earlier request had the same hash ids up to it as whole blocks).
    let expected = 40.0 / 89.0;
    assert!((metric(&r, "expected_prefix_cache_hit_rate") - expected).abs() < 1e-12);
    assert!((metric(&r, "prefix_cache_hit_rate") - expected).abs() < 1e-12);
    // 900 ms of trace at half the gaps: sends 50 ms apart, on time.
    assert_eq!(metric(&r, "trace_span_s"), 0.45);
    let rate = metric(&r, "send_rate");
    assert!((rate - 9.0 / 0.45).abs() < 0.05 * rate, "send rate {rate}");
    assert!(metric(&r, "send_lag_p99_ms") < 20.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burstgpt_trace_skips_failed_rows_and_a_bad_trace_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&simulator(json!({"ttft": "2ms", "itl": "1ms"})), dir.path()).await;
    let r = harness::run(
        &engine,
        "trace_replay",
        json!({"trace": "tests/data/workloads/burstgpt.csv"}),
    )
    .await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "requests"), 4.0);
    assert_eq!(metric(&r, "trace_skipped_rows"), 1.0);
    // The salted head is one of each prompt's words: 12 + 7 + 20 + 9.
    assert_eq!(metric(&r, "prompt_tokens_mean"), 48.0 / 4.0);
    assert_eq!(metric(&r, "output_tokens_mean"), 10.0 / 4.0);
    let before = engine.client_tally().totals();
    let trace = dir.path().join("bad.jsonl");
    std::fs::write(
        &trace,
        "{\"timestamp\": 0, \"input_length\": 3, \"output_length\": 1}\n{\"timestamp\": 5, \"input_length\": 3}\n",
    )
    .unwrap();
    let bad = harness::run_with(
        &engine,
        "trace_replay",
        json!({"trace": "bad.jsonl"}),
        0,
        dir.path(),
    )
    .await
    .unwrap_err()
    .to_string();
    let sent = engine.client_tally().totals().since(&before);
    engine.cleanup().await;
    assert!(bad.contains("line 2: no `output_length`"), "{bad}");
    assert_eq!(sent.succeeded + sent.failed, 0, "a bad trace sent requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_on_the_simulator_call_the_declared_tool_with_valid_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&simulator(json!({"ttft": "5ms", "itl": "1ms"})), dir.path()).await;
    let r = harness::run(
        &engine,
        "tool_calls",
        json!({"requests": 4, "concurrency": 2}),
    )
    .await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "requests"), 4.0);
    assert_eq!(metric(&r, "tool_call_ratio"), 1.0);
    assert_eq!(metric(&r, "valid_tool_call_ratio"), 1.0, "{:?}", r.details);
    assert_eq!(metric(&r, "arguments_parse_ratio"), 1.0);
    assert_eq!(metric(&r, "tool_calls_mean"), 1.0);
    // `tool_choice` names the second tool: its arguments follow its own schema.
    let two = json!([
        {"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "b", "parameters": {"type": "object",
            "properties": {"n": {"type": "integer", "minimum": 3}}, "required": ["n"]}}}]);
    let named = harness::run(
        &engine,
        "tool_calls",
        json!({"requests": 2, "tools": two,
               "tool_choice": {"type": "function", "function": {"name": "b"}}}),
    )
    .await;
    assert_eq!(metric(&named, "valid_tool_call_ratio"), 1.0);
    // `none`: no answer calls a tool, and the examples say so.
    let none = harness::run(
        &engine,
        "tool_calls",
        json!({"requests": 2, "tool_choice": "none"}),
    )
    .await;
    assert_eq!(metric(&none, "tool_call_ratio"), 0.0);
    assert_eq!(
        none.details["invalid_answers"][0]["why"],
        json!("no tool call")
    );
    // Arguments cut at two pieces do not parse.
    let cut = harness::run(
        &engine,
        "tool_calls",
        json!({"requests": 2, "max_tokens": 2}),
    )
    .await;
    assert_eq!(metric(&cut, "arguments_parse_ratio"), 0.0);
    assert_eq!(metric(&cut, "valid_tool_call_ratio"), 0.0);
    engine.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_on_the_real_llama_server_are_sent_and_judged() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&common::llama_spec(&[]), dir.path()).await;
    let r = harness::run(
        &engine,
        "tool_calls",
        json!({"requests": 3, "tool_choice": "required", "max_tokens": 24}),
    )
    .await;
    engine.cleanup().await;
    // llama-server accepts `tools` and `tool_choice` (it refuses them without its jinja
    // templates, which are on by default).
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "requests"), 3.0);
    assert_eq!(metric(&r, "errors"), 0.0);
    // SmolLM2-135M's chat template has no tool-call format, so this llama-server answers in
    // text: every answer is judged, and each one that called nothing says so.
    let ratio = metric(&r, "tool_call_ratio");
    let examples = r.details.get("invalid_answers").and_then(|v| v.as_array());
    let uncalled = examples.map_or(0, |e| {
        e.iter()
            .filter(|a| a["why"] == json!("no tool call"))
            .count()
    });
    assert_eq!(uncalled as f64, 3.0 * (1.0 - ratio), "{:?}", r.details);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_in_an_open_loop_are_sent_on_schedule_and_timed_from_it() {
    let dir = tempfile::tempdir().unwrap();
    // One slot, 5 ms + 10 ms of prefill per request: a request every 20 ms never queues.
    let engine = start(
        &simulator(json!({"ttft": "5ms", "prefill": "1000ms", "max_concurrency": 1})),
        dir.path(),
    )
    .await;
    let r = harness::run(
        &engine,
        "embeddings",
        json!({"requests": 6, "rate": 50, "arrival": "constant", "input_tokens": 10}),
    )
    .await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "requests"), 6.0);
    harness::within("latency p50", metric(&r, "latency_p50_ms"), 15.0, 40.0);
    assert!(metric(&r, "send_lag_p99_ms") < 20.0);
    // Six sends 20 ms apart take at least 100 ms: under 60 requests/s.
    assert!(metric(&r, "requests_per_s") < 60.0);
    // Over its capacity (a request every 5 ms for a 15 ms one), the queue shows in latency,
    // counted from each scheduled send.
    let over = harness::run(
        &engine,
        "embeddings",
        json!({"requests": 8, "rate": 200, "arrival": "constant", "input_tokens": 10}),
    )
    .await;
    assert!(metric(&over, "latency_max_ms") > 60.0, "{:?}", over.metrics);
    let both = harness::run_with(
        &engine,
        "embeddings",
        json!({"rate": 5, "concurrency": 2}),
        0,
        dir.path(),
    )
    .await
    .unwrap_err();
    engine.cleanup().await;
    assert!(both.to_string().contains("not both"), "{both}");
}
