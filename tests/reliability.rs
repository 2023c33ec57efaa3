//! The 28 defects of the December 2026 adversarial round, each reproduced through the binary
//! as the report did (numbers are the report's), plus the mechanisms that close their
//! classes: one path guard, bounded reads, the output edge, run owners and the supervisor.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::binary::{Env, Spawned, eventually, files_below, sim_suite};

const MINUTE: Duration = Duration::from_secs(60);

fn keyword_recall() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/keyword-recall")
}

/// Copies the keyword-recall example to `env/rel`, with `edit` applied to its manifest.
fn plugin_copy(env: &Env, rel: &str, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let to = env.path(rel);
    std::fs::create_dir_all(&to).unwrap();
    for f in ["plugin.toml", "plugin.py", "params.schema.json"] {
        std::fs::copy(keyword_recall().join(f), to.join(f)).unwrap();
    }
    let manifest = std::fs::read_to_string(to.join("plugin.toml")).unwrap();
    std::fs::write(to.join("plugin.toml"), edit(manifest)).unwrap();
    to
}

/// Writes `text` as `file` and checks that `kitt validate` refuses it at `at`, saying `says`.
fn assert_invalid(env: &Env, file: &str, text: impl AsRef<[u8]>, at: &str, says: &str) {
    env.write(file, text);
    let r = env.kitt(&["validate", file]);
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(r.stderr.contains(at), "expected {at}: {}", r.text());
    assert!(r.stderr.contains(says), "expected `{says}`: {}", r.text());
}

fn renamed(name: &'static str) -> impl Fn(String) -> String {
    move |m| m.replace("name = \"keyword-recall\"", &format!("name = \"{name}\""))
}

/// A store with one run in it, made by applying a one-node simulator suite.
fn store_with_a_run(env: &Env) {
    env.write(
        "s.yaml",
        sim_suite(
            "s",
            "  - {id: a, benchmark: latency, engine: sim, params: {requests: 2}}\n",
        ),
    );
    let r = env.kitt(&["apply", "s.yaml", "--plain"]);
    assert_eq!(r.code(), Some(0), "{}", r.text());
}

// 1 (critical): `plugin install --force` of a plugin named `..` deleted the data directory.
#[test]
fn defect_01_a_plugin_named_dot_dot_cannot_touch_the_data_dir() {
    let env = Env::new();
    store_with_a_run(&env);
    std::fs::copy(env.store(), env.data().join("kitt.db")).unwrap();
    let good = plugin_copy(&env, "good", |m| m);
    let r = env.kitt(&["plugin", "install", good.to_str().unwrap()]);
    assert_eq!(r.code(), Some(0), "{}", r.text());
    let before = files_below(&env.data());
    for name in ["..", "."] {
        let evil = plugin_copy(&env, &format!("evil{}", name.len()), renamed(name));
        let r = env.kitt(&["plugin", "install", evil.to_str().unwrap(), "--force"]);
        assert_eq!(r.code(), Some(1), "{}", r.text());
        assert!(
            r.stderr.contains("must start with a letter or digit"),
            "{}",
            r.text()
        );
    }
    assert_eq!(
        files_below(&env.data()),
        before,
        "nothing in the data dir changed"
    );
    assert!(env.data().join("kitt.db").is_file());
    let listed = env.kitt(&["plugin", "list"]);
    assert!(
        listed.stdout.contains("keyword-recall"),
        "{}",
        listed.text()
    );
}

