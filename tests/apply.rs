//! `kitt apply`, `kitt run`, `kitt results`, `kitt diff` end to end, through the binary:
//! the demo suite, a failing node followed by `run_if: always`, a breached assert, Ctrl-C
//! leaving no engine process and keeping completed nodes, `--resume`, `diff` and
//! `--only-changed`, and the real llama.cpp server natively and in Docker.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A store and a data directory of a test's own.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("kitt.db")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = common::binary::isolated(self.dir.path());
        c.args(args)
            .arg(format!("--store={}", self.store().display()))
            .current_dir(self.dir.path());
        c
    }

    fn kitt(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("kitt runs")
    }

    /// kitt for a command that takes no store (`plan`).
    fn kitt_storeless(&self, args: &[&str]) -> Output {
        common::binary::isolated(self.dir.path())
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("kitt runs")
    }

    /// Writes a suite file into the test's directory.
    fn suite(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write suite");
        path.display().to_string()
    }

    fn show(&self, run: &str) -> Value {
        let out = self.kitt(&["results", "show", run, "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }
}

use common::text;

/// The run id a finished `kitt apply` printed.
fn run_id(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    out.lines()
        .find_map(|l| {
            l.strip_prefix("run ")
                .and_then(|r| r.split_whitespace().next())
        })
        .unwrap_or_else(|| panic!("no run id in:\n{}", text(o)))
        .to_string()
}

/// The shipped demo suite, by absolute path (tests run in their own directory).
fn demo() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("suites/demo.yaml")
        .display()
        .to_string()
}

fn node<'a>(run: &'a Value, leg: &str) -> &'a Value {
    run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["leg"] == leg)
        .unwrap_or_else(|| panic!("no leg {leg} in {run}"))
}

fn metric(node: &Value, name: &str) -> f64 {
    node["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["value"].as_f64())
        .unwrap_or_else(|| panic!("no metric {name} in {node}"))
}

#[test]
fn the_demo_suite_runs_end_to_end_and_is_stored() {
    let env = Env::new();
    let summary = env.dir.path().join("step-summary.md");
    let out = env
        .command(&["apply", &demo(), "--plain"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .expect("kitt runs");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for leg in [
        "latency",
        "load[concurrency=1]",
        "load[concurrency=8]",
        "throughput",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(leg) && l.contains("succeeded")),
            "{stdout}"
        );
    }
    let id = run_id(&out);
    let run = env.show(&id);
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["suite"], "demo");
    assert_eq!(run["nodes"].as_array().unwrap().len(), 5);
    let latency = node(&run, "latency");
    assert!(metric(latency, "ttft_p50_ms") >= 40.0);
    assert_eq!(latency["asserts"].as_array().unwrap().len(), 2);
    assert!(run["fingerprint"].as_str().unwrap().len() == 12);
    assert!(run["ended_at"].as_f64().unwrap() > run["started_at"].as_f64().unwrap());
    // Listed, shown for people, exported as CSV.
    let list = env.kitt(&["results", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains(&id));
    let show = env.kitt(&["results", "show", &id]);
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.contains("ttft") && shown.contains("assert held"),
        "{shown}"
    );
    let csv = env.kitt(&["results", "export", &id, "--format", "csv"]);
    let mut reader = csv::Reader::from_reader(csv.stdout.as_slice());
    let rows = reader.records().count();
    assert!(rows > 100, "{rows} metric rows");
    // The suite's reports were written where it says, and the step summary got the Markdown.
    let md =
        std::fs::read_to_string(env.dir.path().join("reports/demo.md")).expect("reports/demo.md");
    assert!(
        md.contains("demo 1.0.0: passed") && md.contains("| `latency` |"),
        "{md}"
    );
    let junit =
        std::fs::read_to_string(env.dir.path().join("reports/junit.xml")).expect("junit.xml");
    assert!(junit.contains("<testsuites name=\"demo\""), "{junit}");
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), md);
}

