//! Benchmarks against the real llama.cpp server (native, SmolLM2-135M): `latency` measures
//! with the server's own token counts, `memory` reads its process group, `gsm8k` scores
//! real items end to end.

mod common;
#[path = "common/bench.rs"]
mod harness;

use harness::{metric, run, start};
use serde_json::json;

#[tokio::test]
async fn latency_and_gsm8k_run_against_llama_server() {
    if common::skipped("llama") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&common::llama_spec(&[]), dir.path()).await;
    let latency = run(
        &engine,
        "latency",
        json!({"requests": 3, "input_tokens": 32, "output_tokens": 16}),
    )
    .await;
    assert!(latency.passed, "{:?}", latency.errors);
    assert_eq!(metric(&latency, "errors"), 0.0);
    // llama-server honours ignore_eos and reports usage: exactly 16 tokens each.
    assert_eq!(metric(&latency, "output_tokens_mean"), 16.0);
    assert_eq!(latency.details["token_counts"], "server usage");
    assert!(metric(&latency, "prompt_tokens_mean") >= 32.0);
    let ttft = metric(&latency, "ttft_p50_ms");
    let e2e = metric(&latency, "e2e_p50_ms");
    assert!(ttft > 0.0 && ttft < e2e, "ttft {ttft} e2e {e2e}");
    assert!(metric(&latency, "tpot_p50_ms") > 0.0);

    // Resident memory of the server's process group, the model included.
    let memory = run(
        &engine,
        "memory",
        json!({"requests": 2, "concurrency": 2, "input_tokens": 16, "output_tokens": 8,
               "interval": "50ms"}),
    )
    .await;
    assert!(memory.passed, "{:?}", memory.errors);
    assert!(
        memory.outputs["memory_source"]
            .as_str()
            .unwrap()
            .contains("process group")
    );
    assert!(
        metric(&memory, "memory_peak_mib") > 50.0,
        "{:?}",
        memory.metrics
    );

    let dataset = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/gsm8k/test-first50.jsonl");
    let gsm8k = run(
        &engine,
        "gsm8k",
        json!({"dataset": dataset.display().to_string(), "limit": 3, "few_shot": 1,
               "max_tokens": 64, "concurrency": 1}),
    )
    .await;
    engine.cleanup().await;
    assert!(gsm8k.passed, "{:?}", gsm8k.errors);
    assert_eq!(metric(&gsm8k, "items"), 3.0);
    assert_eq!(metric(&gsm8k, "errored"), 0.0);
    assert_eq!(metric(&gsm8k, "scored"), 3.0);
    let records = gsm8k.details["items"].as_array().unwrap();
    assert!(
        records
            .iter()
            .all(|r| r["response"].as_str().is_some_and(|t| !t.is_empty()))
    );
    let accuracy = metric(&gsm8k, "accuracy");
    assert!((0.0..=1.0).contains(&accuracy));
}

/// Every other benchmark, with small params, against the same real server.
#[tokio::test]
async fn every_benchmark_runs_against_llama_server() {
    if common::skipped("llama") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, rows: &[serde_json::Value]| {
        let text: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
        std::fs::write(dir.path().join(name), text.join("\n")).unwrap();
    };
    write(
        "mmlu.jsonl",
        &[
            json!({"question": "What is 2 + 2?", "subject": "math", "choices": ["3", "4", "5", "6"], "answer": 1}),
        ],
    );
    write(
        "hellaswag.jsonl",
        &[
            json!({"activity_label": "Cooking", "ctx": "She cracks an egg into the bowl and",
                 "endings": ["whisks it.", "paints it.", "sells the bowl.", "sleeps."], "label": "0"}),
        ],
    );
    write(
        "truthfulqa.jsonl",
        &[
            json!({"question": "Can pigs fly?", "mc1_targets": {"choices": ["No.", "Yes."], "labels": [1, 0]}}),
        ],
    );
    let engine = start(&common::llama_spec(&[]), dir.path()).await;
    let small = json!({"input_tokens": 16, "output_tokens": 8});
    let with = |extra: serde_json::Value| {
        let mut p = small.clone();
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        p
    };
    let cases = [
        (
            "throughput",
            with(json!({"requests": 4, "concurrency": 2})),
            "requests_per_s",
        ),
        ("load", with(json!({"rate": 4, "requests": 4})), "send_rate"),
        (
            "sweep",
            with(json!({"over": "concurrency", "values": [1, 2], "requests": 2})),
            "max_rate",
        ),
        (
            "warmup_analysis",
            with(json!({"requests": 4})),
            "steady_e2e_ms",
        ),
        (
            "long_context",
            json!({"lengths": [32, 256], "requests_per_length": 1, "output_tokens": 4}),
            "ttft_longest_ms",
        ),
        (
            "mmlu",
            json!({"dataset": "mmlu.jsonl", "max_tokens": 8}),
            "scored",
        ),
        (
            "hellaswag",
            json!({"dataset": "hellaswag.jsonl", "max_tokens": 8}),
            "scored",
        ),
        (
            "truthfulqa",
            json!({"dataset": "truthfulqa.jsonl", "max_tokens": 8}),
            "scored",
        ),
        (
            "custom",
            json!({"items": [{"q": "Say yes.", "answer": "yes"}], "prompt": "{{ q }}",
                   "scorer": {"type": "contains"}, "max_tokens": 8}),
            "scored",
        ),
    ];
    for (name, params, key) in cases {
        let r = harness::run_with(&engine, name, params, 0, dir.path())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(r.passed, "{name}: {:?}", r.errors);
        assert!(metric(&r, key) > 0.0, "{name}: {key} = {}", metric(&r, key));
    }
    engine.cleanup().await;
}