// 16: a failed `--force` reinstall deleted the installed plugin; reinstalling from the
// installed copy itself deleted it.
#[test]
fn defect_16_a_failed_reinstall_keeps_the_installed_plugin() {
    let env = Env::new();
    let good = plugin_copy(&env, "good", |m| m);
    assert_eq!(
        env.kitt(&["plugin", "install", good.to_str().unwrap()])
            .code(),
        Some(0)
    );
    let installed = env.data().join("plugins/keyword-recall");
    let before = std::fs::read(installed.join("plugin.py")).unwrap();
    let bad = plugin_copy(&env, "bad", |m| m.replace("0.1.0", "0.2.0"));
    std::os::unix::fs::symlink("/etc/hostname", bad.join("link")).unwrap();
    let r = env.kitt(&["plugin", "install", bad.to_str().unwrap(), "--force"]);
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(r.stderr.contains("symbolic link"), "{}", r.text());
    assert_eq!(std::fs::read(installed.join("plugin.py")).unwrap(), before);
    assert!(
        std::fs::read_to_string(installed.join("plugin.toml"))
            .unwrap()
            .contains("0.1.0")
    );
    let r = env.kitt(&["plugin", "install", installed.to_str().unwrap(), "--force"]);
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(r.stderr.contains("installed copy"), "{}", r.text());
    assert!(installed.join("plugin.py").is_file());
    // A good replacement is swapped in whole, and nothing staged is left behind.
    let newer = plugin_copy(&env, "newer", |m| m.replace("0.1.0", "0.3.0"));
    let r = env.kitt(&["plugin", "install", newer.to_str().unwrap(), "--force"]);
    assert_eq!(r.code(), Some(0), "{}", r.text());
    assert!(
        std::fs::read_to_string(installed.join("plugin.toml"))
            .unwrap()
            .contains("0.3.0")
    );
    let names: Vec<String> = std::fs::read_dir(env.data().join("plugins"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["keyword-recall"], "no staging left: {names:?}");
}

// 22: `plugin new ''` wrote into (and over) the working directory; a bad name scaffolded a
// plugin that failed its own check.
#[test]
fn defect_22_plugin_new_refuses_names_that_are_not_plugin_names() {
    let env = Env::new();
    env.write("plugin.py", "mine");
    for name in ["", "Bad Name", ".hidden", "x/.."] {
        let r = env.kitt(&["plugin", "new", name]);
        assert_eq!(r.code(), Some(64), "{name:?}: {}", r.text());
        assert!(
            r.stderr.contains("must start with a letter or digit"),
            "{}",
            r.text()
        );
    }
    assert_eq!(
        std::fs::read_to_string(env.path("plugin.py")).unwrap(),
        "mine"
    );
    assert!(!env.path("plugin.toml").exists());
    let r = env.kitt(&["plugin", "new", "sub/good-name"]);
    assert_eq!(r.code(), Some(0), "{}", r.text());
    let check = env.kitt(&[
        "plugin",
        "check",
        env.path("sub/good-name").to_str().unwrap(),
    ]);
    assert!(check.stdout.contains("manifest: ok"), "{}", check.text());
}

// 4 (high): a report whose `output:` was the store overwrote it, exit 0.
#[test]
fn defect_04_a_report_never_overwrites_the_store_or_the_suite() {
    let env = Env::new();
    store_with_a_run(&env);
    let nodes = "  - {id: a, benchmark: latency, engine: sim, params: {requests: 2}}\n";
    for output in ["kitt.db", "kitt.db-wal", "s2.yaml"] {
        let suite = format!(
            "{}reports:\n  - {{reporter: markdown, output: {output}}}\n",
            sim_suite("s2", nodes)
        );
        env.write("s2.yaml", &suite);
        let r = env.kitt(&["apply", "s2.yaml", "--plain", "--force"]);
        assert_eq!(r.code(), Some(1), "{output}: {}", r.text());
        assert!(
            r.stderr.contains("kitt never writes over it"),
            "{}",
            r.text()
        );
        assert_eq!(std::fs::read_to_string(env.path("s2.yaml")).unwrap(), suite);
    }
    let r = env.kitt(&["results", "list"]);
    assert_eq!(r.code(), Some(0), "the store still opens: {}", r.text());
    assert_eq!(r.stdout.lines().count(), 1 + 4, "four runs: {}", r.stdout);
}

// The report file class: no writing through links, no overwriting files kitt did not
// write unless forced, suite outputs stay inside the working directory.
#[test]
fn report_files_are_never_written_through_links_or_over_foreign_files() {
    let env = Env::new();
    store_with_a_run(&env);
    env.write("precious.txt", "precious");
    std::os::unix::fs::symlink(env.path("precious.txt"), env.path("link.md")).unwrap();
    let r = env.kitt(&["report", "last", "-o", "link.md", "--force"]);
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(r.stderr.contains("symbolic link"), "{}", r.text());
    let r = env.kitt(&["report", "last", "-o", "precious.txt"]);
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(r.stderr.contains("pass --force"), "{}", r.text());
    assert_eq!(
        std::fs::read_to_string(env.path("precious.txt")).unwrap(),
        "precious"
    );
    // kitt's own report is replaced freely, until someone edits it.
    assert_eq!(
        env.kitt(&["report", "last", "-o", "out.md"]).code(),
        Some(0)
    );
    assert_eq!(
        env.kitt(&["report", "last", "-o", "out.md"]).code(),
        Some(0)
    );
    std::fs::write(env.path("out.md"), "edited").unwrap();
    assert_eq!(
        env.kitt(&["report", "last", "-o", "out.md"]).code(),
        Some(1)
    );
    assert_eq!(
        env.kitt(&["report", "last", "-o", "out.md", "--force"])
            .code(),
        Some(0)
    );
    // Suite outputs outside the working directory are refused by validate, at the line.
    for output in [
        "../escape.md",
        "/tmp/kitt-absolute.md",
        "'{{ suite.name }}/../../x.md'",
    ] {
        env.write(
            "o.yaml",
            format!(
                "{}reports:\n  - {{reporter: markdown, output: {output}}}\n",
                sim_suite("o", "  - {id: a, benchmark: latency, engine: sim}\n")
            ),
        );
        let r = env.kitt(&["validate", "o.yaml"]);
        assert_eq!(r.code(), Some(1), "{output}: {}", r.text());
        assert!(r.stderr.contains("o.yaml:9:"), "{}", r.text());
        assert!(r.stderr.contains("relative path inside"), "{}", r.text());
    }
}

// 20: an output pattern with an undefined value passed validate and failed after the run.
#[test]
fn defect_20_output_patterns_are_checked_by_validate() {
    let env = Env::new();
    let suite = format!(
        "{}reports:\n  - {{reporter: markdown, output: \"{{{{ nosuch }}}}.md\"}}\n",
        sim_suite("o", "  - {id: a, benchmark: latency, engine: sim}\n")
    );
    let says = "`nosuch` is not a value an output path can use";
    assert_invalid(&env, "o.yaml", suite, "o.yaml:9:", says);
    let applied = env.kitt(&["apply", "o.yaml", "--plain"]);
    assert_eq!(applied.code(), Some(1));
    assert!(
        !applied.stderr.contains("start a"),
        "nothing ran: {}",
        applied.text()
    );
}

// 24: `templates eject` named the wrong directory.
#[test]
fn defect_24_eject_says_where_the_copy_applies() {
    let env = Env::new();
    let r = env.kitt(&["templates", "eject", "markdown"]);
    assert_eq!(r.code(), Some(0), "{}", r.text());
    assert!(r.stdout.contains("for suites in ."), "{}", r.stdout);
    let r = env.kitt(&["templates", "eject", "markdown", "--to", "elsewhere"]);
    assert!(
        r.stdout
            .contains("kitt does not read templates from elsewhere"),
        "{}",
        r.stdout
    );
}

// 6: an include of a file outside the suite printed its content (credentials).
#[test]
fn defect_06_includes_outside_the_repository_are_refused_unread() {
    let env = Env::new();
    let secret = "ghp_FAKE0123456789SECRET";
    env.write(
        "outside/.git-credentials",
        format!("https://octocat:{secret}@github.com\n"),
    );
    std::fs::create_dir_all(env.path("repo/.git")).unwrap();
    let creds = env.path("outside/.git-credentials");
    for include in [
        creds.display().to_string(),
        "../outside/.git-credentials".into(),
    ] {
        env.write(
            "repo/s.yaml",
            format!(
                "include: [\"{include}\"]\n{}",
                sim_suite("s", "  - {id: a, benchmark: latency, engine: sim}\n")
            ),
        );
        for format in ["human", "json", "github"] {
            let r = env.kitt(&["validate", "repo/s.yaml", "--format", format]);
            assert_eq!(r.code(), Some(1), "{}", r.text());
            assert!(!r.text().contains(secret), "{format}: {}", r.text());
            assert!(
                r.text().contains("outside the suite's repository"),
                "{}",
                r.text()
            );
        }
    }
}

// 23: one include under two spellings (or through a link) was a false duplicate.
#[test]
fn defect_23_one_include_under_two_spellings_is_read_once() {
    let env = Env::new();
    env.write(
        "sub/t.yaml",
        "apiVersion: kitt/v1\nkind: NodeTemplates\ntemplates:\n  lat: {benchmark: latency, engine: sim}\n",
    );
    std::os::unix::fs::symlink(env.path("sub/t.yaml"), env.path("link.yaml")).unwrap();
    env.write(
        "s.yaml",
        format!(
            "include: [sub/t.yaml, ./sub/t.yaml, sub/../sub/t.yaml, link.yaml]\n{}",
            sim_suite("s", "  - {id: a, extends: lat}\n")
        ),
    );
    let r = env.kitt(&["validate", "s.yaml"]);
    assert_eq!(r.code(), Some(0), "{}", r.text());
}

// 7: `/dev/zero` was read until memory ran out; a FIFO hung forever.
#[test]
fn defect_07_devices_and_fifos_are_refused_at_once() {
    let env = Env::new();
    let fifo = env.path("fifo.yaml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let nodes = "  - {id: a, benchmark: latency, engine: sim}\n";
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["validate".into(), "/dev/zero".into()],
            "a character device",
        ),
        (
            vec!["validate".into(), fifo.display().to_string()],
            "a FIFO",
        ),
        (vec!["apply".into(), fifo.display().to_string()], "a FIFO"),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = env.run(&args, Duration::from_secs(20));
        assert_eq!(r.code(), Some(1), "{args:?}: {}", r.text());
        assert!(r.stderr.contains(expected), "{}", r.text());
        assert!(
            r.peak_kib < 200_000,
            "{args:?} peaked at {} KiB",
            r.peak_kib
        );
    }
    // Includes: the FIFO is refused unread; a link to /dev/zero leads outside the suite's
    // directory and is refused before anything is opened.
    std::os::unix::fs::symlink("/dev/zero", env.path("zero.yaml")).unwrap();
    for (include, expected) in [
        ("fifo.yaml", "not a regular file"),
        ("zero.yaml", "outside the suite's repository"),
    ] {
        env.write(
            "s.yaml",
            format!("include: [{include}]\n{}", sim_suite("s", nodes)),
        );
        let r = env.run(&["validate", "s.yaml"], Duration::from_secs(20));
        assert_eq!(r.code(), Some(1), "{include}: {}", r.text());
        assert!(r.stderr.contains(expected), "{}", r.text());
        assert!(r.stderr.contains("s.yaml:1:"), "positioned: {}", r.text());
    }
    // A plugin's params schema that is a device.
    let p = plugin_copy(&env, "p", |m| m.replace("params.schema.json", "zero.json"));
    std::os::unix::fs::symlink("/dev/zero", p.join("zero.json")).unwrap();
    let r = env.run(
        &["plugin", "check", p.to_str().unwrap()],
        Duration::from_secs(20),
    );
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(r.stderr.contains("not a regular file"), "{}", r.text());
    // ... and one outside the plugin directory.
    let p = plugin_copy(&env, "q", |m| {
        m.replace("params.schema.json", "/etc/passwd")
    });
    let r = env.kitt(&["plugin", "check", p.to_str().unwrap()]);
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(
        r.stderr.contains("inside the plugin directory"),
        "{}",
        r.text()
    );
}