const TWO_ENGINES: &str = r#"
apiVersion: kitt/v1
kind: Suite
metadata: {name: faults, version: 1.0.0}
engines:
  broken: {uses: simulator, config: {error_rate: 1.0}}
  sim: {uses: simulator, config: {ttft: 5ms, itl: 1ms}}
nodes:
  - id: fails
    benchmark: latency
    engine: broken
    params: {requests: 2, output_tokens: 2}
  - id: cleanup
    benchmark: latency
    engine: sim
    needs: [fails]
    run_if: always
    params: {requests: 2, output_tokens: 2}
  - id: after
    benchmark: latency
    engine: sim
    needs: [fails]
    params: {requests: 2, output_tokens: 2}
"#;

#[test]
fn a_failing_node_fails_the_run_but_run_if_always_still_runs() {
    let env = Env::new();
    let suite = env.suite("faults.yaml", TWO_ENGINES);
    let out = env.kitt(&["apply", &suite, "--plain"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let run = env.show(&run_id(&out));
    assert_eq!(run["status"], "failed");
    assert_eq!(node(&run, "fails")["status"], "failed");
    assert_eq!(node(&run, "cleanup")["status"], "succeeded");
    assert_eq!(node(&run, "after")["status"], "skipped");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Failures:") && stdout.contains("no request succeeded"),
        "{stdout}"
    );
}

#[test]
fn a_breached_assert_exits_1_and_says_measured_vs_bound() {
    let env = Env::new();
    let suite = env.suite(
        "assert.yaml",
        r#"
apiVersion: kitt/v1
kind: Suite
metadata: {name: asserts, version: 1.0.0}
engines:
  sim: {uses: simulator, config: {ttft: 20ms, itl: 1ms}}
nodes:
  - id: latency
    benchmark: latency
    engine: sim
    params: {requests: 3, output_tokens: 2}
    assert: {ttft_p99_ms: {max: 5}, error_rate: {max: 0}}
"#,
    );
    let out = env.kitt(&["apply", &suite, "--plain"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Breached asserts:"), "{stdout}");
    assert!(
        stdout.contains("ttft_p99_ms") && stdout.contains("> max 5"),
        "{stdout}"
    );
    let run = env.show(&run_id(&out));
    let asserts = node(&run, "latency")["asserts"].as_array().unwrap().clone();
    assert_eq!(asserts[0]["passed"], false);
    assert!(asserts[0]["measured"].as_f64().unwrap() >= 20.0);
    assert_eq!(asserts[1]["passed"], true);
}

#[test]
fn ratio_asserts_compare_with_the_last_successful_run() {
    let env = Env::new();
    let suite = |max_ratio: f64, ttft: &str| {
        format!(
            r#"
apiVersion: kitt/v1
kind: Suite
metadata: {{name: ratio, version: 1.0.0}}
engines:
  sim: {{uses: simulator, config: {{ttft: {ttft}, itl: 1ms}}}}
nodes:
  - id: latency
    benchmark: latency
    engine: sim
    params: {{requests: 3, output_tokens: 2}}
    assert: {{ttft_p50_ms: {{max_ratio: {max_ratio}, baseline: last-success}}}}
"#
        )
    };
    // The first run has no baseline: the ratio is not checked, and says so.
    let first = env.kitt(&[
        "apply",
        &env.suite("r.yaml", &suite(1.5, "20ms")),
        "--plain",
    ]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let run = env.show(&run_id(&first));
    assert!(
        node(&run, "latency")["asserts"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no baseline")
    );
    // Fifteen times slower than the baseline breaches max_ratio 1.5 whatever the noise.
    let second = env.kitt(&[
        "apply",
        &env.suite("r.yaml", &suite(1.5, "300ms")),
        "--plain",
    ]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(String::from_utf8_lossy(&second.stdout).contains("over max_ratio 1.5"));
}

/// A run of a slow native "engine" would not do: this uses the real llama-server so that
/// Ctrl-C is checked against a real process, found by a unique alias on its command line.
#[test]
fn ctrl_c_keeps_finished_nodes_stops_the_engine_and_resume_continues() {
    if common::skipped("llama") {
        return;
    }
    let env = Env::new();
    let marker = format!("kitt-apply-{}", std::process::id());
    let suite = env.suite(
        "interrupt.yaml",
        &format!(
            r#"
apiVersion: kitt/v1
kind: Suite
metadata: {{name: interrupt, version: 1.0.0}}
engines:
  local:
    uses: llama.cpp
    mode: native
    model: {model}
    args: [--alias, {marker}]
    config: {{binary: {binary}, threads: 2}}
nodes:
  - id: quick
    benchmark: latency
    engine: local
    params: {{requests: 2, input_tokens: 8, output_tokens: 4}}
  - id: long
    benchmark: latency
    engine: local
    needs: [quick]
    params: {{requests: 400, input_tokens: 8, output_tokens: 64}}
"#,
            model = common::test_model().display(),
            binary = common::llama_server().display(),
        ),
    );
    let mut child = env
        .command(&["apply", &suite, "--plain"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kitt runs");
    // Wait until `quick` is stored and `long` is running, reading the store meanwhile.
    let start = Instant::now();
    let run = loop {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run never reached `long`"
        );
        std::thread::sleep(Duration::from_millis(200));
        let out = env.kitt(&["results", "show", "last", "--json"]);
        if !out.status.success() {
            continue;
        }
        let run: Value = serde_json::from_slice(&out.stdout).unwrap();
        let long_running = run["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["leg"] == "long" && n["status"] == "running");
        if long_running {
            break run;
        }
    };
    assert_eq!(node(&run, "quick")["status"], "succeeded");
    assert!(
        !common::processes_with(&marker).is_empty(),
        "llama-server runs"
    );
    assert_eq!(common::interrupt(&mut child), Some(130));
    assert!(
        common::processes_with(&marker).is_empty(),
        "llama-server left behind: {:?}",
        common::processes_with(&marker)
    );
    let id = run["id"].as_str().unwrap().to_string();
    let after = env.show(&id);
    assert_eq!(after["status"], "interrupted");
    assert_eq!(node(&after, "quick")["status"], "succeeded");
    assert!(
        metric(node(&after, "quick"), "ttft_p50_ms") > 0.0,
        "measurements kept"
    );
    assert_eq!(node(&after, "long")["status"], "cancelled");
    let quick_started = node(&after, "quick")["started_at"].clone();

    // Resume with a shorter `long`: a changed spec runs again, `quick` is kept as it was.
    let shorter = std::fs::read_to_string(&suite)
        .unwrap()
        .replace("requests: 400", "requests: 2");
    std::fs::write(&suite, shorter).unwrap();
    let resumed = env.kitt(&["apply", &suite, "--resume", &id, "--plain"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    let done = env.show(&id);
    assert_eq!(done["status"], "succeeded");
    assert_eq!(
        node(&done, "quick")["started_at"],
        quick_started,
        "not run again"
    );
    assert_eq!(node(&done, "long")["status"], "succeeded");
    assert!(common::processes_with(&marker).is_empty());
}

const THREE_NODES: &str = r#"
apiVersion: kitt/v1
kind: Suite
metadata: {name: gitops, version: 1.0.0}
engines:
  sim: {uses: simulator, config: {ttft: 2ms, itl: 1ms}}
nodes:
  - id: a
    benchmark: latency
    engine: sim
    params: {requests: 2, output_tokens: 2}
  - id: b
    benchmark: throughput
    engine: sim
    needs: [a]
    params: {requests: 4, concurrency: 2, output_tokens: 2}
  - id: c
    benchmark: latency
    engine: sim
    needs: [b]
    params: {requests: 2, output_tokens: 2}
"#;

#[test]
fn diff_and_only_changed_follow_the_edited_node_and_its_dependents() {
    let env = Env::new();
    let suite = env.suite("gitops.yaml", THREE_NODES);
    let diff = env.kitt(&["diff", &suite]);
    assert_eq!(
        diff.status.code(),
        Some(1),
        "nothing ran yet: everything is new"
    );
    let first = env.kitt(&["apply", &suite, "--plain"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let clean = env.kitt(&["diff", &suite]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    assert!(String::from_utf8_lossy(&clean.stdout).contains("no changes"));
    // Edit b: b and c (which needs b) run again, a is reused.
    env.suite(
        "gitops.yaml",
        &THREE_NODES.replace("concurrency: 2", "concurrency: 3"),
    );
    let diff = env.kitt(&["diff", &suite, "--json"]);
    assert_eq!(diff.status.code(), Some(1));
    let changes: Value = serde_json::from_slice(&diff.stdout).unwrap();
    let changed: Vec<&str> = changes["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["leg"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["b"]);
    let dry = env.kitt(&["apply", &suite, "--only-changed", "--dry-run"]);
    let plan = String::from_utf8_lossy(&dry.stdout);
    assert!(
        plan.contains("skip a") && plan.contains("run  b") && plan.contains("run  c"),
        "{plan}"
    );
    let second = env.kitt(&["apply", &suite, "--only-changed", "--plain"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let run = env.show(&run_id(&second));
    assert_eq!(node(&run, "a")["status"], "reused");
    assert_eq!(node(&run, "b")["status"], "succeeded");
    assert_eq!(node(&run, "c")["status"], "succeeded");
    assert!(
        metric(node(&run, "a"), "requests") > 0.0,
        "reused metrics are copied"
    );
    assert_eq!(env.kitt(&["diff", &suite]).status.code(), Some(0));
    // The two runs compare node by node.
    let first_id = run_id(&first);
    let second_id = run_id(&second);
    let cmp = env.kitt(&["results", "compare", &first_id, &second_id]);
    assert!(cmp.status.success(), "{}", text(&cmp));
    let shown = String::from_utf8_lossy(&cmp.stdout);
    assert!(
        shown.contains("ttft_p50_ms") && shown.contains("VERDICT"),
        "{shown}"
    );
}

#[test]
fn kitt_run_applies_a_one_engine_suite_from_flags() {
    let env = Env::new();
    let out = env.kitt(&[
        "run",
        "--engine",
        "simulator",
        "--config",
        "ttft=3ms",
        "--config",
        "itl=1ms",
        "-b",
        "latency",
        "-b",
        "throughput",
        "--plain",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = env.show(&run_id(&out));
    assert_eq!(run["suite"], "run-simulator");
    assert_eq!(node(&run, "throughput")["engine_uses"], "simulator");
    let from_suite = env.kitt(&["run", "-e", "simulator", "--suite", &demo(), "--dry-run"]);
    assert_eq!(from_suite.status.code(), Some(0), "{}", text(&from_suite));
    assert!(String::from_utf8_lossy(&from_suite.stdout).contains("load[concurrency=8]"));
}

fn llama_suite(env: &Env, docker: bool) -> String {
    let engine = if docker {
        format!(
            "uses: llama.cpp\n    mode: docker\n    image: {}\n    model: {}\n    args: [--threads, \"2\"]",
            common::images::LLAMA_IMAGE,
            common::test_model().display()
        )
    } else {
        format!(
            "uses: llama.cpp\n    mode: native\n    model: {}\n    config: {{binary: {}, threads: 2}}",
            common::test_model().display(),
            common::llama_server().display()
        )
    };
    let gsm8k = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gsm8k/test-first50.jsonl");
    env.suite(
        "llama.yaml",
        &format!(
            r#"
apiVersion: kitt/v1
kind: Suite
metadata: {{name: llama, version: 1.0.0}}
engines:
  local:
    {engine}
defaults:
  warmup: {{requests: 1}}
nodes:
  - id: latency
    benchmark: latency
    engine: local
    params: {{requests: 3, input_tokens: 16, output_tokens: 8}}
    assert: {{error_rate: {{max: 0}}}}
  - id: gsm8k
    benchmark: gsm8k
    engine: local
    needs: [latency]
    params: {{dataset: {gsm8k}, limit: 2, few_shot: 1, max_tokens: 48, concurrency: 1}}
"#,
            gsm8k = gsm8k.display()
        ),
    )
}

#[test]
fn a_suite_on_the_real_llama_server_natively() {
    if common::skipped("llama") {
        return;
    }
    let env = Env::new();
    let suite = llama_suite(&env, false);
    let out = env.kitt(&["apply", &suite, "--plain"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = env.show(&run_id(&out));
    assert_eq!(
        node(&run, "latency")["model"],
        common::test_model().display().to_string()
    );
    assert_eq!(metric(node(&run, "latency"), "output_tokens_mean"), 8.0);
    assert_eq!(metric(node(&run, "gsm8k"), "scored"), 2.0);
}

#[test]
fn a_suite_on_the_real_llama_server_in_docker() {
    if common::skipped("docker") {
        return;
    }
    common::images::images();
    let env = Env::new();
    let suite = llama_suite(&env, true);
    let out = env.kitt(&["apply", &suite, "--plain"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = env.show(&run_id(&out));
    let latency = node(&run, "latency");
    assert_eq!(latency["image"], common::images::LLAMA_IMAGE);
    assert!(
        latency["image_digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{latency}"
    );
    assert_eq!(metric(node(&run, "gsm8k"), "scored"), 2.0);
    // Every container of the run is gone.
    let ps = Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=kitt.run={}", run["id"].as_str().unwrap()))
        .output()
        .expect("docker ps");
    assert!(String::from_utf8_lossy(&ps.stdout).trim().is_empty());
}

#[test]
fn a_comparison_report_marks_a_real_slowdown() {
    let env = Env::new();
    let suite = |ttft: &str| {
        format!(
            "apiVersion: kitt/v1\nkind: Suite\nmetadata: {{name: cmp, version: 1.0.0}}\n\
             engines:\n  sim: {{uses: simulator, config: {{ttft: {ttft}, itl: 1ms}}}}\n\
             nodes:\n  - id: latency\n    benchmark: latency\n    engine: sim\n    params: {{requests: 12, output_tokens: 2}}\n"
        )
    };
    let a = env.kitt(&["apply", &env.suite("c.yaml", &suite("5ms")), "--plain"]);
    let b = env.kitt(&["apply", &env.suite("c.yaml", &suite("80ms")), "--plain"]);
    let (a, b) = (run_id(&a), run_id(&b));
    let out = env.kitt(&["report", "--runs", &format!("{a},{b}")]);
    assert!(out.status.success(), "{}", text(&out));
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains(&a) && md.contains(&b), "{md}");
    let row = md
        .lines()
        .find(|l| l.contains("`ttft_p50_ms`"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(row.contains("**worse**"), "{row}");
    let json = env.kitt(&[
        "report",
        "--runs",
        &format!("{a},{b}"),
        "--reporter",
        "json",
    ]);
    let doc: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["runs"].as_array().unwrap().len(), 2);
    // The HTML comparison (its template was missing from the built-ins).
    let html = env.kitt(&["report", "--runs", &format!("{a},{b}"), "-r", "html"]);
    assert!(html.status.success(), "{}", text(&html));
    let html = String::from_utf8_lossy(&html.stdout);
    assert_eq!(html.matches("class=\"run-series\"").count(), 2, "{html}");
}

#[test]
fn a_template_beside_the_suite_replaces_a_builtin_block_by_block() {
    let env = Env::new();
    let suite = env.suite(
        "t.yaml",
        "apiVersion: kitt/v1\nkind: Suite\nmetadata: {name: t, version: 1.0.0}\n\
         engines:\n  sim: {uses: simulator, config: {ttft: 2ms, itl: 1ms}}\n\
         nodes:\n  - id: latency\n    benchmark: latency\n    engine: sim\n    params: {requests: 2, output_tokens: 2}\n\
         reports:\n  - {reporter: markdown, output: summary.md}\n",
    );
    let templates = env.dir.path().join(".kitt/templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(
        templates.join("markdown.md.j2"),
        "{% extends \"builtin/markdown.md.j2\" %}{% block footer %}CUSTOM FOOTER for {{ suite.name }}{% endblock %}",
    )
    .unwrap();
    let out = env.kitt(&["apply", &suite, "--plain"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let md = std::fs::read_to_string(env.dir.path().join("summary.md")).unwrap();
    assert!(
        md.contains("CUSTOM FOOTER for t") && md.contains("## Nodes"),
        "{md}"
    );
    // Ejecting writes the built-in exactly as `show` prints it.
    let ejected = env.dir.path().join("ejected");
    let templates = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kitt"))
            .arg("templates")
            .args(args)
            .output()
            .expect("kitt runs")
    };
    let eject = templates(&["eject", "html", "--to", ejected.to_str().unwrap()]);
    assert!(eject.status.success(), "{}", text(&eject));
    let show = templates(&["show", "html"]);
    assert_eq!(
        std::fs::read(ejected.join("html.html.j2")).unwrap(),
        show.stdout
    );
    let again = templates(&["eject", "html", "--to", ejected.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "no overwrite without --force");
}

/// llama.cpp divides `--ctx-size` among its `--parallel` slots; kitt's `context_length` is
/// per request whatever `parallel` is. The issue's reproduction: 2,048 tokens and a 5-shot
/// GSM8K node, where each prompt is over a thousand tokens, errored on every item.
#[test]
fn a_llama_cpp_context_length_is_per_request_whatever_parallel_is() {
    if common::skipped("llama") {
        return;
    }
    let env = Env::new();
    let gsm8k = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gsm8k/test-first50.jsonl");
    let suite = env.suite(
        "ctx.yaml",
        &format!(
            r#"
apiVersion: kitt/v1
kind: Suite
metadata: {{name: ctx, version: 1.0.0}}
engines:
  local:
    uses: llama.cpp
    mode: native
    model: {model}
    config: {{binary: {binary}, threads: 2, context_length: 2048, parallel: 4}}
defaults:
  sampling: {{min_tokens: 2}}
nodes:
  - id: gsm8k
    benchmark: gsm8k
    engine: local
    params: {{dataset: {gsm8k}, limit: 4, few_shot: 5, max_tokens: 96, concurrency: 2}}
"#,
            model = common::test_model().display(),
            binary = common::llama_server().display(),
            gsm8k = gsm8k.display()
        ),
    );
    let out = env.kitt(&["apply", &suite, "--plain"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = env.show(&run_id(&out));
    let gsm8k = node(&run, "gsm8k");
    assert_eq!(metric(gsm8k, "errored"), 0.0, "{gsm8k}");
    assert_eq!(metric(gsm8k, "scored"), 4.0, "{gsm8k}");
    // llama-server has no `min_tokens`: the result says it was not applied.
    let warnings = gsm8k["details"]["engine_warnings"].to_string();
    assert!(
        warnings.contains("llama.cpp: min_tokens is not supported"),
        "{warnings}"
    );
    let report = env.kitt(&["report", "last"]);
    assert!(
        String::from_utf8_lossy(&report.stdout).contains("min_tokens is not supported"),
        "{}",
        text(&report)
    );
}

/// A leg's [start, end] in a stored run (Unix seconds).
fn span(run: &Value, leg: &str) -> (f64, f64) {
    let n = node(run, leg);
    (
        n["started_at"].as_f64().unwrap_or_else(|| panic!("{n}")),
        n["ended_at"].as_f64().unwrap_or_else(|| panic!("{n}")),
    )
}

fn overlap(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

#[test]
fn the_run_obeys_the_printed_plan() {
    let env = Env::new();
    // Quality legs (which may share an engine), performance legs (which may not), two
    // engines, a need across them, and room for three legs at once.
    let custom = "benchmark: custom\n    params: {items: [{q: a, answer: x}, {q: b, answer: x}, {q: c, answer: x}], prompt: '{{ q }}', scorer: {type: contains}, max_tokens: 8}";
    let suite = env.suite(
        "planned.yaml",
        &format!(
            "apiVersion: kitt/v1\nkind: Suite\nmetadata: {{name: planned, version: 1.0.0}}\n\
             parallelism: 3\n\
             engines:\n  a: {{uses: simulator, config: {{ttft: 60ms, itl: 2ms}}}}\n  b: {{uses: simulator, config: {{ttft: 20ms, itl: 2ms}}}}\n\
             nodes:\n\
             \x20 - id: q1\n    engine: a\n    {custom}\n\
             \x20 - id: q2\n    engine: a\n    {custom}\n\
             \x20 - id: p1\n    engine: a\n    benchmark: latency\n    params: {{requests: 3, output_tokens: 4}}\n\
             \x20 - id: p2\n    engine: b\n    benchmark: latency\n    params: {{requests: 6, output_tokens: 4}}\n\
             \x20 - id: p3\n    engine: b\n    benchmark: throughput\n    needs: [q1]\n    params: {{requests: 4, concurrency: 2, output_tokens: 4}}\n"
        ),
    );
    let printed = env.kitt_storeless(&["plan", &suite, "--format", "json"]);
    assert!(printed.status.success(), "{}", text(&printed));
    let plan: Value = serde_json::from_slice(&printed.stdout).unwrap();
    let applied = env.kitt(&["apply", &suite, "--plain"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let run = env.show(&run_id(&applied));
    let legs = plan["legs"].as_array().unwrap();
    let parallelism = plan["parallelism"].as_u64().unwrap() as usize;
    let mut checked_pairs = 0;
    for a in legs {
        let id = a["id"].as_str().unwrap();
        let sa = span(&run, id);
        // Needs: every leg of a needed node ended before this one started.
        for need in a["needs"].as_array().unwrap() {
            for b in legs.iter().filter(|b| b["node"] == *need) {
                let sb = span(&run, b["id"].as_str().unwrap());
                assert!(sb.1 <= sa.0, "{id} started before {} ended", b["id"]);
            }
        }
        // One engine: a leg marked alone overlaps no other leg of its engine.
        for b in legs
            .iter()
            .filter(|b| b["id"] != a["id"] && b["engine"] == a["engine"])
        {
            let sb = span(&run, b["id"].as_str().unwrap());
            if a["alone"] == true || b["alone"] == true {
                checked_pairs += 1;
                assert!(!overlap(sa, sb), "{id} and {} shared their engine", b["id"]);
            }
        }
        // Parallelism: at the moment a leg started, at most `parallelism` legs ran.
        let at_once = legs
            .iter()
            .filter(|b| {
                let sb = span(&run, b["id"].as_str().unwrap());
                sb.0 <= sa.0 && sa.0 < sb.1
            })
            .count();
        assert!(
            at_once <= parallelism,
            "{at_once} legs ran when {id} started"
        );
    }
    assert!(checked_pairs >= 4, "the suite exercises the engine rule");
    // What the plan allows does happen: the two quality legs shared engine a, and legs on
    // the two engines ran side by side.
    assert_eq!(plan["legs"][0]["alone"], false);
    assert!(overlap(span(&run, "q1"), span(&run, "q2")), "{run}");
    assert!(overlap(span(&run, "q1"), span(&run, "p2")), "{run}");
    // The plan's text says the same rules.
    let text_plan = env.kitt_storeless(&["plan", &suite]);
    let words = String::from_utf8_lossy(&text_plan.stdout);
    assert!(words.contains("p1") && words.contains("alone"), "{words}");
    assert!(words.contains("at a time: at most 3,"), "{words}");
}
