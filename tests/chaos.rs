//! The chaos test: `kitt apply` of a real run on the simulator (with a subprocess plugin
//! node, so there are processes to leave behind) is killed with SIGKILL at many points.
//! After each kill the store opens, every node that had finished is intact (its metrics
//! kept), the run reads `abandoned`, no process is left, and `--resume` completes it.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::binary::{Env, Spawned, eventually};
use serde_json::Value;

fn suite() -> String {
    let mut nodes = String::new();
    for i in 0..4 {
        nodes.push_str(&format!(
            "  - {{id: lat{i}, benchmark: latency, engine: sim, params: {{requests: 30, input_tokens: 16, output_tokens: 4}}}}\n"
        ));
    }
    nodes.push_str(
        "  - {id: recall, benchmark: keyword-recall, engine: sim, needs: [lat1], params: {items: [{prompt: say hi, keyword: t}, {prompt: again, keyword: t}]}}\n",
    );
    nodes.push_str(
        "  - {id: load, benchmark: load, engine: sim, needs: [recall], matrix: {concurrency: [1, 4]}, params: {concurrency: \"${{ matrix.concurrency }}\", requests: 40, input_tokens: 16, output_tokens: 4}}\n",
    );
    common::binary::sim_suite("chaos", &nodes)
}

fn plugins() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/plugins")
        .display()
        .to_string()
}

/// kitt's supervisors and keyword-recall plugin processes still running.
fn leftovers() -> Vec<i32> {
    let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plugins/keyword-recall");
    let mut left = common::processes_with("__supervise");
    left.extend(
        common::processes_with("plugin.py").into_iter().filter(|p| {
            std::fs::read_link(format!("/proc/{p}/cwd")).is_ok_and(|cwd| cwd == plugin)
        }),
    );
    left
}

fn json(env: &Env, args: &[&str]) -> Value {
    let r = env.kitt(args);
    assert_eq!(r.code(), Some(0), "{args:?}: {}", r.text());
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", r.stdout))
}

/// Legs that succeeded, with their metrics by name.
fn finished(run: &Value) -> Vec<(String, Vec<(String, f64)>)> {
    run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["status"] == "succeeded" || n["status"] == "reused")
        .map(|n| {
            let metrics = n["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap().to_string(),
                        m["value"].as_f64().unwrap(),
                    )
                })
                .collect();
            (n["leg"].as_str().unwrap().to_string(), metrics)
        })
        .collect()
}

#[test]
fn kitt_killed_at_any_point_leaves_a_resumable_run_and_no_process() {
    // How long a whole run takes here, to spread the kill points over it.
    let probe = Env::new();
    probe.write("s.yaml", suite());
    let started = Instant::now();
    let r = probe.run(
        &["--plugin-dir", &plugins(), "apply", "s.yaml", "--plain"],
        Duration::from_secs(300),
    );
    assert_eq!(r.code(), Some(0), "{}", r.text());
    let whole = started.elapsed();
    let points = 10;
    let mut abandoned_runs = 0;
    for k in 0..points {
        let delay = whole.mul_f64(k as f64 / points as f64) + Duration::from_millis(50);
        let env = Env::new();
        env.write("s.yaml", suite());
        let mut child = Spawned::new(
            env.command(&["--plugin-dir", &plugins(), "apply", "s.yaml", "--plain"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(delay);
        child.kill();
        // This test binary runs alone (cargo runs test binaries one after another), so any
        // supervisor or keyword-recall plugin still alive was left by this kill.
        assert!(
            eventually(Duration::from_secs(10), || leftovers().is_empty()),
            "point {k} ({delay:?}): processes left: {:?}",
            leftovers()
        );
        if !env.store().exists() {
            continue; // killed before the store existed: nothing to resume
        }
        let runs = json(&env, &["results", "list", "--json"]);
        let Some(run) = runs.as_array().unwrap().first() else {
            continue; // killed before the run was recorded
        };
        let id = run["id"].as_str().unwrap().to_string();
        let before = json(&env, &["results", "show", &id, "--json"]);
        let status = before["status"].as_str().unwrap();
        if status == "succeeded" {
            continue; // the kill came after the end
        }
        assert_eq!(status, "abandoned", "point {k} ({delay:?})");
        abandoned_runs += 1;
        for n in before["nodes"].as_array().unwrap() {
            assert_ne!(n["status"], "running", "point {k}: {n}");
        }
        let intact = finished(&before);
        for (leg, metrics) in &intact {
            assert!(!metrics.is_empty(), "point {k}: {leg} has its metrics");
        }
        let r = env.run(
            &[
                "--plugin-dir",
                &plugins(),
                "apply",
                "s.yaml",
                "--plain",
                "--resume",
                &id,
            ],
            Duration::from_secs(300),
        );
        assert_eq!(r.code(), Some(0), "point {k}: resume: {}", r.text());
        let after = json(&env, &["results", "show", &id, "--json"]);
        assert_eq!(after["status"], "succeeded", "point {k}");
        let done = finished(&after);
        assert_eq!(done.len(), 7, "point {k}: every leg finished: {done:?}");
        for (leg, metrics) in &intact {
            let kept = done.iter().find(|(l, _)| l == leg).expect("still there");
            assert_eq!(&kept.1, metrics, "point {k}: {leg} kept as it was");
        }
        assert!(
            eventually(Duration::from_secs(10), || leftovers().is_empty()),
            "{:?}",
            leftovers()
        );
    }
    assert!(
        abandoned_runs >= points / 2,
        "most kills landed mid-run ({abandoned_runs} of {points})"
    );
}