// 5: the 64 MiB size limit did not bound memory (8 GB for 33 M scalars, an abort).
#[test]
fn defect_05_suite_memory_is_bounded_by_size_and_value_limits() {
    let env = Env::new();
    let head = sim_suite("s", "  - {id: a, benchmark: latency, engine: sim}\n");
    // Over the size limit: refused before parsing.
    let mut big = head.clone();
    big.push_str("x: [");
    big.push_str(&"1,".repeat(9 * 1024 * 1024 / 2));
    big.push_str("1]\n");
    env.write("big.yaml", &big);
    let r = env.run(&["validate", "big.yaml"], MINUTE);
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(
        r.stderr.contains("more than the limit of 8388608 bytes"),
        "{}",
        r.text()
    );
    assert!(r.peak_kib < 100_000, "peaked at {} KiB", r.peak_kib);
    // Under the size limit but over the value limit: refused at the value that crossed it.
    let mut dense = head;
    dense.push_str("x: [");
    dense.push_str(&"1,".repeat(3_000_000));
    dense.push_str("1]\n");
    env.write("dense.yaml", &dense);
    let r = env.run(&["validate", "dense.yaml"], MINUTE);
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(r.stderr.contains("more than 250000 values"), "{}", r.text());
    assert!(r.stderr.contains("dense.yaml:8:"), "{}", r.text());
    assert!(r.peak_kib < 300_000, "peaked at {} KiB", r.peak_kib);
}

