//! The Slurm executor's jobs against a real Slurm cluster on this machine (a controller and
//! two compute nodes, started by `scripts/slurm-cluster.sh`, which `.ci/run` runs and whose
//! `SLURM_CONF` it exports): the plan lists one job per engine group with its resources, the
//! dry run writes scripts the controller accepts, and the scripts, submitted by hand, run
//! each group on a node of its own and leave its results in the shared directory.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::binary::Env;

/// The cluster's config, or a failure saying how to start it (`KITT_SKIP=slurm` skips).
fn slurm_conf() -> Option<String> {
    if common::skipped("slurm") {
        return None;
    }
    let conf = std::env::var("SLURM_CONF").unwrap_or_else(|_| {
        panic!(
            "SLURM_CONF is not set: start the test cluster with `eval \"$(scripts/slurm-cluster.sh start)\"` and export it (or set KITT_SKIP=slurm to skip locally)"
        )
    });
    let sinfo = Command::new("sinfo")
        .args(["-h", "-N", "-o", "%N %t"])
        .env("SLURM_CONF", &conf)
        .output()
        .expect("sinfo runs (apt-get install slurm-wlm)");
    let nodes = String::from_utf8_lossy(&sinfo.stdout).into_owned();
    assert!(
        nodes.lines().filter(|l| !l.contains("down")).count() >= 2,
        "the test cluster needs two nodes up: {nodes}"
    );
    Some(conf)
}

/// Runs a Slurm command and returns its stdout, failing on a non-zero exit.
fn slurm(conf: &str, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .env("SLURM_CONF", conf)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Cancels the jobs it names when dropped, so a failing test leaves none behind.
struct Jobs<'a> {
    conf: &'a str,
    ids: Vec<String>,
}

impl Drop for Jobs<'_> {
    fn drop(&mut self) {
        if !self.ids.is_empty() {
            let _ = Command::new("scancel")
                .args(&self.ids)
                .env("SLURM_CONF", self.conf)
                .status();
        }
    }
}

/// A suite of two engine groups on the simulator, each asking for a whole node.
fn two_groups(env: &Env) -> std::path::PathBuf {
    let results = env.path("shared/results");
    env.write(
        "suite.yaml",
        format!(
            "apiVersion: kitt/v1\nkind: Suite\nmetadata: {{name: two-groups, version: 1.0.0}}\n\
             params: {{requests: {{type: integer, default: 5}}}}\n\
             executor:\n  kind: slurm\n  slurm:\n    partition: debug\n    extra_args: [--exclusive]\n\
             \x20   results_dir: {}\n    export: {{KITT_GROUP_NOTE: \"two groups\"}}\n\
             engines:\n\
             \x20 a: {{uses: simulator, config: {{ttft: 5ms, itl: 1ms}}, resources: {{cpus: 1, memory: 256m}}}}\n\
             \x20 b: {{uses: simulator, config: {{ttft: 5ms, itl: 1ms}}, resources: {{cpus: 1, memory: 256m}}}}\n\
             nodes:\n\
             \x20 - {{id: lat-a, benchmark: latency, engine: a, params: {{requests: \"${{{{ params.requests }}}}\"}}, timeout: 2m}}\n\
             \x20 - {{id: lat-b, benchmark: latency, engine: b, params: {{requests: 3}}, timeout: 3m, retry: {{attempts: 2, backoff: 1m}}}}\n",
            results.display()
        ),
    )
}

#[test]
fn the_plan_lists_one_job_per_engine_group_with_its_resources_and_time() {
    let env = Env::new();
    let suite = two_groups(&env);
    let suite = suite.to_str().unwrap();
    let run = env.kitt(&["plan", suite, "--format", "json"]);
    assert_eq!(run.code(), Some(0), "{}", run.text());
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let jobs = plan["slurm_jobs"].as_array().expect("slurm_jobs");
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0]["group"], "a");
    assert_eq!(jobs[0]["legs"], serde_json::json!(["lat-a"]));
    let args: Vec<&str> = jobs[0]["sbatch_args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for want in [
        "--partition=debug",
        "--cpus-per-task=1",
        "--mem=256M",
        "--exclusive",
        "--signal=B:TERM@120",
    ] {
        assert!(args.contains(&want), "{want} not in {args:?}");
    }
    // 10 min of engine start-up and 2 min of leg; b: two 3-min attempts and a 1-min backoff.
    assert_eq!(jobs[0]["time_limit_minutes"], 12);
    assert_eq!(jobs[1]["time_limit_minutes"], 17);
    // `--executor local` wins over the suite's executor: no jobs.
    let local = env.kitt(&["plan", suite, "--format", "json", "--executor", "local"]);
    let plan: serde_json::Value = serde_json::from_str(&local.stdout).unwrap();
    assert!(plan.get("slurm_jobs").is_none());
    // Submitting is not built: apply says so instead of running anything.
    let apply = env.kitt(&["apply", suite]);
    assert_eq!(apply.code(), Some(64), "{}", apply.text());
    assert!(apply.stderr.contains("not built yet"), "{}", apply.text());
}

