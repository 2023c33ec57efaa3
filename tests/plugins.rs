//! Plugins: the example benchmark plugin installed, listed, validated, applied against the
//! simulator and the real llama.cpp server, and removed; manifests with errors at
//! line:column; name collisions; and plugins that misbehave — never answering, writing
//! garbage, speaking another protocol version, exiting mid-call, flooding stdout, running
//! forever — each ending with an error naming the plugin and no process left behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use kitt::plugin::error::PluginError;
use kitt::plugin::host::NoHost;
use kitt::plugin::manifest::Manifest;
use kitt::plugin::subprocess::PluginProcess;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/keyword-recall")
}

fn kitt(data: &Path, args: &[&str]) -> Output {
    common::binary::isolated(data)
        .args(args)
        .env("KITT_DATA_DIR", data)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("kitt runs")
}

use common::text;

/// The newest stored run, as `kitt results show last --json` prints it.
fn last_run(data: &Path) -> serde_json::Value {
    let shown = kitt(data, &["results", "show", "last", "--json"]);
    serde_json::from_slice(&shown.stdout).expect("a stored run")
}

/// A metric of the run's first node.
fn first_node_metric(run: &serde_json::Value, name: &str) -> f64 {
    run["nodes"][0]["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["value"].as_f64())
        .unwrap_or_else(|| panic!("no metric {name} in {run}"))
}

#[test]
fn the_example_plugin_installs_lists_validates_runs_and_is_removed() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let check = kitt(d, &["plugin", "check", example().to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(text(&check).contains("describe: ok"));
    let install = kitt(d, &["plugin", "install", example().to_str().unwrap()]);
    assert!(install.status.success(), "{}", text(&install));
    assert!(d.join("plugins/keyword-recall/plugin.toml").is_file());
    let again = kitt(d, &["plugin", "install", example().to_str().unwrap()]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "installing twice needs --force"
    );
    let list = kitt(d, &["plugin", "list"]);
    assert!(
        text(&list).contains("keyword-recall") && text(&list).contains(" ok "),
        "{}",
        text(&list)
    );
    let tests = kitt(d, &["test", "list"]);
    assert!(text(&tests).contains("keyword-recall"));
    let suite = example().join("suite.yaml");
    let valid = kitt(d, &["validate", suite.to_str().unwrap()]);
    assert!(valid.status.success(), "{}", text(&valid));
    let applied = kitt(d, &["apply", suite.to_str().unwrap(), "--plain"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert!(
        text(&applied).contains("recall 0.500"),
        "{}",
        text(&applied)
    );
    let run = last_run(d);
    assert!(
        first_node_metric(&run, "ttft_mean_ms") >= 10.0,
        "kitt measured the plugin's requests"
    );
    assert_eq!(run["nodes"][0]["details"]["samples"]["ttft_ms"], 2);
    let remove = kitt(d, &["plugin", "remove", "keyword-recall"]);
    assert!(remove.status.success());
    let gone = kitt(d, &["validate", suite.to_str().unwrap()]);
    assert_eq!(
        gone.status.code(),
        Some(1),
        "the benchmark is unknown once removed"
    );
}

#[test]
fn params_are_checked_offline_at_the_suite_line() {
    let data = tempfile::tempdir().unwrap();
    let suite = data.path().join("bad.yaml");
    let text_in = std::fs::read_to_string(example().join("suite.yaml"))
        .unwrap()
        .replace("keyword: banana", "keyword: 7");
    std::fs::write(&suite, text_in).unwrap();
    let plugins = example().parent().unwrap().display().to_string();
    let out = kitt(
        data.path(),
        &[
            "--plugin-dir",
            &plugins,
            "validate",
            suite.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("bad.yaml:15:") && text(&out).contains("keyword"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_example_plugin_runs_against_the_real_llama_server() {
    if common::skipped("llama") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let suite = data.path().join("llama.yaml");
    std::fs::write(
        &suite,
        format!(
            "apiVersion: kitt/v1\nkind: Suite\nmetadata: {{name: plugin-llama, version: 1.0.0}}\n\
             engines:\n  local: {{uses: llama.cpp, mode: native, model: {}, config: {{binary: {}, threads: 2}}}}\n\
             nodes:\n  - id: recall\n    benchmark: keyword-recall\n    engine: local\n\
             \x20   params: {{items: [{{prompt: 'Name three colors.', keyword: e}}], max_tokens: 16}}\n",
            common::test_model().display(),
            common::llama_server().display()
        ),
    )
    .unwrap();
    let plugins = example().parent().unwrap().display().to_string();
    let out = kitt(
        data.path(),
        &[
            "--plugin-dir",
            &plugins,
            "apply",
            suite.to_str().unwrap(),
            "--plain",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("keyword-recall"));
}

#[test]
fn manifest_errors_point_at_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let head = "manifest_version = 1\nname = \"x\"\nkind = \"benchmark\"\nversion = \"0.1.0\"\nkitt = \">=0.1\"\n[runtime]\ntype = \"subprocess\"\ncommand = [\"python3\"]\n";
    // An unknown key; then metric directions and categories, which are enums placed like
    // any other key.
    for (place, says, tail) in [
        (
            "plugin.toml:9:",
            "bogus",
            "bogus = 1\n[benchmark]\ncategory = \"quality_custom\"\n",
        ),
        (
            "plugin.toml:10:",
            "speed",
            "[benchmark]\ncategory = \"speed\"\n",
        ),
        (
            "plugin.toml:10:",
            "sideways",
            "[benchmark]\nmetrics = { s = { unit = \"ms\", direction = \"sideways\" } }\ncategory = \"performance\"\n",
        ),
    ] {
        std::fs::write(dir.path().join("plugin.toml"), format!("{head}{tail}")).unwrap();
        let out = kitt(
            dir.path(),
            &["plugin", "check", dir.path().to_str().unwrap()],
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out).contains(place) && text(&out).contains(says),
            "{tail}: {}",
            text(&out)
        );
    }
}

#[test]
fn a_plugin_named_like_a_builtin_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("latency");
    std::fs::create_dir_all(&plugin).unwrap();
    let manifest = std::fs::read_to_string(example().join("plugin.toml"))
        .unwrap()
        .replace("name = \"keyword-recall\"", "name = \"latency\"")
        .replace("params_schema = \"params.schema.json\"\n", "");
    std::fs::write(plugin.join("plugin.toml"), manifest).unwrap();
    let out = kitt(dir.path(), &["plugin", "check", plugin.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains("built-in") && t.contains("plugin at"), "{t}");
}

#[test]
fn install_refuses_symbolic_links() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for f in ["plugin.toml", "plugin.py", "params.schema.json"] {
        std::fs::copy(example().join(f), src.join(f)).unwrap();
    }
    std::os::unix::fs::symlink("/etc/passwd", src.join("escape")).unwrap();
    let data = dir.path().join("data");
    let out = kitt(&data, &["plugin", "install", src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("symbolic link"), "{}", text(&out));
    assert!(
        !data.join("plugins/keyword-recall").exists(),
        "nothing installed"
    );
}

/// A plugin directory whose program is `script` (Python).
fn misbehaving(script: &str) -> (tempfile::TempDir, Manifest) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plugin.py"), script).unwrap();
    let toml = "manifest_version = 1\nname = \"rogue\"\nkind = \"benchmark\"\nversion = \"0.1.0\"\nkitt = \">=0.1\"\n[runtime]\ntype = \"subprocess\"\ncommand = [\"python3\", \"plugin.py\"]\nstartup_timeout = \"2s\"\n[benchmark]\ncategory = \"quality_custom\"\n";
    std::fs::write(dir.path().join("plugin.toml"), toml).unwrap();
    let manifest = Manifest::load(dir.path()).unwrap();
    (dir, manifest)
}

const HANDSHAKE: &str = "import json, sys, time\nline = sys.stdin.readline()\nsys.stdout.write(json.dumps({'jsonrpc': '2.0', 'id': 1, 'result': {'protocol_version': 1, 'features': []}}) + '\\n')\nsys.stdout.flush()\nsys.stdin.readline()\n";

/// Starts the plugin and calls `run`; returns the error and the marker's processes after.
async fn fault(script: &str) -> (PluginError, Vec<i32>) {
    let marker = format!("kitt-rogue-{}-{}", std::process::id(), script.len());
    let script = format!("# {marker}\n{script}");
    let (dir, manifest) = misbehaving(&script);
    let logs = dir.path().join("logs");
    common::supervisor();
    let started = PluginProcess::start(dir.path(), &manifest, &logs).await;
    let error = match started {
        Err(e) => e,
        Ok(mut p) => p
            .call(
                "run",
                serde_json::json!({}),
                Duration::from_secs(2),
                &NoHost,
            )
            .await
            .expect_err("the call fails"),
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    (error, common::processes_with(dir.path().to_str().unwrap()))
}

#[tokio::test]
async fn a_plugin_that_never_answers_the_handshake_times_out() {
    let (e, left) = fault("import time\ntime.sleep(3600)\n").await;
    assert!(matches!(e, PluginError::Timeout { .. }), "{e}");
    assert!(
        e.to_string().contains("rogue") && e.to_string().contains("initialize"),
        "{e}"
    );
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn garbage_on_stdout_is_the_plugins_fault_with_its_stderr() {
    let (e, left) = fault("import sys\nsys.stderr.write('about to misbehave\\n')\nsys.stderr.flush()\nprint('hello, I am not JSON', flush=True)\nimport time\ntime.sleep(3600)\n").await;
    let t = e.to_string();
    assert!(matches!(e, PluginError::Protocol { .. }), "{t}");
    assert!(
        t.contains("not JSON-RPC") && t.contains("about to misbehave"),
        "{t}"
    );
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn another_protocol_version_is_refused() {
    let (e, left) = fault("import json, sys\nsys.stdin.readline()\nprint(json.dumps({'jsonrpc': '2.0', 'id': 1, 'result': {'protocol_version': 7}}), flush=True)\nsys.stdin.readline()\n").await;
    assert!(e.to_string().contains("protocol version 7"), "{e}");
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_plugin_that_exits_mid_call_is_reported() {
    let (e, left) = fault(&format!(
        "{HANDSHAKE}import sys\nsys.stderr.write('crashing now\\n')\nsys.exit(3)\n"
    ))
    .await;
    let t = e.to_string();
    assert!(matches!(e, PluginError::Exited { .. }), "{t}");
    assert!(t.contains("crashing now"), "{t}");
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_plugin_flooding_stdout_is_stopped() {
    let (e, left) = fault(&format!(
        "{HANDSHAKE}import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n"
    ))
    .await;
    assert!(e.to_string().contains("without a newline"), "{e}");
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_plugin_looping_forever_hits_the_deadline_and_its_children_go_too() {
    let (e, left) = fault(&format!(
        "{HANDSHAKE}import subprocess\nsubprocess.Popen(['sleep', '3600'])\nwhile True:\n    pass\n"
    ))
    .await;
    assert!(matches!(e, PluginError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("`run` within 2s"), "{e}");
    assert!(left.is_empty(), "{left:?}");
}

fn plugins_dir() -> String {
    example().parent().unwrap().display().to_string()
}

#[test]
fn an_engine_plugin_serves_a_suite_and_is_stopped() {
    let data = tempfile::tempdir().unwrap();
    // Copies of the plugins, so no other test's process shares their directory.
    let plugins = data.path().join("plugins-copy");
    for name in ["echo-engine", "keyword-recall"] {
        let from = example().parent().unwrap().join(name);
        std::fs::create_dir_all(plugins.join(name)).unwrap();
        for entry in std::fs::read_dir(&from).unwrap().flatten() {
            std::fs::copy(entry.path(), plugins.join(name).join(entry.file_name())).unwrap();
        }
    }
    let plugins_dir = plugins.display().to_string();
    let suite =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/echo-engine/suite.yaml");
    let list = kitt(
        data.path(),
        &["--plugin-dir", &plugins_dir, "engines", "list"],
    );
    assert!(text(&list).contains("echo-engine"), "{}", text(&list));
    let out = kitt(
        data.path(),
        &[
            "--plugin-dir",
            &plugins_dir,
            "apply",
            suite.to_str().unwrap(),
            "--plain",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = kitt(data.path(), &["results", "show", "last", "--json"]);
    let run: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let latency = &run["nodes"][0];
    assert_eq!(latency["engine_uses"], "echo-engine");
    let ttft = first_node_metric(&run, "ttft_p50_ms");
    assert!(ttft >= 5.0, "the echo's 5 ms pace shows: {ttft}");
    // The plugin's process (found by its working directory) and its server are gone.
    let echo_dir = plugins.join("echo-engine");
    assert!(
        processes_in(&echo_dir).is_empty(),
        "{:?}",
        processes_in(&echo_dir)
    );
    let log = std::fs::read_dir(data.path().join("runs"))
        .unwrap()
        .flatten()
        .map(|run| run.path().join("plugin-echo-engine.stderr.log"))
        .find(|p| p.is_file())
        .expect("the plugin's stderr is kept in the run directory");
    let port: u16 = std::fs::read_to_string(&log)
        .unwrap()
        .split("serving on port ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("the plugin logged its port");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still open"
    );
}

/// Live processes whose working directory is `dir`.
fn processes_in(dir: &Path) -> Vec<i32> {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c == dir)
                && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|s| s.contains(") Z "))
                    .unwrap_or(true)
        })
        .collect()
}

#[tokio::test]
async fn an_engine_plugin_proxies_the_real_llama_server() {
    if common::skipped("llama") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let ctx = kitt::engine::runtime::StartContext {
        run_dir: data.path().join("llama"),
        ..kitt::engine::runtime::StartContext::new_run()
    };
    let registry = kitt::assemble::builtins();
    let llama = kitt::engine::initialize(&registry, "upstream", &common::llama_spec(&[]), &ctx)
        .await
        .expect("llama-server starts");
    let suite = data.path().join("proxy.yaml");
    std::fs::write(
        &suite,
        format!(
            "apiVersion: kitt/v1\nkind: Suite\nmetadata: {{name: proxy, version: 1.0.0}}\n\
             engines:\n  gateway: {{uses: echo-engine, config: {{upstream: '{}'}}}}\n\
             nodes:\n  - id: latency\n    benchmark: latency\n    engine: gateway\n\
             \x20   params: {{requests: 2, input_tokens: 8, output_tokens: 8}}\n",
            llama.base_url
        ),
    )
    .unwrap();
    let out = kitt(
        data.path(),
        &[
            "--plugin-dir",
            &plugins_dir(),
            "apply",
            suite.to_str().unwrap(),
            "--plain",
        ],
    );
    llama.cleanup().await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = kitt(data.path(), &["results", "show", "last", "--json"]);
    let run: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let tokens = first_node_metric(&run, "output_tokens_mean");
    assert_eq!(
        tokens, 8.0,
        "llama-server's own usage came through the proxy"
    );
}

/// The wasm example plugin, built by its build.sh (once per test process): fails loudly when
/// the wasm32 target or the build is not available.
fn wasm_plugin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/wasm-bench/build.sh");
            let out = Command::new("bash").arg(&script).output().expect("bash runs");
            assert!(
                out.status.success(),
                "building the wasm example failed (needs `rustup target add wasm32-unknown-unknown`):\n{}",
                text(&out)
            );
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/plugins/wasm-bench")
        })
        .clone()
}

/// A copy of the wasm plugin with one manifest line changed.
fn wasm_copy(dir: &Path, from: &str, to: &str) -> PathBuf {
    let src = wasm_plugin();
    let dst = dir.join("plugins").join("wasm-bench");
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    let manifest = std::fs::read_to_string(dst.join("plugin.toml")).unwrap();
    assert!(manifest.contains(from), "{manifest}");
    std::fs::write(dst.join("plugin.toml"), manifest.replace(from, to)).unwrap();
    dir.join("plugins")
}

#[test]
fn the_wasm_plugin_generates_through_the_host_on_the_simulator() {
    let data = tempfile::tempdir().unwrap();
    let plugins = wasm_plugin().parent().unwrap().display().to_string();
    let check = kitt(
        data.path(),
        &["plugin", "check", wasm_plugin().to_str().unwrap()],
    );
    assert!(check.status.success(), "{}", text(&check));
    let suite = data.path().join("wasm.yaml");
    std::fs::write(
        &suite,
        "apiVersion: kitt/v1\nkind: Suite\nmetadata: {name: wasm, version: 1.0.0}\n\
         engines:\n  sim: {uses: simulator, config: {ttft: 15ms, itl: 1ms}}\n\
         nodes:\n  - id: w\n    benchmark: wasm-bench\n    engine: sim\n\
         \x20   params: {prompts: [one, two, three], max_tokens: 5}\n    assert: {items: {min: 3}}\n",
    )
    .unwrap();
    let out = kitt(
        data.path(),
        &[
            "--plugin-dir",
            &plugins,
            "apply",
            suite.to_str().unwrap(),
            "--plain",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = last_run(data.path());
    let metric = |name: &str| first_node_metric(&run, name);
    assert_eq!(metric("completion_tokens_mean"), 5.0);
    assert!(
        metric("ttft_mean_ms") >= 15.0,
        "kitt measured the module's requests"
    );
    // `sample` notifications reach the host on the wasm path as on the subprocess path.
    assert_eq!(run["nodes"][0]["details"]["samples"]["ttft_ms"], 3);
}

#[test]
fn the_wasm_plugin_runs_against_the_real_llama_server() {
    if common::skipped("llama") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let plugins = wasm_plugin().parent().unwrap().display().to_string();
    let out = kitt(
        data.path(),
        &[
            "--plugin-dir",
            &plugins,
            "run",
            "--engine",
            "llama.cpp",
            "--mode",
            "native",
            "--model",
            common::test_model().to_str().unwrap(),
            &format!("--config=binary={}", common::llama_server().display()),
            "--config",
            "threads=2",
            "-b",
            "wasm-bench",
            "--plain",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("wasm_bench") || text(&out).contains("wasm-bench"));
}

#[test]
fn a_looping_module_runs_out_of_fuel_and_a_greedy_one_hits_the_memory_limit() {
    let data = tempfile::tempdir().unwrap();
    let plugins = wasm_copy(data.path(), "fuel = 2000000000", "fuel = 20000000");
    let plugins = plugins.display().to_string();
    let started = std::time::Instant::now();
    let spin = kitt(
        data.path(),
        &[
            "--plugin-dir",
            &plugins,
            "test",
            "run",
            "wasm-bench",
            "-p",
            "spin=true",
        ],
    );
    assert_eq!(spin.status.code(), Some(1));
    assert!(
        text(&spin).contains("wasm-bench") && text(&spin).contains("out of fuel"),
        "{}",
        text(&spin)
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    let greedy = kitt(
        data.path(),
        &[
            "--plugin-dir",
            &plugins,
            "test",
            "run",
            "wasm-bench",
            "-p",
            "grow_mib=100",
        ],
    );
    assert_eq!(greedy.status.code(), Some(1));
    assert!(
        text(&greedy).contains("limit of 32 MiB"),
        "{}",
        text(&greedy)
    );
}

#[test]
fn a_module_that_is_not_the_manifests_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let plugins = wasm_copy(data.path(), "sha256 = \"", "sha256 = \"0");
    // One more digit is not a sha256 at all; a wrong digest of the right shape is a mismatch.
    let dir = plugins.join("wasm-bench");
    let check = kitt(data.path(), &["plugin", "check", dir.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        text(&check).contains("not 64 hex digits"),
        "{}",
        text(&check)
    );
    let manifest = std::fs::read_to_string(dir.join("plugin.toml")).unwrap();
    let fixed: String = manifest
        .lines()
        .map(|l| {
            if l.starts_with("sha256") {
                format!("sha256 = \"{}\"", "ab".repeat(32))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("plugin.toml"), fixed).unwrap();
    let check = kitt(data.path(), &["plugin", "check", dir.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    assert!(text(&check).contains("has sha256"), "{}", text(&check));
}

fn reporter_copy(dir: &Path, name: &str, template: &str) -> PathBuf {
    let plugin = dir.join("plugins").join(name);
    std::fs::create_dir_all(&plugin).unwrap();
    let src = example().parent().unwrap().join("release-notes");
    let manifest = std::fs::read_to_string(src.join("plugin.toml"))
        .unwrap()
        .replace("name = \"release-notes\"", &format!("name = \"{name}\""));
    std::fs::write(plugin.join("plugin.toml"), manifest).unwrap();
    std::fs::create_dir_all(plugin.join("templates")).unwrap();
    std::fs::write(plugin.join("templates/release-notes.md.j2"), template).unwrap();
    dir.join("plugins")
}

#[test]
fn a_template_only_reporter_renders_a_suites_report() {
    let data = tempfile::tempdir().unwrap();
    let suite = data.path().join("notes.yaml");
    std::fs::write(
        &suite,
        "apiVersion: kitt/v1\nkind: Suite\nmetadata: {name: notes, version: 2.0.0}\n\
         engines:\n  sim: {uses: simulator, config: {ttft: 2ms, itl: 1ms}}\n\
         nodes:\n  - id: latency\n    benchmark: latency\n    engine: sim\n    params: {requests: 2, output_tokens: 2}\n\
         reports:\n  - {reporter: release-notes, output: \"out/{{ suite.name }}-notes.md\"}\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kitt"))
        .args([
            "--plugin-dir",
            &plugins_dir(),
            "apply",
            suite.to_str().unwrap(),
            "--plain",
        ])
        .env("KITT_DATA_DIR", data.path())
        .env("KITT_STORE", data.path().join("kitt.db"))
        .current_dir(data.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let notes =
        std::fs::read_to_string(data.path().join("out/notes-notes.md")).expect("the report");
    assert!(
        notes.contains("## Nodes") && notes.contains("| `latency` |"),
        "{notes}"
    );
    assert!(
        notes.contains("for notes 2.0.0: 1 of 1 nodes succeeded"),
        "{notes}"
    );
}

#[test]
fn a_plugin_replaces_a_builtin_only_when_asked_and_bad_templates_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let plugins = reporter_copy(
        data.path(),
        "markdown",
        "{% extends \"markdown.md.j2\" %}{% block footer %}OVERRIDDEN{% endblock %}",
    );
    let dir = plugins.join("markdown");
    let refused = kitt(data.path(), &["plugin", "check", dir.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("built-in"), "{}", text(&refused));
    // Allowed with --override-plugin: `kitt report -r markdown` renders the plugin's template.
    let suite = data.path().join("s.yaml");
    std::fs::write(
        &suite,
        "apiVersion: kitt/v1\nkind: Suite\nmetadata: {name: s, version: 1.0.0}\n\
         engines:\n  sim: {uses: simulator}\n\
         nodes:\n  - id: l\n    benchmark: latency\n    engine: sim\n    params: {requests: 1, output_tokens: 1}\n",
    )
    .unwrap();
    let plugins = plugins.display().to_string();
    let ran = kitt(data.path(), &["apply", suite.to_str().unwrap(), "--plain"]);
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran));
    let plain = kitt(
        data.path(),
        &["--plugin-dir", &plugins, "report", "last", "-r", "markdown"],
    );
    assert!(
        !text(&plain).contains("OVERRIDDEN"),
        "not replaced without the flag"
    );
    let replaced = kitt(
        data.path(),
        &[
            "--plugin-dir",
            &plugins,
            "--override-plugin",
            "markdown",
            "report",
            "last",
            "-r",
            "markdown",
        ],
    );
    assert!(
        text(&replaced).contains("OVERRIDDEN"),
        "{}",
        text(&replaced)
    );
    // A template that does not parse is refused with its name and line.
    let broken = reporter_copy(data.path(), "broken", "line one\n{% for x in %}\n");
    let out = kitt(
        data.path(),
        &["plugin", "check", broken.join("broken").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("release-notes.md.j2:2"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_three_example_plugins_install_list_and_remove() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let examples = example().parent().unwrap().to_path_buf();
    let sources = [
        examples.join("echo-engine"),
        wasm_plugin(),
        examples.join("release-notes"),
    ];
    for src in &sources {
        let out = kitt(d, &["plugin", "install", src.to_str().unwrap()]);
        assert!(out.status.success(), "{}: {}", src.display(), text(&out));
    }
    let list = text(&kitt(d, &["plugin", "list"]));
    for (name, kind, runtime) in [
        ("echo-engine", "engine", "subprocess"),
        ("wasm-bench", "benchmark", "wasm"),
        ("release-notes", "reporter", "templates"),
    ] {
        assert!(
            list.lines().any(|l| l.starts_with(name)
                && l.contains(kind)
                && l.contains(runtime)
                && l.contains(" ok ")),
            "{name}: {list}"
        );
    }
    assert!(text(&kitt(d, &["engines", "list"])).contains("echo-engine"));
    assert!(text(&kitt(d, &["test", "list"])).contains("wasm-bench"));
    for name in ["echo-engine", "wasm-bench", "release-notes"] {
        assert!(kitt(d, &["plugin", "remove", name]).status.success());
    }
    assert!(!text(&kitt(d, &["plugin", "list"])).contains("echo-engine"));
    assert_eq!(
        kitt(d, &["plugin", "remove", "../etc"]).status.code(),
        Some(64),
        "an unknown plugin name is a usage error"
    );
}

#[test]
fn a_plugin_installs_from_a_git_url() {
    let data = tempfile::tempdir().unwrap();
    let repo = data.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let src = example().parent().unwrap().join("release-notes");
    std::fs::create_dir_all(repo.join("templates")).unwrap();
    for file in ["plugin.toml", "README.md", "templates/release-notes.md.j2"] {
        std::fs::copy(src.join(file), repo.join(file)).unwrap();
    }
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&repo)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "plugin"]);
    let url = format!("file://{}", repo.display());
    let out = kitt(data.path(), &["plugin", "install", &url]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        data.path()
            .join("plugins/release-notes/templates/release-notes.md.j2")
            .is_file()
    );
    assert!(!data.path().join("plugins/release-notes/.git").exists());
}

#[test]
fn a_plugin_error_pointing_into_params_shows_the_suite_line() {
    let data = tempfile::tempdir().unwrap();
    let plugin = data.path().join("plugins/picky");
    std::fs::create_dir_all(&plugin).unwrap();
    std::fs::write(
        plugin.join("plugin.toml"),
        "manifest_version = 1\nname = \"picky\"\nkind = \"benchmark\"\nversion = \"0.1.0\"\nkitt = \">=0.1\"\n\
         [runtime]\ntype = \"subprocess\"\ncommand = [\"python3\", \"plugin.py\"]\n\
         [benchmark]\ncategory = \"quality_custom\"\n",
    )
    .unwrap();
    std::fs::write(
        plugin.join("plugin.py"),
        "import json, sys\nfor line in sys.stdin:\n    m = json.loads(line)\n    if m.get('method') == 'initialize':\n        r = {'protocol_version': 1}\n    elif m.get('method') == 'run':\n        print(json.dumps({'jsonrpc': '2.0', 'id': m['id'], 'error': {'code': -32000, 'message': 'keyword must not be blank', 'data': {'kind': 'user', 'retryable': False, 'pointer': '/items/1/keyword'}}}), flush=True)\n        continue\n    else:\n        break\n    print(json.dumps({'jsonrpc': '2.0', 'id': m['id'], 'result': r}), flush=True)\n",
    )
    .unwrap();
    let suite = data.path().join("s.yaml");
    std::fs::write(
        &suite,
        "apiVersion: kitt/v1\nkind: Suite\nmetadata: {name: s, version: 1.0.0}\n\
         engines:\n  sim: {uses: simulator}\n\
         nodes:\n  - id: p\n    benchmark: picky\n    engine: sim\n    params:\n      items:\n        - {keyword: a}\n        - {keyword: ' '}\n",
    )
    .unwrap();
    let plugins = data.path().join("plugins").display().to_string();
    let out = kitt(
        data.path(),
        &[
            "--plugin-dir",
            &plugins,
            "apply",
            suite.to_str().unwrap(),
            "--plain",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let expected = format!("{}:13:", suite.display());
    assert!(
        text(&out).contains("keyword must not be blank") && text(&out).contains(&expected),
        "{}",
        text(&out)
    );
}

/// A webhook on 127.0.0.1 that answers each POST with `status` (or never, when `None`),
/// handing the bodies it received to the receiver.
fn webhook(status: Option<u16>) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
            match status {
                Some(code) => {
                    let _ = stream.write_all(
                        format!(
                            "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                }
                None => std::thread::sleep(Duration::from_secs(60)),
            }
        }
    });
    (url, rx)
}

fn webhook_suite(dir: &Path, url: &str) -> PathBuf {
    let suite = dir.join("hook.yaml");
    std::fs::write(
        &suite,
        format!(
            "apiVersion: kitt/v1\nkind: Suite\nmetadata: {{name: hooked, version: 1.0.0}}\n\
             engines:\n  sim: {{uses: simulator, config: {{ttft: 2ms, itl: 1ms}}}}\n\
             nodes:\n  - id: latency\n    benchmark: latency\n    engine: sim\n    params: {{requests: 4, output_tokens: 2}}\n\
             reports:\n  - {{reporter: webhook-summary, output: receipt.json, params: {{url: \"{url}\", metrics: [ttft_p50_ms, requests_per_s]}}}}\n"
        ),
    )
    .unwrap();
    suite
}

fn apply_in(dir: &Path, plugins: &str, suite: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kitt"))
        .args([
            "--plugin-dir",
            plugins,
            "apply",
            suite.to_str().unwrap(),
            "--plain",
        ])
        .env("KITT_DATA_DIR", dir)
        .env("KITT_STORE", dir.join("kitt.db"))
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn the_webhook_reporter_posts_a_runs_summary_end_to_end() {
    let data = tempfile::tempdir().unwrap();
    let (url, bodies) = webhook(Some(200));
    let suite = webhook_suite(data.path(), &url);
    let out = apply_in(data.path(), &plugins_dir(), &suite);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let body: serde_json::Value =
        serde_json::from_str(&bodies.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap();
    let run = last_run(data.path());
    assert_eq!(body["run"], run["id"]);
    assert_eq!(body["suite"], "hooked");
    assert_eq!(body["verdict"], "passed");
    assert_eq!(
        body["text"],
        "kitt: suite hooked 1.0.0 passed (1 of 1 nodes succeeded)"
    );
    // The metrics it sent are the stored ones, only those the params asked for.
    let sent = &body["nodes"][0]["metrics"];
    assert_eq!(sent.as_object().unwrap().len(), 2, "{sent}");
    assert_eq!(
        sent["ttft_p50_ms"].as_f64(),
        Some(first_node_metric(&run, "ttft_p50_ms"))
    );
    // The receipt is the report kitt wrote; the plugin's stderr is in the run's directory.
    let receipt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.path().join("receipt.json")).unwrap())
            .unwrap();
    assert_eq!(receipt["status"], 200);
    assert_eq!(receipt["sent"], body);
    let log = data
        .path()
        .join("runs")
        .join(run["id"].as_str().unwrap())
        .join("plugin-webhook-summary.stderr.log");
    assert!(
        std::fs::read_to_string(&log).unwrap().contains("HTTP 200"),
        "{}",
        log.display()
    );
    // `kitt report` sends it again on demand, with its params from the command line.
    let again = kitt(
        data.path(),
        &[
            "--plugin-dir",
            &plugins_dir(),
            "report",
            "last",
            "-r",
            "webhook-summary",
            "-p",
            &format!("url={url}"),
        ],
    );
    assert!(again.status.success(), "{}", text(&again));
    let body: serde_json::Value =
        serde_json::from_str(&bodies.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap();
    assert_eq!(body["run"], run["id"]);
    assert_eq!(
        body["nodes"][0]["metrics"].as_object().unwrap().len(),
        3,
        "the default metrics a latency leg has: requests_per_s, ttft_p50_ms, ttft_p99_ms"
    );
}

#[test]
fn a_failing_or_stalling_webhook_fails_the_report_not_the_results() {
    let data = tempfile::tempdir().unwrap();
    let (url, _bodies) = webhook(Some(500));
    let suite = webhook_suite(data.path(), &url);
    let out = apply_in(data.path(), &plugins_dir(), &suite);
    let all = text(&out);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("webhook-summary") && all.contains("HTTP 500"),
        "{all}"
    );
    assert_eq!(last_run(data.path())["nodes"][0]["status"], "succeeded");
    assert!(!data.path().join("receipt.json").exists());
    // A webhook that never answers: the manifest's 2 s deadline stops the plugin's group.
    let copy = data.path().join("plugins/webhook-summary");
    std::fs::create_dir_all(&copy).unwrap();
    let src = example().parent().unwrap().join("webhook-summary");
    for f in ["plugin.py", "params.schema.json"] {
        std::fs::copy(src.join(f), copy.join(f)).unwrap();
    }
    let manifest = std::fs::read_to_string(src.join("plugin.toml"))
        .unwrap()
        .replace("timeout = \"30s\"", "timeout = \"2s\"");
    std::fs::write(copy.join("plugin.toml"), manifest).unwrap();
    let (url, bodies) = webhook(None);
    let suite = webhook_suite(data.path(), &url);
    let started = std::time::Instant::now();
    let out = apply_in(
        data.path(),
        copy.parent().unwrap().to_str().unwrap(),
        &suite,
    );
    let all = text(&out);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("did not answer `report` within 2s"), "{all}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(
        bodies.recv_timeout(Duration::from_secs(1)).is_ok(),
        "it posted before it stalled"
    );
    assert!(
        processes_in(&copy).is_empty(),
        "no plugin process outlives kitt"
    );
}
