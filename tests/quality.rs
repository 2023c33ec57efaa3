//! Quality benchmarks end to end: real GSM8K items against a test server that answers some
//! right, some wrong, some unreadably and fails on one; log-likelihood scoring against the
//! simulator's known log-probabilities; custom evaluations; datasets from files and from a
//! local stand-in for the Hugging Face rows API.

mod common;
#[path = "common/bench.rs"]
mod harness;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use harness::{metric, run, run_with, simulator, start};
use kitt::bench::BenchError;
use kitt::suite::model::{EngineSpec, RuntimeMode};
use serde_json::{Value, json};

fn gsm8k_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/gsm8k/test-first50.jsonl")
}

fn gsm8k_items() -> Vec<(String, String)> {
    String::from_utf8(common::test_data("gsm8k/test-first50.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let answer = v["answer"].as_str().unwrap();
            let number = answer
                .rsplit_once("####")
                .unwrap()
                .1
                .trim()
                .replace(',', "");
            (v["question"].as_str().unwrap().to_string(), number)
        })
        .collect()
}

/// How the test server answers a question: a text, or `None` for HTTP 500.
type Reply = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A server that answers each question by a rule of its own: `reply(question) → Some(text)`
/// or `None` for HTTP 500.
async fn answering_server(
    reply: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> String {
    let reply: Reply = Arc::new(reply);
    async fn chat(State(reply): State<Reply>, body: Bytes) -> Response {
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        let prompt = v["messages"][0]["content"].as_str().unwrap_or_default();
        // The item's question is the last one in the prompt (examples come first).
        let question = prompt
            .rsplit_once("Question: ")
            .map_or(prompt, |(_, q)| q)
            .trim_end_matches("\nAnswer:");
        match reply(question) {
            None => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "{\"error\":{\"message\":\"boom\"}}",
            )
                .into_response(),
            Some(text) => {
                let chunk = json!({"choices": [{"index": 0, "delta": {"content": text}}]});
                let end = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
                let body = format!("data: {chunk}\n\ndata: {end}\n\ndata: [DONE]\n\n");
                ([("content-type", "text/event-stream")], body).into_response()
            }
        }
    }
    let app = Router::new()
        .route(
            "/v1/models",
            get(|| async { axum::Json(json!({"data": []})) }),
        )
        .route("/v1/chat/completions", post(chat))
        .with_state(reply);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn external(url: &str) -> EngineSpec {
    EngineSpec {
        uses: "openai".into(),
        mode: Some(RuntimeMode::External),
        url: Some(url.into()),
        model: Some("test".into()),
        ..EngineSpec::default()
    }
}

#[tokio::test]
async fn gsm8k_scores_real_items_and_counts_wrong_unparsable_and_errored() {
    let items = gsm8k_items();
    let answers: HashMap<String, (usize, String)> = items
        .iter()
        .enumerate()
        .map(|(i, (q, a))| (q.trim().to_string(), (i, a.clone())))
        .collect();
    // Items 0–4 right (two phrasings), 5–6 wrong, 7 unreadable, 8 a server error, 9 right.
    let url = answering_server(move |question| {
        let (i, answer) = answers.get(question.trim())?.clone();
        Some(match i {
            0..=2 => format!("Let me think.\n#### {answer}"),
            3 | 4 | 9 => format!("So she makes ${answer}."),
            5 | 6 => "#### 123456789".into(),
            7 => "I would rather not say.".into(),
            _ => return None,
        })
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&external(&url), dir.path()).await;
    let r = run(
        &engine,
        "gsm8k",
        json!({"dataset": gsm8k_file().display().to_string(), "limit": 10, "few_shot": 2}),
    )
    .await;
    engine.cleanup().await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "items"), 10.0);
    assert_eq!(metric(&r, "errored"), 1.0);
    assert_eq!(metric(&r, "scored"), 9.0);
    assert_eq!(metric(&r, "unparsable"), 1.0);
    assert_eq!(metric(&r, "correct"), 6.0);
    assert!((metric(&r, "accuracy") - 6.0 / 9.0).abs() < 1e-12);
    let se = (6.0 / 9.0 * (3.0 / 9.0) / 8.0f64).sqrt();
    assert!((metric(&r, "accuracy_stderr") - se).abs() < 1e-12);
    assert_eq!(r.outputs["scoring"], "generative");
    let records = r.details["items"].as_array().unwrap();
    assert_eq!(records[0]["expected"], "18");
    assert_eq!(records[0]["extracted"], "18");
    assert_eq!(records[7]["status"], "unparsable");
    assert_eq!(records[8]["status"], "errored");
    // Two examples precede each question, never the question itself.
    let prompt = records[0]["prompt"].as_str().unwrap();
    assert_eq!(prompt.matches("Question: ").count(), 3);
    assert_eq!(prompt.matches(items[0].0.as_str()).count(), 1);
    assert!(!prompt.contains("<<"), "calculator annotations are removed");
}