#[test]
fn settings_slurm_cannot_honour_are_refused() {
    let env = Env::new();
    let base = "apiVersion: kitt/v1\nkind: Suite\nmetadata: {name: s, version: 1.0.0}\n";
    let node = "nodes:\n  - {id: l, benchmark: latency, engine: e}\n";
    for (executor, engine, want) in [
        (
            "executor: {kind: slurm}\n",
            "engines: {e: {uses: simulator}}\n",
            "needs `executor.slurm.results_dir`",
        ),
        (
            "executor: {kind: slurm, slurm: {results_dir: shared}}\n",
            "engines: {e: {uses: simulator}}\n",
            "must be an absolute path",
        ),
        (
            "executor: {kind: slurm, slurm: {results_dir: /shared}}\n",
            "engines: {e: {uses: simulator, resources: {gpus: all}}}\n",
            "is a number of GPUs",
        ),
        (
            "executor: {kind: slurm, slurm: {results_dir: /shared, extra_args: [-N2]}}\n",
            "engines: {e: {uses: simulator}}\n",
            "`-N2` is not an sbatch option",
        ),
    ] {
        let suite = env.write("bad.yaml", format!("{base}{executor}{engine}{node}"));
        let run = env.kitt(&["plan", suite.to_str().unwrap()]);
        assert_ne!(run.code(), Some(0), "{executor}{engine}");
        assert!(run.text().contains(want), "{want}: {}", run.text());
    }
    // A misspelt setting is a schema error at its line.
    let suite = env.write(
        "typo.yaml",
        format!(
            "{base}executor:\n  kind: slurm\n  slurm: {{partiton: gpu}}\nengines: {{e: {{uses: simulator}}}}\n{node}"
        ),
    );
    let run = env.kitt(&["validate", suite.to_str().unwrap()]);
    assert_eq!(run.code(), Some(1));
    assert!(run.text().contains("typo.yaml:6"), "{}", run.text());
}

