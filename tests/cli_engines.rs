//! `kitt engines list | check | try` end to end: tables, JSON, exit codes, and a native
//! engine interrupted during its health wait leaving no process behind.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn kitt(args: &[&str]) -> Output {
    common::binary::isolated(common::binary::shared_home())
        .args(args)
        .output()
        .expect("kitt runs")
}

use common::text;

#[test]
fn list_shows_every_builtin_with_modes_and_availability() {
    let out = kitt(&["engines", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let engines: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let names: Vec<&str> = engines
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "vllm",
            "sglang",
            "tgi",
            "llama.cpp",
            "ollama",
            "openai",
            "simulator"
        ]
    );
    let sim = &engines[6];
    assert_eq!(sim["modes"][0]["availability"], "ready");
    assert_eq!(engines[0]["default_image"], "vllm/vllm-openai:v0.34.0");
    let table = kitt(&["engines", "list"]);
    assert!(
        text(&table).contains("llama.cpp   gguf"),
        "{}",
        text(&table)
    );
}

#[test]
fn check_passes_for_the_simulator() {
    let out = kitt(&["engines", "check", "simulator"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("in-process simulator"));
}

#[test]
fn check_rejects_a_model_of_the_wrong_format_with_exit_1() {
    let out = kitt(&[
        "engines",
        "check",
        "vllm",
        "--mode",
        "external",
        "--url",
        "http://127.0.0.1:9",
        "--model",
        "/m/q4.gguf",
    ]);
    // The endpoint is also down (69 wins); without the URL problem the model alone gives 1.
    assert_eq!(out.status.code(), Some(69), "{}", text(&out));
    let out = kitt(&[
        "engines",
        "check",
        "llama.cpp",
        "--mode",
        "native",
        "--config",
        "binary=/bin/true",
        "--model",
        "meta-llama/Llama-3.1-8B",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("model") && t.contains("FAILED") && t.contains("`vllm`"),
        "{t}"
    );
}

#[test]
fn check_reports_an_unreachable_docker_daemon_with_exit_69() {
    let out = kitt(&[
        "engines",
        "check",
        "vllm",
        "--mode",
        "docker",
        "--docker-host",
        "tcp://127.0.0.1:9",
    ]);
    assert_eq!(out.status.code(), Some(69), "{}", text(&out));
    assert!(
        text(&out).contains("Docker is not reachable"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_of_an_unknown_engine_suggests_one() {
    let out = kitt(&["engines", "check", "vlm"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("vllm"), "{}", text(&out));
}

#[test]
fn try_runs_the_simulator_end_to_end() {
    let out = kitt(&[
        "engines",
        "try",
        "simulator",
        "--config",
        "ttft=20ms",
        "--config",
        "itl=1ms",
        "--max-tokens",
        "8",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(r["completion_tokens"], 8);
    assert_eq!(r["count_source"], "server_usage");
    assert!(r["ttft"].as_f64().expect("ttft") >= 20.0);
}

#[test]
fn try_against_a_dead_endpoint_exits_69() {
    let out = kitt(&[
        "engines",
        "try",
        "openai",
        "--url",
        "http://127.0.0.1:9",
        "--model",
        "x",
        "--startup-timeout",
        "300ms",
    ]);
    assert_eq!(out.status.code(), Some(69), "{}", text(&out));
    assert!(text(&out).contains("engine `openai`"), "{}", text(&out));
}

/// Processes whose command line contains `marker`.
#[test]
fn ctrl_c_during_a_native_health_wait_kills_the_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A fake engine that never answers: a shell that starts a child and waits.
    let marker = format!("kitt-fake-engine-{}", std::process::id());
    let script = dir.path().join("fake-server");
    std::fs::write(
        &script,
        format!("#!/bin/sh\n/bin/sh -c 'sleep 3600; : {marker}' &\nwait\n"),
    )
    .expect("write");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let model = dir.path().join("m.gguf");
    std::fs::write(&model, b"GGUF").expect("write model");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kitt"))
        .args([
            "engines",
            "try",
            "llama.cpp",
            "--mode",
            "native",
            "--startup-timeout",
            "5m",
        ])
        .arg(format!("--config=binary={}", script.display()))
        .arg(format!("--model={}", model.display()))
        .env("KITT_DATA_DIR", dir.path())
        .spawn()
        .expect("kitt runs");
    let start = Instant::now();
    while common::processes_with(&marker).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the fake engine never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(common::interrupt(&mut child), Some(130));
    let start = Instant::now();
    while !common::processes_with(&marker).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "engine processes left behind: {:?}",
            common::processes_with(&marker)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