#[tokio::test]
async fn a_quality_benchmark_that_scores_nothing_fails() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&simulator(json!({"error_rate": 1.0})), dir.path()).await;
    let r = run(
        &engine,
        "gsm8k",
        json!({"dataset": gsm8k_file().display().to_string(), "limit": 3, "few_shot": 0}),
    )
    .await;
    engine.cleanup().await;
    assert!(!r.passed);
    assert_eq!(metric(&r, "scored"), 0.0);
    assert_eq!(metric(&r, "errored"), 3.0);
    assert!(r.errors[0].contains("no item was scored"), "{:?}", r.errors);

    // Half the items failing fails the run too, whatever the rest scored.
    let some = start(
        &simulator(json!({"error_rate": 0.5, "seed": 2})),
        dir.path(),
    )
    .await;
    let r = run(
        &some,
        "gsm8k",
        json!({"dataset": gsm8k_file().display().to_string(), "limit": 10, "few_shot": 0,
               "max_tokens": 4}),
    )
    .await;
    some.cleanup().await;
    assert!(!r.passed);
    assert!(metric(&r, "errored") >= 2.0);
    assert!(r.errors[0].contains("more than 10 %"), "{:?}", r.errors);
}

#[tokio::test]
async fn gsm8k_runs_against_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&simulator(json!({"ttft": "1ms", "itl": "1ms"})), dir.path()).await;
    let r = run(
        &engine,
        "gsm8k",
        json!({"dataset": gsm8k_file().display().to_string(), "limit": 5, "max_tokens": 8}),
    )
    .await;
    engine.cleanup().await;
    // The simulator's filler words hold no number: every item is scored, and unparsable.
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "scored"), 5.0);
    assert_eq!(metric(&r, "unparsable"), 5.0);
    assert_eq!(metric(&r, "accuracy"), 0.0);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The letter among A–D the simulator's log-probabilities favour.
fn favoured_letter() -> usize {
    (0..4)
        .max_by(|&a, &b| {
            let lp = |i: usize| {
                kitt::engine::simulator::word_logprob(&((b'A' + i as u8) as char).to_string())
            };
            lp(a).total_cmp(&lp(b))
        })
        .unwrap()
}

#[tokio::test]
async fn mmlu_switches_to_loglikelihood_where_the_engine_scores_prompts() {
    mmlu_by_loglikelihood(json!({})).await;
}

/// A server whose tokenizer adds a beginning-of-sequence token (vLLM with Llama 3) counts
/// its text in every offset: scoring maps them back and still works.
#[tokio::test]
async fn loglikelihood_works_when_the_tokenizer_adds_a_bos_token() {
    mmlu_by_loglikelihood(json!({"bos_token": "<|begin_of_text|>"})).await;
}

async fn mmlu_by_loglikelihood(config: serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let best = favoured_letter();
    // Three items whose answer is the favoured letter, one whose answer is another.
    let rows: Vec<String> = (0..4)
        .map(|i| {
            let answer = if i < 3 { best } else { (best + 1) % 4 };
            json!({"question": format!("Question {i}?"), "subject": "demo",
                   "choices": ["w", "x", "y", "z"], "answer": answer})
            .to_string()
        })
        .collect();
    write(dir.path(), "mmlu.jsonl", &rows.join("\n"));
    let engine = start(&simulator(config), dir.path()).await;
    let r = run_with(
        &engine,
        "mmlu",
        json!({"dataset": "mmlu.jsonl"}),
        0,
        dir.path(),
    )
    .await
    .unwrap();
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(r.outputs["scoring"], "loglikelihood");
    assert_eq!(metric(&r, "accuracy"), 0.75);
    // Asked to generate instead, the simulator's filler holds no option letter.
    let g = run_with(
        &engine,
        "mmlu",
        json!({"dataset": "mmlu.jsonl", "scoring": "generative", "max_tokens": 6}),
        0,
        dir.path(),
    )
    .await
    .unwrap();
    engine.cleanup().await;
    assert_eq!(g.outputs["scoring"], "generative");
    assert_eq!(metric(&g, "unparsable"), 4.0);
}