#[test]
fn the_dry_run_s_scripts_run_each_group_on_a_node_of_its_own() {
    let Some(conf) = slurm_conf() else {
        return;
    };
    let env = Env::new();
    let suite = two_groups(&env);
    let jobs_dir = env.path("jobs");
    let run = env.kitt(&[
        "apply",
        suite.to_str().unwrap(),
        "--dry-run",
        "--job-dir",
        jobs_dir.to_str().unwrap(),
        "-p",
        "requests=4",
    ]);
    assert_eq!(run.code(), Some(0), "{}", run.text());
    assert!(
        run.stdout.contains("nothing was submitted"),
        "{}",
        run.stdout
    );
    let scripts: Vec<_> = ["a", "b"]
        .iter()
        .map(|g| jobs_dir.join(format!("kitt-two-groups-{g}.sbatch")))
        .collect();
    // The controller accepts each script as written.
    for script in &scripts {
        let out = Command::new("sbatch")
            .arg("--test-only")
            .arg(script)
            .env("SLURM_CONF", &conf)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && said.contains("to start at"),
            "{said}"
        );
    }
    // Submitted by hand, they run: each group on a node of its own (`--exclusive`).
    std::fs::create_dir_all(env.path("shared/results/two-groups")).unwrap();
    let mut jobs = Jobs {
        conf: &conf,
        ids: Vec::new(),
    };
    for script in &scripts {
        let id = slurm(&conf, "sbatch", &["--parsable", script.to_str().unwrap()]);
        jobs.ids.push(id.trim().to_string());
    }
    let started = Instant::now();
    loop {
        let queue = slurm(&conf, "squeue", &["-h", "-j", &jobs.ids.join(",")]);
        if queue.trim().is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "jobs still queued: {queue}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut nodes = Vec::new();
    for (id, group) in jobs.ids.iter().zip(["a", "b"]) {
        let show = slurm(&conf, "scontrol", &["show", "job", id]);
        assert!(show.contains("JobState=COMPLETED"), "{show}");
        let node = show
            .split_whitespace()
            .find_map(|w| w.strip_prefix("NodeList="))
            .unwrap()
            .to_string();
        nodes.push(node);
        // The group's results came back as a store file of its own, with its leg in it.
        let results = env.path(&format!("shared/results/two-groups/{group}-{id}.db"));
        assert!(results.exists(), "no {}", results.display());
        let show = env.kitt(&[
            "results",
            "show",
            "last",
            "--store",
            results.to_str().unwrap(),
        ]);
        assert!(
            show.stdout.contains(&format!("lat-{group}")),
            "{}",
            show.text()
        );
        assert!(show.stdout.contains("succeeded"), "{}", show.text());
    }
    nodes.sort();
    assert_eq!(nodes, ["n1", "n2"]);
    // The suite parameter reached the job: group a sent 4 requests, not the default 5.
    let results = env.path(&format!("shared/results/two-groups/a-{}.db", jobs.ids[0]));
    let show = env.kitt(&[
        "results",
        "show",
        "last",
        "--json",
        "--store",
        results.to_str().unwrap(),
    ]);
    let run: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    let requests = run["nodes"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "requests")
        .map(|m| m["value"].clone());
    assert_eq!(requests, Some(serde_json::json!(4.0)), "{}", show.stdout);
    // Brought back into one store: both groups' runs, once.
    let files: Vec<String> = jobs
        .ids
        .iter()
        .zip(["a", "b"])
        .map(|(id, g)| {
            env.path(&format!("shared/results/two-groups/{g}-{id}.db"))
                .display()
                .to_string()
        })
        .collect();
    let mut import = vec!["results", "import"];
    import.extend(files.iter().map(String::as_str));
    let run = env.kitt(&import);
    assert_eq!(run.code(), Some(0), "{}", run.text());
    assert_eq!(
        run.stdout.matches("imported run").count(),
        2,
        "{}",
        run.stdout
    );
    let again = env.kitt(&import);
    assert_eq!(
        again.stdout.matches("is already in").count(),
        2,
        "{}",
        again.stdout
    );
    jobs.ids.clear();
}

#[test]
fn a_store_s_runs_are_imported_whole_and_once() {
    let env = Env::new();
    let suite = env.write(
        "suite.yaml",
        common::binary::sim_suite(
            "imp",
            "  - {id: load, benchmark: load, engine: sim, params: {concurrency: 2, requests: 20}, telemetry: {interval: 100ms}}\n",
        ),
    );
    let other = env.path("other.db");
    let run = env.kitt(&[
        "apply",
        suite.to_str().unwrap(),
        "--store",
        other.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), Some(0), "{}", run.text());
    let show = |store: &str| {
        let r = env.kitt(&["results", "show", "last", "--json", "--store", store]);
        assert_eq!(r.code(), Some(0), "{}", r.text());
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()
    };
    let before = show(other.to_str().unwrap());
    let imported = env.kitt(&["results", "import", other.to_str().unwrap(), "--json"]);
    assert_eq!(imported.code(), Some(0), "{}", imported.text());
    let here = env.store();
    let after = show(here.to_str().unwrap());
    // The same run, node for node and metric for metric, telemetry figures included.
    assert_eq!(before["id"], after["id"]);
    assert_eq!(before["nodes"], after["nodes"]);
    assert!(
        before["nodes"][0]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "kv_cache_usage_max"),
        "{}",
        before["nodes"][0]
    );
    // Not a store: an error that names the file.
    let junk = env.write("junk.db", "not sqlite at all, just text");
    let bad = env.kitt(&["results", "import", junk.to_str().unwrap()]);
    assert_ne!(bad.code(), Some(0));
    assert!(bad.text().contains("junk.db"), "{}", bad.text());
}
