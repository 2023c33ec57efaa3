//! The `kitt` binary end to end: validate, plan, schema and init, their formats and exit codes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

/// kitt in the repository (for its relative paths), with a data directory, store and config
/// of this test process's own: nothing installed on the developer's machine leaks in.
fn kitt(args: &[&str]) -> Output {
    common::binary::isolated(common::binary::shared_home())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("kitt runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn shipped_suites() -> Vec<PathBuf> {
    let mut suites: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("suites"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .map(|p| {
                p.strip_prefix(env!("CARGO_MANIFEST_DIR"))
                    .unwrap()
                    .to_path_buf()
            })
            .collect();
    suites.sort();
    suites
}

#[test]
fn every_shipped_suite_and_example_validates() {
    let mut files = shipped_suites();
    assert!(
        files.iter().any(|p| p.ends_with("demo.yaml")),
        "suites/demo.yaml is shipped"
    );
    files.extend(
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/suites"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml")),
    );
    let args: Vec<String> = std::iter::once("validate".to_string())
        .chain(files.iter().map(|p| p.display().to_string()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = kitt(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.starts_with("ok: "))
            .count(),
        files.len()
    );
}

#[test]
fn validate_exits_1_when_any_file_is_invalid() {
    let out = kitt(&[
        "validate",
        "suites/demo.yaml",
        "tests/broken/27-unknown-benchmark.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("ok: suites/demo.yaml"));
    let err = stderr(&out);
    assert!(
        err.contains("error[unknown-benchmark]: no benchmark named `latncy` is registered"),
        "{err}"
    );
    assert!(
        err.contains("--> tests/broken/27-unknown-benchmark.yaml:8:16"),
        "{err}"
    );
    assert!(err.contains("help: did you mean `latency`?"), "{err}");
}

#[test]
fn validate_json_has_the_documented_shape() {
    let out = kitt(&[
        "validate",
        "--format",
        "json",
        "tests/broken/13-unknown-top-level-key.yaml",
        "suites/demo.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["valid"], false);
    let d = &doc["files"][0]["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["code"], "schema");
    assert_eq!(d["message"], "unknown key `enginee`");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(d["hint"], "did you mean `engines`?");
    assert_eq!(doc["files"][1]["valid"], true);
    assert_eq!(doc["files"][1]["diagnostics"], serde_json::json!([]));
}

#[test]
fn validate_github_writes_workflow_commands() {
    let out = kitt(&[
        "validate",
        "--format",
        "github",
        "tests/broken/30-needs-unknown-node.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with("::error file=tests/broken/30-needs-unknown-node.yaml,line=10,col=13,"),
        "{text}"
    );
    assert!(
        text.contains("title=kitt unknown-node::`needs` names `warmup`"),
        "{text}"
    );
}

#[test]
fn params_from_the_command_line_are_typed_and_checked() {
    let out = kitt(&[
        "plan",
        "suites/demo.yaml",
        "--format",
        "json",
        "-p",
        "requests=7",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["legs"][0]["params"]["requests"], 7);

    let out = kitt(&["validate", "suites/demo.yaml", "-p", "requests=many"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`-p requests`: `many` is not an integer"),
        "{}",
        stderr(&out)
    );

    let out = kitt(&["validate", "suites/demo.yaml", "-p", "request=3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("did you mean `requests`?"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn plan_shows_stages_engines_and_matrix_legs() {
    let out = kitt(&["plan", "suites/demo.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("5 runs in 3 stages"), "{text}");
    assert!(
        text.contains("+ start engine sim (simulator, native)"),
        "{text}"
    );
    assert!(text.contains("- load[concurrency=8]"), "{text}");
    let stop = text.find("- stop engine sim").unwrap();
    assert!(
        stop > text.find("- throughput").unwrap(),
        "the engine stops after its last node"
    );
}

#[test]
fn plan_json_is_stable_and_complete() {
    let out = kitt(&["plan", "suites/demo.yaml", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["version"], 2);
    assert_eq!(plan["suite"]["name"], "demo");
    let ids: Vec<&str> = plan["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "latency",
            "load[concurrency=1]",
            "load[concurrency=4]",
            "load[concurrency=8]",
            "throughput"
        ]
    );
    assert_eq!(plan["engines"][0]["first_stage"], 1);
    assert_eq!(plan["engines"][0]["last_stage"], 3);
    assert_eq!(plan["engines"][0]["legs"].as_array().unwrap().len(), 5);
    assert_eq!(plan["stages"][1]["legs"][2], "load[concurrency=8]");
    assert_eq!(plan["legs"][3]["params"]["concurrency"], 8);
    assert_eq!(plan["legs"][3]["stage"], 2);
    assert_eq!(plan["legs"][3]["alone"], true, "a performance leg");
    assert_eq!(plan["legs"][3]["timeout"], "5m");
    assert!(plan["rules"].as_array().unwrap().len() >= 4);
    let again = kitt(&["plan", "suites/demo.yaml", "--format", "json"]);
    assert_eq!(out.stdout, again.stdout, "plans are deterministic");
}

#[test]
fn plan_dot_draws_every_leg_and_edge() {
    let out = kitt(&["plan", "suites/demo.yaml", "--format", "dot"]);
    let dot = stdout(&out);
    assert!(dot.starts_with("digraph \"demo\" {"), "{dot}");
    assert_eq!(
        dot.matches(" -> ").count(),
        6,
        "latency→3 legs, 3 legs→throughput: {dot}"
    );
    assert!(
        dot.contains("\"latency\" -> \"load[concurrency=1]\";"),
        "{dot}"
    );
}

#[test]
fn plan_detailed_exitcode_and_invalid_suites() {
    let out = kitt(&["plan", "--detailed-exitcode", "suites/demo.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = kitt(&["plan", "tests/broken/32-dependency-cycle.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("dependency cycle: a → b → c → a"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    assert_eq!(kitt(&["validate"]).status.code(), Some(64));
    assert_eq!(kitt(&["frobnicate"]).status.code(), Some(64));
    assert_eq!(
        kitt(&["validate", "-p", "novalue", "suites/demo.yaml"])
            .status
            .code(),
        Some(64)
    );
    assert_eq!(kitt(&["--help"]).status.code(), Some(0));
}

#[test]
fn schema_prints_the_committed_schema() {
    let out = kitt(&["schema", "suite"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), kitt::suite::schema::SUITE_SCHEMA);
}

#[test]
fn init_writes_a_suite_that_validates_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.yaml");
    let p = path.to_str().unwrap();
    let out = kitt(&["init", p]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("# yaml-language-server: $schema=.kitt/schemas/suite.schema.json"));
    assert!(dir.path().join(".kitt/schemas/suite.schema.json").exists());
    let out = kitt(&["validate", p]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let again = kitt(&["init", p]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "a user error, not an internal one"
    );
    assert!(stderr(&again).contains("--force"));
}

#[test]
fn includes_and_extends_compose_nodes() {
    let out = kitt(&[
        "plan",
        "--format",
        "json",
        "examples/suites/with-templates.yaml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let legs = &plan["legs"];
    // The template supplies benchmark and params; the node overrides one param.
    assert_eq!(legs[0]["benchmark"], "latency");
    assert_eq!(legs[0]["params"]["requests"], 3);
    assert_eq!(legs[0]["params"]["output_tokens"], 16);
}

#[test]
fn test_list_shows_every_benchmark_with_params_and_metrics() {
    let out = kitt(&["test", "list"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "throughput",
        "latency",
        "load",
        "sweep",
        "warmup_analysis",
        "long_context",
        "memory",
        "gsm8k",
        "mmlu",
        "hellaswag",
        "truthfulqa",
        "custom",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
    assert!(text.contains("params: ") && text.contains("metrics: "));
    let quality = kitt(&["test", "list", "--category", "quality_standard"]);
    let text = String::from_utf8_lossy(&quality.stdout);
    assert!(
        text.contains("mmlu") && !text.contains("throughput"),
        "{text}"
    );
    let bad = kitt(&["test", "list", "--category", "speed"]);
    assert_eq!(bad.status.code(), Some(64));
}

#[test]
fn test_show_lists_params_with_defaults_and_metrics_with_directions() {
    let out = kitt(&["test", "show", "sweep"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("over") && text.contains("concurrency | rate"),
        "{text}"
    );
    assert!(text.contains("(required)"), "{text}");
    assert!(
        text.contains("max_rate") && text.contains("higher is better"),
        "{text}"
    );
    let typo = kitt(&["test", "show", "latncy"]);
    assert_eq!(typo.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&typo.stderr).contains("did you mean `latency`"));
}

#[test]
fn test_run_measures_on_the_simulator_and_fails_on_bad_params() {
    let out = kitt(&[
        "test",
        "run",
        "latency",
        "--config",
        "ttft=20ms",
        "--config",
        "itl=2ms",
        "-p",
        "requests=3",
        "-p",
        "output_tokens=4",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["test_name"], "latency");
    assert_eq!(result["passed"], true);
    let ttft = result["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "ttft_p50_ms")
        .unwrap();
    assert!(ttft["value"].as_f64().unwrap() >= 20.0);
    assert_eq!(ttft["unit"], "ms");
    assert_eq!(ttft["direction"], "lower");
    let bad = kitt(&["test", "run", "load", "-p", "requests=2"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("give `concurrency`"));
}

#[test]
fn completions_for_every_shell_and_man_pages_for_every_command() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = kitt(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(
            script.contains("trend") && script.contains("fail-on-regression"),
            "{shell}"
        );
    }
    // bash parses its script.
    let out = kitt(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("kitt.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let parsed = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    assert_eq!(kitt(&["completions", "tcsh"]).status.code(), Some(64));
    let page = stdout(&kitt(&["man"]));
    assert!(
        page.contains(".TH kitt 1") && page.contains("results"),
        "{page}"
    );
    let out = kitt(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let trend = std::fs::read_to_string(dir.path().join("kitt-results-trend.1")).unwrap();
    assert!(
        trend.contains(".TH kitt-results-trend 1") && trend.contains("fail\\-on\\-regression"),
        "{trend}"
    );
    // Hidden helper commands get no page; every visible command does.
    assert!(dir.path().join("kitt-report.1").is_file() && dir.path().join("kitt-man.1").is_file());
    assert!(
        !std::fs::read_dir(dir.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("__"))
    );
}

/// A native engine that exits at once: enough to see what `--verbose` and `--quiet` print.
fn exiting_engine(dir: &Path) -> (String, String) {
    let script = dir.join("fake-server");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'fake server gives up' >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let model = dir.join("m.gguf");
    std::fs::write(&model, b"GGUF").unwrap();
    (
        format!("--config=binary={}", script.display()),
        format!("--model={}", model.display()),
    )
}

#[test]
fn verbose_shows_the_launched_command_and_quiet_only_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (binary, model) = exiting_engine(dir.path());
    let args = |flags: &[&str]| {
        let mut c = common::binary::isolated(dir.path());
        c.args(flags)
            .args([
                "engines",
                "try",
                "llama.cpp",
                "--mode",
                "native",
                "--startup-timeout",
                "10s",
            ])
            .arg(&binary)
            .arg(&model);
        c.output().unwrap()
    };
    let verbose = args(&["--verbose"]);
    let text = stderr(&verbose);
    assert_ne!(verbose.status.code(), Some(0), "{text}");
    assert!(text.contains("starting `llama.cpp`"), "{text}");
    let launched = text
        .lines()
        .find(|l| l.contains("launched `"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        launched.contains("fake-server") && launched.contains("--port"),
        "{launched}"
    );
    let quiet = args(&["--quiet"]);
    let text = stderr(&quiet);
    assert_eq!(quiet.status.code(), verbose.status.code());
    assert!(
        !text.contains("starting") && !text.contains("launched"),
        "{text}"
    );
    assert!(text.contains("error:"), "errors still show: {text}");
    let normal = args(&[]);
    assert!(stderr(&normal).contains("starting") && !stderr(&normal).contains("launched"));
    assert_eq!(
        kitt(&["-q", "-v", "results", "list"]).status.code(),
        Some(64)
    );
}

#[test]
fn quiet_apply_prints_its_summary_and_no_progress() {
    let env = common::binary::Env::new();
    let suite = env.write(
        "q.yaml",
        common::binary::sim_suite("q", "  - id: latency\n    benchmark: latency\n    engine: sim\n    params: {requests: 3, output_tokens: 2}\n"),
    );
    let quiet = env.kitt(&["--quiet", "apply", suite.to_str().unwrap(), "--plain"]);
    assert_eq!(quiet.code(), Some(0), "{}", quiet.text());
    assert!(quiet.stderr.trim().is_empty(), "stderr: {}", quiet.stderr);
    assert!(quiet.stdout.contains("latency"), "{}", quiet.stdout);
    let normal = env.kitt(&["apply", suite.to_str().unwrap(), "--plain"]);
    assert!(normal.stderr.contains("start latency"), "{}", normal.stderr);
    assert_eq!(
        quiet
            .stdout
            .lines()
            .filter(|l| l.contains("latency"))
            .count(),
        normal
            .stdout
            .lines()
            .filter(|l| l.contains("latency"))
            .count()
    );
}

#[test]
fn every_listing_command_speaks_json() {
    let env = common::binary::Env::new();
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins");
    for args in [
        vec!["engines", "list", "--json"],
        vec!["test", "list", "--json"],
        vec!["templates", "list", "--json"],
        vec![
            "--plugin-dir",
            plugins.to_str().unwrap(),
            "plugin",
            "list",
            "--json",
        ],
    ] {
        let out = env.kitt(&args);
        assert_eq!(out.code(), Some(0), "{args:?}: {}", out.text());
        let doc: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", out.stdout));
        assert!(
            doc.as_array().is_some_and(|a| !a.is_empty()),
            "{args:?}: {doc}"
        );
    }
    let out = env.kitt(&[
        "--plugin-dir",
        plugins.to_str().unwrap(),
        "plugin",
        "list",
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        doc.as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "webhook-summary" && p["runtime"] == "subprocess")
    );
    // results list without a store is an error, with one a list.
    let suite = env.write(
        "j.yaml",
        common::binary::sim_suite("j", "  - id: latency\n    benchmark: latency\n    engine: sim\n    params: {requests: 2, output_tokens: 2}\n"),
    );
    env.kitt(&["apply", suite.to_str().unwrap(), "--plain"]);
    let out = env.kitt(&["results", "list", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc.as_array().unwrap().len(), 1);
}