#[tokio::test]
async fn loglikelihood_on_an_engine_without_prompt_logprobs_says_so() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tqa.jsonl",
        &json!({"question": "Is the sky green?", "mc1_targets": {"choices": ["No", "Yes"], "labels": [1, 0]}}).to_string(),
    );
    let url = answering_server(|_| Some("Answer: A".into())).await;
    let engine = start(&external(&url), dir.path()).await;
    let forced = run_with(
        &engine,
        "truthfulqa",
        json!({"dataset": "tqa.jsonl", "scoring": "loglikelihood"}),
        0,
        dir.path(),
    )
    .await
    .expect_err("no logprobs here");
    assert!(forced.to_string().contains("echo + logprobs"), "{forced}");
    // Auto falls back to generation and records why.
    let auto = run_with(
        &engine,
        "truthfulqa",
        json!({"dataset": "tqa.jsonl"}),
        0,
        dir.path(),
    )
    .await
    .unwrap();
    engine.cleanup().await;
    assert_eq!(auto.outputs["scoring"], "generative");
    assert!(
        auto.details["scoring_note"]
            .as_str()
            .unwrap()
            .contains("log-likelihood unavailable")
    );
    assert_eq!(metric(&auto, "scored"), 1.0);
}

#[tokio::test]
async fn hellaswag_and_truthfulqa_read_their_published_layouts() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "hs.jsonl",
        &json!({"activity_label": "Cooking", "ctx": "A man cracks an egg [title] into a bowl",
                "endings": ["whisks it.", "eats the bowl.", "flies away.", "sings."], "label": "0"})
        .to_string(),
    );
    write(
        dir.path(),
        "tqa.jsonl",
        &json!({"question": "What is 2+2?", "mc1_targets": {"choices": ["4", "5", "22"], "labels": [1, 0, 0]}}).to_string(),
    );
    let engine = start(&simulator(json!({})), dir.path()).await;
    for (name, file) in [("hellaswag", "hs.jsonl"), ("truthfulqa", "tqa.jsonl")] {
        let r = run_with(&engine, name, json!({"dataset": file}), 0, dir.path())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(r.passed, "{name}: {:?}", r.errors);
        assert_eq!(metric(&r, "scored"), 1.0, "{name}");
        assert_eq!(r.outputs["scoring"], "loglikelihood", "{name}");
        let prompt = r.details["items"][0]["prompt"].as_str().unwrap();
        assert!(!prompt.contains("[title]"), "{prompt}");
    }
    engine.cleanup().await;
}

#[tokio::test]
async fn custom_evaluations_score_inline_items_with_a_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&simulator(json!({})), dir.path()).await;
    // The simulator always says " the model answers with simulated tokens at a known pace."
    let params = |threshold: f64| {
        json!({
            "items": [
                {"q": "first", "answer": "simulated"},
                {"q": "second", "answer": "banana"},
                {"q": "third", "answer": "known pace"},
                {"q": "fourth", "answer": "KNOWN"}
            ],
            "prompt": "Say something about {{ q }}.",
            "scorer": {"type": "contains"},
            "threshold": threshold,
            "max_tokens": 11
        })
    };
    let r = run(&engine, "custom", params(0.5)).await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "accuracy"), 0.75);
    assert_eq!(
        r.details["items"][0]["prompt"],
        "Say something about first."
    );
    let strict = run(&engine, "custom", params(0.9)).await;
    assert!(!strict.passed);
    assert!(
        strict
            .errors
            .iter()
            .any(|e| e.contains("below the pass threshold 0.9"))
    );
    // A regex that finds nothing leaves the item unparsable, not passed.
    let regex = run(
        &engine,
        "custom",
        json!({"items": [{"q": "x", "answer": "42"}], "prompt": "{{ q }}",
               "scorer": {"type": "regex", "pattern": "answer: (\\d+)"}}),
    )
    .await;
    assert_eq!(metric(&regex, "unparsable"), 1.0);
    assert_eq!(metric(&regex, "accuracy"), 0.0);
    engine.cleanup().await;
}