// 28: invalid UTF-8 had no position and a wrong hint.
#[test]
fn defect_28_invalid_utf8_is_placed() {
    let env = Env::new();
    let mut bytes = sim_suite("s", "  - {id: a, benchmark: latency, engine: sim}\n").into_bytes();
    bytes.extend_from_slice(b"# caf\xe9\n");
    assert_invalid(&env, "s.yaml", &bytes, "s.yaml:8:6", "not valid UTF-8");
    let r = env.kitt(&["validate", "s.yaml"]);
    assert!(r.stderr.contains("save the file as UTF-8"), "{}", r.text());
    assert!(!r.stderr.contains("check the path"), "{}", r.text());
}

// 19: an integer too large for its parameter passed validate and failed at run time.
#[test]
fn defect_19_integers_beyond_their_type_are_refused_by_validate() {
    let node = "  - {id: a, benchmark: latency, engine: sim, params: {requests: 99999999999999999999999999999999999999}}\n";
    assert_invalid(
        &Env::new(),
        "s.yaml",
        sim_suite("s", node),
        "s.yaml:7:65",
        "maximum",
    );
}

// RISK `timeout: 0s`: every node failed at once; now refused where it is written.
#[test]
fn zero_time_limits_are_refused_at_their_line() {
    let node = "  - {id: a, benchmark: latency, engine: sim, timeout: 0s}\n";
    assert_invalid(
        &Env::new(),
        "s.yaml",
        sim_suite("s", node),
        "s.yaml:7:55",
        "zero",
    );
}

// RISK: a 5 MB key was repeated whole in the error message.
#[test]
fn messages_about_huge_names_are_cut() {
    let env = Env::new();
    let key = "k".repeat(5_000_000);
    env.write(
        "s.yaml",
        sim_suite(
            "s",
            &format!("  - {{id: a, benchmark: latency, engine: sim, params: {{{key}: 1}}}}\n"),
        ),
    );
    let r = env.kitt(&["validate", "s.yaml"]);
    assert_eq!(r.code(), Some(1));
    assert!(
        r.stderr.len() < 20_000,
        "{} bytes of stderr",
        r.stderr.len()
    );
    let r = env.kitt(&["validate", "s.yaml", "--format", "json"]);
    assert!(r.stdout.len() < 20_000, "{} bytes of JSON", r.stdout.len());
}

