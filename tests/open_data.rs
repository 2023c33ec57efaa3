//! Open data: the documented store schema against a new store's tables, per-request samples
//! exported, and vLLM's and GuideLLM's result files imported under kitt's metric names,
//! cross-checked against their own per-request data, and compared with a kitt run.

mod common;

use std::path::Path;

use serde_json::Value;

use common::binary::{Env, sim_suite};

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/foreign")
        .join(name)
        .display()
        .to_string()
}

fn show(env: &Env, run: &str) -> Value {
    let out = env.kitt(&["results", "show", run, "--json"]);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    serde_json::from_str(&out.stdout).unwrap()
}

fn metric(node: &Value, name: &str) -> f64 {
    node["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {node}"))["value"]
        .as_f64()
        .unwrap()
}

fn imported_id(out: &common::binary::Run) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("imported run "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{}", out.text()))
        .to_string()
}

fn samples(env: &Env, run: &str) -> Vec<Value> {
    let out = env.kitt(&["results", "export", run, "--format", "jsonl", "--samples"]);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_store_schema_page_names_every_table_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kitt.db");
    drop(kitt::store::Store::open(&path).unwrap());
    let tables = kitt::store::Store::open_existing(&path)
        .unwrap()
        .schema_columns()
        .unwrap();
    assert!(tables.len() >= 8, "{tables:?}");
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/open-data.md"))
            .unwrap();
    assert!(
        page.contains(&format!(
            "## The store's schema (version {})",
            kitt::store::SCHEMA_VERSION
        )),
        "the page's version is the store's"
    );
    for (table, columns) in tables {
        assert!(page.contains(&format!("| `{table}` |")), "{table}");
        for c in columns {
            assert!(page.contains(&format!("`{c}`")), "{table}.{c}");
        }
    }
}

#[test]
fn a_vllm_result_imports_under_kitt_names_and_its_samples_agree() {
    let env = Env::new();
    let file = data("vllm-bench-serve.json");
    let out = env.kitt(&["results", "import", "--from", "vllm", &file]);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    // What has no kitt name is said.
    assert!(
        out.stdout.contains("std_ttft_ms") && out.stdout.contains("rtfx"),
        "{}",
        out.text()
    );
    let run = imported_id(&out);
    let doc = show(&env, &run);
    assert_eq!(doc["suite"], "vllm-bench-serve");
    assert_eq!(doc["fingerprint"], "unknown");
    assert_eq!(doc["started_at"], 1_760_004_930.0, "20251009-101530 as UTC");
    let node = &doc["nodes"][0];
    assert_eq!(node["leg"], "serve[request_rate=2.0]");
    assert_eq!(node["model"], "Qwen/Qwen3-0.6B");
    for (name, value) in [
        ("requests_per_s", 2.078138),
        ("output_tokens_per_s", 16.625104),
        ("ttft_mean_ms", 45.366667),
        ("ttft_p50_ms", 45.2),
        ("ttft_p99_ms", 47.062),
        ("tpot_p50_ms", 12.014286),
        ("itl_p99_ms", 12.38),
        ("e2e_mean_ms", 129.7),
        ("requests", 3.0),
        ("errors", 0.0),
        ("error_rate", 0.0),
        ("prompt_tokens_mean", 128.0),
        ("output_tokens_mean", 8.0),
    ] {
        assert_eq!(metric(node, name), value, "{name}");
    }
    assert!(
        node["details"]["unmapped_metrics"]
            .as_array()
            .unwrap()
            .contains(&Value::from("std_e2el_ms"))
    );
    // The per-request lists (seconds) became samples (ms) whose mean is vLLM's mean.
    let rows = samples(&env, &run);
    assert_eq!(rows.len(), 3);
    let mean = |k: &str| rows.iter().map(|r| r[k].as_f64().unwrap()).sum::<f64>() / 3.0;
    assert!((mean("ttft_ms") - 45.366667).abs() < 1e-3, "{rows:?}");
    assert!((mean("e2e_ms") - 129.7).abs() < 1e-3);
    assert!((mean("tpot_ms") - metric(node, "tpot_mean_ms")).abs() < 1e-3);
    assert_eq!(rows[1]["at_ms"].as_f64().unwrap().round(), 500.0);
    // The same file again is not a second run.
    let again = env.kitt(&["results", "import", "--from", "vllm", &file]);
    assert!(
        again.stdout.contains("already in the store"),
        "{}",
        again.text()
    );
    let list = env.kitt(&["results", "list", "--json"]);
    let runs: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
}