#[tokio::test]
async fn bad_datasets_and_templates_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&simulator(json!({})), dir.path()).await;
    let err = |name: &'static str, params: Value| {
        let engine = &engine;
        let base = dir.path().to_path_buf();
        async move {
            run_with(engine, name, params, 0, &base)
                .await
                .expect_err("refused")
        }
    };
    let missing = err("gsm8k", json!({"dataset": "nope.jsonl"})).await;
    assert!(matches!(missing, BenchError::Dataset(_)));
    assert!(missing.to_string().contains("nope.jsonl"), "{missing}");
    write(
        dir.path(),
        "q.jsonl",
        "{\"question\": \"a?\", \"answer\": \"#### 1\"}\n{\"problem\": \"b?\"}\n",
    );
    let field = err("gsm8k", json!({"dataset": "q.jsonl", "few_shot": 0}))
        .await
        .to_string();
    assert!(
        field.contains("row 2") && field.contains("`question`") && field.contains("problem"),
        "{field}"
    );
    write(
        dir.path(),
        "n.jsonl",
        "{\"question\": \"a?\", \"answer\": \"no number\"}\n",
    );
    let answer = err("gsm8k", json!({"dataset": "n.jsonl"}))
        .await
        .to_string();
    assert!(
        answer.contains("row 1") && answer.contains("####"),
        "{answer}"
    );
    let template = err(
        "custom",
        json!({"items": [{"q": "x", "answer": "y"}], "prompt": "{{ question }}", "scorer": {"type": "exact"}}),
    )
    .await
    .to_string();
    assert!(
        template.contains("row 1") && template.contains("undefined"),
        "{template}"
    );
    let regex = err(
        "custom",
        json!({"items": [{"q": "x", "answer": "y"}], "prompt": "{{ q }}", "scorer": {"type": "regex", "pattern": "("}}),
    )
    .await
    .to_string();
    assert!(regex.contains("does not compile"), "{regex}");
    let key = err(
        "custom",
        json!({"items": [{"q": "x", "choices": ["red", "blue"], "answer": "green"}],
               "prompt": "{{ q }} {{ options }}", "scorer": {"type": "choice"}}),
    )
    .await
    .to_string();
    assert!(key.contains("row 1") && key.contains("`green`"), "{key}");
    engine.cleanup().await;
}

#[tokio::test]
async fn datasets_in_csv_and_json_with_a_field_mapping() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "m.csv",
        "problem,solution\n\"What is 2, plus 2?\",#### 4\n",
    );
    write(
        dir.path(),
        "m.json",
        "[{\"problem\": \"What is 3+3?\", \"solution\": \"#### 6\"}]",
    );
    let url = answering_server(|q| {
        Some(
            if q.contains("2, plus 2") {
                "#### 4"
            } else {
                "#### 7"
            }
            .into(),
        )
    })
    .await;
    let engine = start(&external(&url), dir.path()).await;
    for (file, accuracy) in [("m.csv", 1.0), ("m.json", 0.0)] {
        let r = run_with(
            &engine,
            "gsm8k",
            json!({"dataset": {"path": file, "fields": {"question": "problem", "answer": "solution"}}, "few_shot": 0}),
            0,
            dir.path(),
        )
        .await
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(metric(&r, "accuracy"), accuracy, "{file}");
    }
    engine.cleanup().await;
}

/// A stand-in for the datasets-server rows API: `total` rows, served in pages.
async fn rows_api(total: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let app = Router::new().route(
        "/rows",
        get(move |uri: axum::http::Uri| {
            let counter = counter.clone();
            let q: HashMap<String, String> = uri
                .query()
                .unwrap_or_default()
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.replace("%2F", "/")))
                .collect();
            async move {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if q.get("dataset").map(String::as_str) != Some("org/set") {
                    return (StatusCode::NOT_FOUND, axum::Json(json!({"error": "no such dataset"})))
                        .into_response();
                }
                let offset: usize = q["offset"].parse().unwrap();
                let length: usize = q["length"].parse().unwrap();
                let rows: Vec<Value> = (offset..(offset + length).min(total))
                    .map(|i| json!({"row_idx": i, "row": {"question": format!("q{i}"), "answer": format!("#### {i}")}}))
                    .collect();
                axum::Json(json!({"rows": rows, "num_rows_total": total})).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), calls)
}

#[tokio::test]
async fn hugging_face_datasets_are_downloaded_once_into_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (url, calls) = rows_api(250).await;
    let file = kitt::bench::hf::cached_from(&url, "org/set", "main", "test", dir.path())
        .await
        .unwrap();
    let rows = kitt::bench::dataset::read_file(&file, None).unwrap();
    assert_eq!(rows.len(), 250);
    assert_eq!(rows[249].value["question"], "q249");
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "pages of 100"
    );
    // The second time nothing is downloaded.
    let again = kitt::bench::hf::cached_from(&url, "org/set", "main", "test", dir.path())
        .await
        .unwrap();
    assert_eq!(again, file);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
    let missing = kitt::bench::hf::cached_from(&url, "org/none", "main", "test", dir.path())
        .await
        .unwrap_err();
    assert!(
        missing.contains("404") && missing.contains("no such dataset"),
        "{missing}"
    );
}