// 25: a closed stderr made kitt panic (exit 101).
#[test]
fn defect_25_a_closed_pipe_never_panics() {
    use std::io::Read;
    use std::process::Stdio;
    let env = Env::new();
    env.write(
        "bad.yaml",
        "apiVersion: kitt/v1\nkind: Suite\nmetadata: {name: BAD}\nnodes: 3\n",
    );
    for _ in 0..10 {
        let mut child = env
            .command(&["validate", "bad.yaml", "bad.yaml", "bad.yaml"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 6];
        let mut err = child.stderr.take().unwrap();
        let _ = err.read(&mut first);
        drop(err);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(1), "{status:?}");
    }
    // And stdout closed early: a quiet exit with the command's own code.
    let mut child = env
        .command(&["test", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// 26: `%` and `_` in a run-id prefix were SQL wildcards.
#[test]
fn defect_26_run_id_prefixes_are_literal() {
    let env = Env::new();
    store_with_a_run(&env);
    for prefix in ["%", "_", "1%", "1_"] {
        let r = env.kitt(&["report", prefix]);
        assert_eq!(r.code(), Some(64), "{prefix}: {}", r.text());
        assert!(r.stderr.contains("no run"), "{}", r.text());
    }
    let list = env.kitt(&["results", "list", "--json"]);
    let runs: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    let id = runs[0]["id"].as_str().unwrap().to_string();
    let r = env.kitt(&["results", "show", &id[..8]]);
    assert_eq!(r.code(), Some(0), "{}", r.text());
}

// 27: user errors exited 70 ("internal error").
#[test]
fn defect_27_user_errors_exit_64_or_1() {
    let env = Env::new();
    store_with_a_run(&env);
    std::fs::create_dir(env.path("adir")).unwrap();
    for (args, code, says) in [
        (
            vec!["apply", "s.yaml", "--only", "nosuch"],
            64,
            "no node `nosuch`",
        ),
        (
            vec!["apply", "s.yaml", "--resume", "nosuch"],
            64,
            "no run `nosuch`",
        ),
        (vec!["report", "nosuchrun"], 64, "no run `nosuchrun`"),
        (
            vec!["report", "last", "-o", "adir"],
            1,
            "adir: it is a directory",
        ),
        (vec!["results", "show", "nosuch"], 64, "no run"),
    ] {
        let r = env.kitt(&args);
        assert_eq!(r.code(), Some(code), "{args:?}: {}", r.text());
        assert!(r.stderr.contains(says), "{args:?}: {}", r.text());
    }
}

// 17: `test run` started the engine before checking params.
#[test]
fn defect_17_test_run_checks_params_before_starting_an_engine() {
    let env = Env::new();
    // An external engine nobody serves: starting it would wait for its health check.
    let r = env.run(
        &[
            "test",
            "run",
            "latency",
            "--engine",
            "openai",
            "--url",
            "http://127.0.0.1:9",
            "--model",
            "m",
            "-p",
            "requests=abc",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(r.code(), Some(64), "{}", r.text());
    assert!(r.stderr.contains("requests"), "{}", r.text());
    assert!(
        !r.stderr.contains("starting"),
        "no engine started: {}",
        r.text()
    );
}

// 18: a store on a read-only mount could not even be listed.
#[test]
fn defect_18_a_read_only_store_is_readable() {
    let env = Env::new();
    store_with_a_run(&env);
    let kitt = env!("CARGO_BIN_EXE_kitt");
    let dir = env.dir.path().display().to_string();
    // A private mount namespace: the directory is bound read-only for this shell only.
    let script = format!(
        "set -e; mount --bind {dir} {dir}; mount -o remount,bind,ro {dir}; \
         KITT_STORE={dir}/kitt.db {kitt} results list; KITT_STORE={dir}/kitt.db {kitt} results show last; \
         KITT_STORE={dir}/kitt.db {kitt} report last > /dev/null"
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--map-root-user", "sh", "-c", &script])
        .env("KITT_DATA_DIR", env.data())
        .output()
        .expect("unshare runs (util-linux)");
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("succeeded"));
}

// 10: three kitts creating one store at once: two failed the migration.
#[test]
fn defect_10_kitts_creating_one_store_at_once_all_succeed() {
    let env = Env::new();
    env.write(
        "s.yaml",
        sim_suite(
            "s",
            "  - {id: a, benchmark: latency, engine: sim, params: {requests: 2}}\n",
        ),
    );
    for round in 0..3 {
        let store = env.path(&format!("new-{round}.db"));
        let children: Vec<_> = (0..3)
            .map(|_| {
                env.command(&["apply", "s.yaml", "--plain"])
                    .env("KITT_STORE", &store)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", common::text(&out));
        }
        let list = env
            .command(&["results", "list", "--json"])
            .env("KITT_STORE", &store)
            .output()
            .unwrap();
        let runs: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
        assert_eq!(runs.as_array().unwrap().len(), 3, "round {round}");
    }
}

// 11: `--resume` of a run another kitt was still running was accepted; the run of a
// killed kitt stayed `running` forever.
#[test]
fn defect_11_a_live_run_cannot_be_resumed_and_a_dead_ones_is_abandoned() {
    let env = Env::new();
    env.write(
        "slow.yaml",
        sim_suite(
            "slow",
            "  - {id: a, benchmark: latency, engine: sim, params: {requests: 2}}\n  - {id: b, benchmark: latency, engine: sim, needs: [a], params: {requests: 1000, output_tokens: 4}}\n",
        ),
    );
    let mut first = Spawned::new(
        env.command(&["apply", "slow.yaml", "--plain"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let run_id = || -> Option<String> {
        let r = env.kitt(&["results", "list", "--json"]);
        let runs: serde_json::Value = serde_json::from_str(&r.stdout).ok()?;
        runs[0]["id"].as_str().map(str::to_string)
    };
    assert!(
        eventually(MINUTE, || run_id().is_some()),
        "the run is stored"
    );
    let id = run_id().unwrap();
    let r = env.kitt(&["apply", "slow.yaml", "--plain", "--resume", &id]);
    assert_eq!(r.code(), Some(64), "{}", r.text());
    assert!(r.stderr.contains("still running"), "{}", r.text());
    let show = env.kitt(&["results", "show", &id, "--json"]);
    assert!(
        show.stdout.contains("\"status\": \"running\""),
        "{}",
        show.stdout
    );
    // kill -9: the run reads abandoned at once (same host, its process is gone).
    first.kill();
    let show = env.kitt(&["results", "show", &id, "--json"]);
    assert!(
        show.stdout.contains("\"status\": \"abandoned\""),
        "{}",
        show.stdout
    );
    let list = env.kitt(&["results", "list"]);
    assert!(list.stdout.contains("abandoned"), "{}", list.stdout);
    let r = env.run(
        &["apply", "slow.yaml", "--plain", "--resume", &id],
        Duration::from_secs(300),
    );
    assert_eq!(r.code(), Some(0), "{}", r.text());
    let show = env.kitt(&["results", "show", &id, "--json"]);
    assert!(
        show.stdout.contains("\"status\": \"succeeded\""),
        "{}",
        show.stdout
    );
}

// 2 (high): on a full disk the run was reported as passing.
#[test]
fn defect_02_a_full_disk_fails_the_run_loudly() {
    let env = Env::new();
    let nodes: String = (0..20)
        .map(|i| {
            format!(
                "  - {{id: n{i}, benchmark: latency, engine: sim, params: {{requests: 50, input_tokens: 16, output_tokens: 2}}}}\n"
            )
        })
        .collect();
    env.write("s.yaml", sim_suite("s", &nodes));
    let kitt = env!("CARGO_BIN_EXE_kitt");
    // A 160 KiB filesystem in a mount namespace of the test's own: the first results fit,
    // the later ones do not.
    let script = format!(
        "mkdir -p full && mount -t tmpfs -o size=160k tmpfs full && \
         KITT_STORE=full/r.db {kitt} apply s.yaml --plain; echo \"rc=$?\"; \
         KITT_STORE=full/r.db {kitt} results list"
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--map-root-user", "sh", "-c", &script])
        .env("KITT_DATA_DIR", env.data())
        .current_dir(env.dir.path())
        .output()
        .expect("unshare runs (util-linux)");
    let text = common::text(&out);
    assert!(text.contains("rc=1"), "the run fails: {text}");
    assert!(text.contains("results could not be stored"), "{text}");
    assert!(text.contains("succeeded n0"), "the first node ran: {text}");
    assert!(!text.contains(" succeeded; stored"), "{text}");
    let listed: Vec<&str> = text.lines().filter(|l| l.contains(" s  ")).collect();
    assert_eq!(listed.len(), 1, "{text}");
    assert!(
        listed[0].contains("abandoned") || listed[0].contains("failed"),
        "the store does not call it a success: {listed:?}"
    );
}

// 8: `secrets:` printed by a failing container reached stdout, stderr, the store and
// reports; every value kitt knows is secret is masked at every output.
#[test]
fn defect_08_secrets_are_masked_everywhere_kitt_writes() {
    if common::skipped("docker") {
        return;
    }
    common::images::images();
    let env = Env::new();
    let secret = "s3cr3t-VALUE-4711";
    env.write(
        "s.yaml",
        format!(
            "apiVersion: kitt/v1\nkind: Suite\nmetadata: {{name: sec, version: 1.0.0}}\n\
             engines:\n  e: {{uses: ollama, mode: docker, model: \"t:1\", image: \"{}\", secrets: [MY_SECRET], startup_timeout: 20s}}\n\
             nodes:\n  - {{id: a, benchmark: latency, engine: e}}\n\
             reports:\n  - {{reporter: junit, output: rep.xml}}\n  - {{reporter: json, output: rep.json}}\n  - {{reporter: markdown, output: rep.md}}\n",
            common::images::ENV_IMAGE
        ),
    );
    let r = env
        .command(&["apply", "s.yaml", "--plain"])
        .env("MY_SECRET", secret)
        .output()
        .unwrap();
    let text = common::text(&r);
    assert_eq!(r.status.code(), Some(1), "{text}");
    assert!(
        text.contains("MY_SECRET=***"),
        "the container's log is quoted, masked: {text}"
    );
    assert!(!text.contains(secret), "{text}");
    let mut written: Vec<(String, Vec<u8>)> = Vec::new();
    for f in ["rep.xml", "rep.json", "rep.md", "kitt.db", "kitt.db-wal"] {
        if let Ok(bytes) = std::fs::read(env.path(f)) {
            written.push((f.into(), bytes));
        }
    }
    for args in [
        vec!["results", "show", "last"],
        vec!["results", "show", "last", "--json"],
        vec!["results", "export", "last", "--format", "json"],
        vec!["results", "export", "last", "--format", "csv"],
    ] {
        let out = env
            .command(&args)
            .env("MY_SECRET", secret)
            .output()
            .unwrap();
        written.push((args.join(" "), out.stdout));
    }
    assert!(
        written.len() >= 7,
        "{:?}",
        written.iter().map(|w| &w.0).collect::<Vec<_>>()
    );
    for (what, bytes) in written {
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "the secret is in {what}");
    }
}

// 12: a plugin's `log` flood was copied to stderr without limit.
// 15: the plugin stderr tail read the whole file, and invalid UTF-8 dropped it.
#[test]
fn defect_12_and_15_plugin_output_is_bounded() {
    let env = Env::new();
    let plugin = env.path("plugins/noisy");
    std::fs::create_dir_all(&plugin).unwrap();
    std::fs::write(
        plugin.join("plugin.toml"),
        "manifest_version = 1\nname = \"noisy\"\nkind = \"benchmark\"\nversion = \"0.1.0\"\nkitt = \">=0.1\"\n[runtime]\ntype = \"subprocess\"\ncommand = [\"python3\", \"plugin.py\"]\n[benchmark]\ncategory = \"quality_custom\"\n",
    )
    .unwrap();
    std::fs::write(
        plugin.join("plugin.py"),
        "import json, sys\n\
         def send(m):\n    sys.stdout.write(json.dumps(m) + '\\n'); sys.stdout.flush()\n\
         for line in sys.stdin:\n    m = json.loads(line)\n\
         \x20   if m.get('method') == 'initialize':\n        send({'jsonrpc': '2.0', 'id': m['id'], 'result': {'protocol_version': 1, 'features': ['run']}})\n\
         \x20   elif m.get('method') == 'run':\n\
         \x20       for i in range(20000):\n            send({'jsonrpc': '2.0', 'method': 'log', 'params': {'level': 'info', 'message': 'y' * 1000}})\n\
         \x20       chunk = b'\\xff\\xfe' + b'z' * 1048574\n\
         \x20       for i in range(300):\n            sys.stderr.buffer.write(chunk)\n\
         \x20       sys.stderr.buffer.write(b'\\nlast words \\xff\\n'); sys.stderr.flush()\n\
         \x20       sys.exit(3)\n",
    )
    .unwrap();
    env.write(
        "s.yaml",
        sim_suite("s", "  - {id: a, benchmark: noisy, engine: sim}\n"),
    );
    let r = env.run(
        &[
            "--plugin-dir",
            env.path("plugins").to_str().unwrap(),
            "apply",
            "s.yaml",
            "--plain",
        ],
        Duration::from_secs(180),
    );
    assert_eq!(
        r.code(),
        Some(1),
        "{}",
        &r.stderr[..r.stderr.len().min(3000)]
    );
    assert!(
        r.stderr.len() < 1_000_000,
        "{} bytes on stderr",
        r.stderr.len()
    );
    assert!(
        r.stderr.contains("more log messages not shown"),
        "{}",
        &r.stderr[r.stderr.len().saturating_sub(3000)..]
    );
    assert!(
        r.stdout.contains("last words"),
        "the tail survives invalid UTF-8: {}",
        r.stdout
    );
    assert!(r.peak_kib < 200_000, "kitt peaked at {} KiB", r.peak_kib);
    let log = files_below(&env.path("runs"))
        .into_iter()
        .find(|f| f.ends_with("plugin-noisy.stderr.log"))
        .expect("the stderr log");
    let size = std::fs::metadata(env.path("runs").join(log)).unwrap().len();
    assert!(size <= 16 * 1024 * 1024 + 200, "the log is capped: {size}");
}

// 13: template fuel did not bound memory (SIGABRT); 21: fuel exhaustion had no message.
#[test]
fn defect_13_and_21_hostile_templates_are_bounded_and_named() {
    let env = Env::new();
    store_with_a_run(&env);
    let template = env.path(".kitt/templates/markdown.md.j2");
    std::fs::create_dir_all(template.parent().unwrap()).unwrap();
    std::fs::write(
        &template,
        "{% set a = \"x\" * 100000000 %}{% set b = a ~ a %}{% set c = b ~ b %}{% set d = c ~ c %}{% set e = d ~ d %}{% set f = e ~ e %}{{ f|length }}",
    )
    .unwrap();
    let r = env.run(&["report", "last", "--suite", "s.yaml"], MINUTE);
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(r.stderr.contains("memory limit"), "{}", r.text());
    assert!(
        r.peak_kib < 200_000,
        "kitt itself peaked at {} KiB",
        r.peak_kib
    );
    std::fs::write(
        &template,
        "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
    )
    .unwrap();
    let r = env.run(&["report", "last", "--suite", "s.yaml"], MINUTE);
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(
        r.stderr.contains("steps"),
        "the fuel error is named: {}",
        r.text()
    );
    std::fs::write(&template, "{{ \"y\" * 50000000 }}{{ \"y\" * 50000000 }}").unwrap();
    let r = env.run(
        &["report", "last", "--suite", "s.yaml", "-o", "big.md"],
        MINUTE,
    );
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(r.stderr.contains("larger than 64 MiB"), "{}", r.text());
    assert!(!env.path("big.md").exists());
}

// 14: Ctrl-C and SIGTERM were ignored while reports rendered.
#[test]
fn defect_14_signals_stop_the_report_phase() {
    let env = Env::new();
    let reports: String = (0..8)
        .map(|i| format!("  - {{reporter: markdown, output: r{i}.md}}\n"))
        .collect();
    env.write(
        "s.yaml",
        format!(
            "{}reports:\n{reports}",
            sim_suite(
                "s",
                "  - {id: a, benchmark: latency, engine: sim, params: {requests: 2}}\n"
            )
        ),
    );
    env.write(
        ".kitt/templates/markdown.md.j2",
        "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
    );
    let mut child = Spawned::new(
        env.command(&["apply", "s.yaml", "--plain"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    // The node takes well under a second; then the reports start.
    assert!(
        eventually(MINUTE, || common::processes_with("__render").iter().any(
            |p| {
                std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .is_ok_and(|s| s.split_whitespace().nth(3) == Some(&pid.to_string()))
                    // Its renderer works in this test's directory, as the check below assumes.
                    && std::fs::read_link(format!("/proc/{p}/cwd"))
                        .is_ok_and(|cwd| cwd == env.path(""))
            }
        )),
        "a renderer starts"
    );
    let sent = std::time::Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.take().wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", common::text(&out));
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    // This kitt's renderers (their working directory is this test's), not those of tests
    // running beside it.
    let ours: Vec<i32> = common::processes_with("__render")
        .into_iter()
        .filter(|p| {
            std::fs::read_link(format!("/proc/{p}/cwd")).is_ok_and(|cwd| cwd == env.path(""))
        })
        .collect();
    assert!(ours.is_empty(), "no renderer left: {ours:?}");
    assert!(!env.path("r7.md").exists());
}

// 3, 9: see tests/hostile_servers.rs (the SSE caps, the request deadline and token cap).

/// The supervisor: a plugin's `setsid` grandchild does not outlive the plugin, even when
/// kitt itself is killed with SIGKILL.
#[test]
fn no_process_outlives_kitt_not_even_after_sigkill() {
    let env = Env::new();
    let plugin = env.path("plugins/daemon");
    std::fs::create_dir_all(&plugin).unwrap();
    let marker = format!("kitt-daemon-marker-{}", std::process::id());
    std::fs::write(
        plugin.join("plugin.toml"),
        "manifest_version = 1\nname = \"daemon\"\nkind = \"benchmark\"\nversion = \"0.1.0\"\nkitt = \">=0.1\"\n[runtime]\ntype = \"subprocess\"\ncommand = [\"python3\", \"plugin.py\"]\n[benchmark]\ncategory = \"quality_custom\"\n",
    )
    .unwrap();
    std::fs::write(
        plugin.join("plugin.py"),
        format!(
            "import json, subprocess, sys, time\n\
             def send(m):\n    sys.stdout.write(json.dumps(m) + '\\n'); sys.stdout.flush()\n\
             for line in sys.stdin:\n    m = json.loads(line)\n\
             \x20   if m.get('method') == 'initialize':\n        send({{'jsonrpc': '2.0', 'id': m['id'], 'result': {{'protocol_version': 1, 'features': ['run']}}}})\n\
             \x20   elif m.get('method') == 'run':\n\
             \x20       subprocess.Popen(['setsid', 'sh', '-c', 'sleep 3600; : {marker}'])\n\
             \x20       if m['params']['params'].get('exit'):\n            send({{'jsonrpc': '2.0', 'id': m['id'], 'result': {{'passed': True, 'metrics': {{}}}}}})\n\
             \x20       else:\n            time.sleep(3600)\n"
        ),
    )
    .unwrap();
    std::fs::write(
        plugin.join("params.schema.json"),
        "{\"type\": \"object\", \"properties\": {\"exit\": {\"type\": \"boolean\"}}}",
    )
    .unwrap();
    std::fs::write(
        plugin.join("plugin.toml"),
        std::fs::read_to_string(plugin.join("plugin.toml"))
            .unwrap()
            .replace(
                "kitt = \">=0.1\"\n",
                "kitt = \">=0.1\"\nparams_schema = \"params.schema.json\"\n",
            ),
    )
    .unwrap();
    let plugins = env.path("plugins");
    // The plugin ends normally; its setsid child is ended with it.
    env.write(
        "ok.yaml",
        sim_suite(
            "ok",
            "  - {id: a, benchmark: daemon, engine: sim, params: {exit: true}}\n",
        ),
    );
    let r = env.kitt(&[
        "--plugin-dir",
        plugins.to_str().unwrap(),
        "apply",
        "ok.yaml",
        "--plain",
    ]);
    assert_eq!(r.code(), Some(0), "{}", r.text());
    assert!(
        eventually(Duration::from_secs(5), || common::processes_with(&marker)
            .is_empty()),
        "the setsid child went with the plugin"
    );
    // kitt is killed with SIGKILL while the plugin runs.
    env.write(
        "hang.yaml",
        sim_suite("hang", "  - {id: a, benchmark: daemon, engine: sim}\n"),
    );
    let mut child = Spawned::new(
        env.command(&[
            "--plugin-dir",
            plugins.to_str().unwrap(),
            "apply",
            "hang.yaml",
            "--plain",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap(),
    );
    assert!(
        eventually(MINUTE, || !common::processes_with(&marker).is_empty()),
        "the plugin's setsid child runs"
    );
    child.kill();
    assert!(
        eventually(Duration::from_secs(10), || {
            common::processes_with(&marker).is_empty()
                && common::processes_with(plugin.to_str().unwrap()).is_empty()
        }),
        "left: {:?} {:?}",
        common::processes_with(&marker),
        common::processes_with(plugin.to_str().unwrap())
    );
}

/// Run logs go beside the store that was chosen, not into the default data directory.
#[test]
fn run_logs_go_beside_the_chosen_store() {
    let env = Env::new();
    let plugin = plugin_copy(&env, "plugins/keyword-recall", |m| m);
    let _ = plugin;
    env.write(
        "s.yaml",
        sim_suite(
            "s",
            "  - {id: a, benchmark: keyword-recall, engine: sim, params: {items: [{prompt: hi, keyword: x}]}}\n",
        ),
    );
    let r = env.kitt(&[
        "--plugin-dir",
        env.path("plugins").to_str().unwrap(),
        "apply",
        "s.yaml",
        "--plain",
    ]);
    assert!(r.code().is_some(), "{}", r.text());
    let logs = files_below(&env.path("runs"));
    assert!(
        logs.iter()
            .any(|f| f.ends_with("plugin-keyword-recall.stderr.log")),
        "{logs:?}\n{}",
        r.text()
    );
    assert!(!env.data().join("runs").exists(), "nothing in the data dir");
    let mode = std::fs::metadata(env.path("runs"))
        .unwrap()
        .permissions()
        .mode();
    assert!(mode & 0o700 == 0o700);
}

// RISK rows: a NUL inside a quoted scalar got a misleading message; a plugin with
// `startup_timeout = "0s"` was accepted; a plugin's error text could steer the terminal.
#[test]
fn nul_bytes_zero_startup_timeouts_and_terminal_escapes() {
    let env = Env::new();
    let mut bytes = sim_suite("s", "  - {id: a, benchmark: latency, engine: sim}\n").into_bytes();
    bytes.extend_from_slice(b"x: \"a\0b\"\n");
    assert_invalid(&env, "s.yaml", &bytes, "s.yaml:8:6", "NUL character");
    let p = plugin_copy(&env, "p", |m| {
        m.replace("startup_timeout = \"10s\"", "startup_timeout = \"0s\"")
    });
    let r = env.kitt(&["plugin", "check", p.to_str().unwrap()]);
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(
        r.stderr.contains("plugin.toml:") && r.stderr.contains("startup_timeout is zero"),
        "{}",
        r.text()
    );
    // A plugin whose error message carries an escape sequence.
    let p = plugin_copy(&env, "plugins/keyword-recall", |m| m);
    std::fs::write(
        p.join("plugin.py"),
        "import json, sys\nfor line in sys.stdin:\n    m = json.loads(line)\n    if m.get('method') == 'initialize':\n        print(json.dumps({'jsonrpc': '2.0', 'id': m['id'], 'result': {'protocol_version': 1, 'features': ['run']}}), flush=True)\n    elif m.get('method') == 'run':\n        print(json.dumps({'jsonrpc': '2.0', 'id': m['id'], 'error': {'code': -1, 'message': '\\x1b[2J\\x1b[31mgotcha', 'data': {'kind': 'plugin'}}}), flush=True)\n",
    )
    .unwrap();
    env.write(
        "k.yaml",
        sim_suite("k", "  - {id: a, benchmark: keyword-recall, engine: sim, params: {items: [{prompt: p, keyword: k}]}}\n"),
    );
    let r = env.kitt(&[
        "--plugin-dir",
        env.path("plugins").to_str().unwrap(),
        "apply",
        "k.yaml",
        "--plain",
    ]);
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(r.text().contains("^[[31mgotcha"), "{}", r.text());
    assert!(
        !r.text().contains('\u{1b}'),
        "no raw escape reaches the terminal"
    );
}