#[test]
fn a_guidellm_report_imports_a_leg_per_benchmark() {
    let env = Env::new();
    let out = env.kitt(&[
        "results",
        "import",
        "--from",
        "guidellm",
        &data("guidellm-report.json"),
        "--json",
    ]);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let run = report[0]["runs"][0].as_str().unwrap().to_string();
    assert!(
        report[0]["unmapped"][0]
            .as_str()
            .unwrap()
            .contains("time_per_output_token_ms")
    );
    let doc = show(&env, &run);
    assert_eq!(doc["suite"], "guidellm");
    assert_eq!(doc["suite_version"], "guidellm 0.7.3");
    let node = &doc["nodes"][0];
    assert_eq!(node["leg"], "constant[rate=2.0]");
    assert_eq!(node["model"], "Qwen/Qwen3-0.6B");
    assert_eq!(metric(node, "ttft_p50_ms"), 44.399977);
    assert_eq!(metric(node, "tpot_p50_ms"), 11.999997);
    assert!((metric(node, "e2e_mean_ms") - 807.167).abs() < 1e-6);
    assert_eq!(metric(node, "requests_per_s"), 1.675603);
    assert_eq!(metric(node, "concurrency_max"), 2.0);
    assert_eq!(metric(node, "requests"), 3.0);
    // The per-request records agree with the distributions.
    let rows = samples(&env, &run);
    assert_eq!(rows.len(), 3);
    let mean = |k: &str| rows.iter().map(|r| r[k].as_f64().unwrap()).sum::<f64>() / 3.0;
    assert!((mean("ttft_ms") - metric(node, "ttft_mean_ms")).abs() < 1e-3);
    assert!((mean("e2e_ms") - metric(node, "e2e_mean_ms")).abs() < 1e-3);
}

#[test]
fn an_imported_run_compares_with_a_kitt_run_of_the_same_leg() {
    let env = Env::new();
    let suite = env.write(
        "s.yaml",
        sim_suite("serve", "  - id: serve\n    benchmark: latency\n    engine: sim\n    params: {requests: 12, output_tokens: 4}\n"),
    );
    let out = env.kitt(&["apply", suite.to_str().unwrap(), "--plain"]);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    let list: Value =
        serde_json::from_str(&env.kitt(&["results", "list", "--json"]).stdout).unwrap();
    let ours = list[0]["id"].as_str().unwrap().to_string();
    let out = env.kitt(&[
        "results",
        "import",
        "--from",
        "vllm",
        "--leg",
        "serve",
        &data("vllm-bench-serve.json"),
    ]);
    let theirs = imported_id(&out);
    let out = env.kitt(&["results", "compare", &ours, &theirs, "--json"]);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    let rows: Value = serde_json::from_str(&out.stdout).unwrap();
    let ttft = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "ttft_p50_ms")
        .unwrap_or_else(|| panic!("{rows}"));
    assert_eq!(ttft["leg"], "serve");
    assert_eq!(ttft["b"], 45.2);
    // Three requests are too few for a bootstrap: the verdict says so rather than guess.
    assert_eq!(ttft["verdict"], "unknown");
    // --leg on a file of several legs, kitt stores with --suite: refused with the reason.
    let out = env.kitt(&["results", "import", "--suite", "x", "kitt.db"]);
    assert_eq!(out.code(), Some(64), "{}", out.text());
}

#[test]
fn bad_foreign_files_get_errors_that_say_where_and_nothing_is_stored() {
    let env = Env::new();
    let wrong = env.kitt(&[
        "results",
        "import",
        "--from",
        "vllm",
        &data("guidellm-report.json"),
    ]);
    assert_eq!(wrong.code(), Some(64));
    assert!(
        wrong
            .stderr
            .contains("not a `vllm bench serve --save-result` file"),
        "{}",
        wrong.text()
    );
    let broken = env.write(
        "broken.json",
        "{\"request_throughput\": 1,\n \"duration\": }\n",
    );
    let out = env.kitt(&[
        "results",
        "import",
        "--from",
        "vllm",
        broken.to_str().unwrap(),
    ]);
    assert_eq!(out.code(), Some(64));
    assert!(out.stderr.contains("line 2, column"), "{}", out.text());
    // Python's NaN/Infinity and one object per line (--append-result): two runs.
    let lines = env.write(
        "appended.json",
        "{\"request_throughput\": 1.5, \"duration\": 2.0, \"request_rate\": \"inf\", \"burstiness\": Infinity, \"mean_ttft_ms\": NaN}\n\
         {\"request_throughput\": 2.5, \"duration\": 2.0, \"request_rate\": 4, \"max_concurrency\": 8}\n",
    );
    let out = env.kitt(&[
        "results",
        "import",
        "--from",
        "vllm",
        lines.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let runs = report[0]["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let second = show(&env, runs[1].as_str().unwrap());
    assert_eq!(
        second["nodes"][0]["leg"],
        "serve[request_rate=4,max_concurrency=8]"
    );
    let first = show(&env, runs[0].as_str().unwrap());
    assert_eq!(
        first["nodes"][0]["metrics"].as_array().unwrap().len(),
        1,
        "NaN is no value"
    );
    // Only the two good runs are in the store.
    let list: Value =
        serde_json::from_str(&env.kitt(&["results", "list", "--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
}
