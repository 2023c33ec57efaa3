//! The Slurm executor's jobs against a real Slurm cluster on this machine (a controller and
//! two compute nodes, started by `scripts/slurm-cluster.sh`, which `.ci/run` runs and whose
//! `SLURM_CONF` it exports): the plan lists one job per engine group with its resources, the
//! dry run writes scripts the controller accepts, and the scripts, submitted by hand, run
//! each group on a node of its own and leave its results in the shared directory.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::binary::Env;

/// Held by each test that runs jobs: two nodes are too few for their jobs to share them
/// and still land where the tests expect.
static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The cluster's config (and the cluster to this test alone), or a failure saying how to
/// start it (`KITT_SKIP=slurm` skips).
fn slurm_conf() -> Option<(String, std::sync::MutexGuard<'static, ()>)> {
    if common::skipped("slurm") {
        return None;
    }
    let alone = CLUSTER.lock().unwrap_or_else(|p| p.into_inner());
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
    Some((conf, alone))
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
             params: {{requests: {{type: integer, default: 20}}}}\n\
             parallelism: 2\n\
             executor:\n  kind: slurm\n  slurm:\n    partition: debug\n    extra_args: [--exclusive]\n\
             \x20   results_dir: {}\n    export: {{KITT_GROUP_NOTE: \"two groups\"}}\n\
             engines:\n\
             \x20 a: {{uses: simulator, config: {{ttft: 5ms, itl: 1ms}}, resources: {{cpus: 1, memory: 256m}}}}\n\
             \x20 b: {{uses: simulator, config: {{ttft: 5ms, itl: 1ms}}, resources: {{cpus: 1, memory: 256m}}}}\n\
             nodes:\n\
             \x20 - {{id: lat-a, benchmark: latency, engine: a, params: {{requests: \"${{{{ params.requests }}}}\"}}, timeout: 2m}}\n\
             \x20 - {{id: lat-b, benchmark: latency, engine: b, params: {{requests: 20}}, timeout: 3m, retry: {{attempts: 2, backoff: 1m}}}}\n\
             reports: [{{reporter: markdown, output: report.md}}]\n",
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
        "--signal=B:USR1@120",
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
    let Some((conf, _alone)) = slurm_conf() else {
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
        "requests=16",
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
    // The suite parameter reached the job: group a sent 16 requests, not the default 20.
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
    assert_eq!(requests, Some(serde_json::json!(16.0)), "{}", show.stdout);
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

/// The Slurm details of each leg of the newest run in `store`: (leg, status, job id, node,
/// first error).
fn legs_of_last_run(env: &Env, store: &str) -> Vec<(String, String, String, String, String)> {
    let show = env.kitt(&["results", "show", "last", "--json", "--store", store]);
    assert_eq!(show.code(), Some(0), "{}", show.text());
    let run: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            (
                text(&n["leg"]),
                text(&n["status"]),
                text(&n["details"]["slurm"]["job_id"]),
                text(&n["details"]["slurm"]["node"]),
                text(&n["errors"][0]),
            )
        })
        .collect()
}

/// A metric of leg `leg` in the newest run of `store`.
fn metric_of(env: &Env, store: &str, leg: &str, name: &str) -> f64 {
    let show = env.kitt(&["results", "show", "last", "--json", "--store", store]);
    let run: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    run["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["leg"] == leg)
        .and_then(|n| {
            n["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == name)
        })
        .and_then(|m| m["value"].as_f64())
        .unwrap_or_else(|| panic!("no {name} for {leg}: {}", show.stdout))
}

#[test]
fn kitt_apply_runs_both_groups_at_once_on_both_nodes_and_merges_them() {
    let Some((_conf, _alone)) = slurm_conf() else {
        return;
    };
    let env = Env::new();
    let suite = two_groups(&env);
    let suite = suite.to_str().unwrap();
    let run = env.run(&["apply", suite], Duration::from_secs(180));
    assert_eq!(run.code(), Some(0), "{}", run.text());
    assert!(run.stdout.contains("RUNNING on n"), "{}", run.stdout);
    let store = env.store();
    let store = store.to_str().unwrap();
    let legs = legs_of_last_run(&env, store);
    assert_eq!(legs.len(), 2, "{legs:?}");
    let mut nodes: Vec<&str> = legs.iter().map(|l| l.3.as_str()).collect();
    nodes.sort();
    assert_eq!(nodes, ["n1", "n2"], "{legs:?}");
    assert!(
        legs.iter().all(|l| l.1 == "succeeded" && !l.2.is_empty()),
        "{legs:?}"
    );
    // The suite's report covers both groups' legs, rendered where the coordinator runs.
    let report = std::fs::read_to_string(env.path("report.md")).expect("report.md");
    assert!(
        report.contains("lat-a") && report.contains("lat-b"),
        "{report}"
    );
    // The same legs run locally measure the same, within noise.
    let slurm_ttft = metric_of(&env, store, "lat-a", "ttft_p50_ms");
    assert_eq!(metric_of(&env, store, "lat-a", "requests"), 20.0);
    let local = env.run(
        &["apply", suite, "--executor", "local"],
        Duration::from_secs(120),
    );
    assert_eq!(local.code(), Some(0), "{}", local.text());
    let local_ttft = metric_of(&env, store, "lat-a", "ttft_p50_ms");
    assert!(
        (slurm_ttft - local_ttft).abs() < 3.0 + 0.5 * local_ttft,
        "Slurm {slurm_ttft} ms, local {local_ttft} ms"
    );
}

/// Starts `kitt apply SUITE` in the background and waits until its jobs run; the caller
/// waits for it (`wait`).
#[allow(clippy::zombie_processes)]
fn apply_until_running(env: &Env, conf: &str, suite: &str, name: &str) -> std::process::Child {
    let mut child = env
        .command(&["apply", suite])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let queue = slurm(conf, "squeue", &["-h", "-t", "running", "-o", "%j"]);
        if queue.lines().any(|l| l == format!("kitt-{name}-sim")) {
            return child;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("jobs never ran: {queue}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A suite whose group runs a quick leg, then one that lasts minutes.
fn slow_suite(env: &Env, name: &str, time_limit: &str) -> String {
    let results = env.path("shared/results");
    env.write(
        &format!("{name}.yaml"),
        format!(
            "apiVersion: kitt/v1\nkind: Suite\nmetadata: {{name: {name}, version: 1.0.0}}\n\
             params: {{long: {{type: integer, default: 100000}}}}\n\
             executor:\n  kind: slurm\n  slurm: {{results_dir: {}{time_limit}}}\n\
             engines:\n  sim: {{uses: simulator, config: {{ttft: 5ms, itl: 1ms, output_tokens: 4}}}}\n\
             nodes:\n\
             \x20 - {{id: quick, benchmark: latency, engine: sim, params: {{requests: 2, output_tokens: 4}}}}\n\
             \x20 - {{id: long, benchmark: latency, engine: sim, needs: [quick], params: {{requests: \"${{{{ params.long }}}}\", output_tokens: 4}}}}\n",
            results.display()
        ),
    )
    .display()
    .to_string()
}

/// Jobs of the suite `name` still in the queue.
fn queued(conf: &str, name: &str) -> String {
    slurm(conf, "squeue", &["-h", "-o", "%j %T"])
        .lines()
        .filter(|l| l.starts_with(&format!("kitt-{name}-")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits for `child` to exit (at most `limit`); its exit code.
fn wait(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("kitt did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ctrl_c_cancels_every_job_and_keeps_nothing_running() {
    let Some((conf, _alone)) = slurm_conf() else {
        return;
    };
    let env = Env::new();
    let suite = slow_suite(&env, "interrupted", "");
    let mut child = apply_until_running(&env, &conf, &suite, "interrupted");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(wait(&mut child, Duration::from_secs(60)), Some(130));
    // No job of the run in the queue, and no kitt left running the suite on a node.
    let started = Instant::now();
    while !queued(&conf, "interrupted").is_empty() || !common::processes_with(&suite).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "left behind: {} / {:?}",
            queued(&conf, "interrupted"),
            common::processes_with(&suite)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let legs = legs_of_last_run(&env, env.store().to_str().unwrap());
    assert!(legs.iter().all(|l| l.1 == "cancelled"), "{legs:?}");
}

#[test]
fn a_job_cancelled_under_the_run_fails_its_unfinished_legs_with_slurm_s_reason() {
    let Some((conf, _alone)) = slurm_conf() else {
        return;
    };
    let env = Env::new();
    let suite = slow_suite(&env, "taken", "");
    let mut child = apply_until_running(&env, &conf, &suite, "taken");
    // Let the quick leg finish, then take the job away (as a preemption or an admin would).
    std::thread::sleep(Duration::from_secs(3));
    slurm(&conf, "scancel", &["--name", "kitt-taken-sim"]);
    assert_eq!(wait(&mut child, Duration::from_secs(60)), Some(1));
    let legs = legs_of_last_run(&env, env.store().to_str().unwrap());
    let long = legs.iter().find(|l| l.0 == "long").expect("long");
    assert_eq!(long.1, "failed", "{legs:?}");
    assert!(
        long.4.contains("CANCELLED") || long.4.contains("ended"),
        "{legs:?}"
    );
    // The leg that finished before is kept.
    let quick = legs.iter().find(|l| l.0 == "quick").expect("quick");
    assert_eq!(quick.1, "succeeded", "{legs:?}");
    // --resume resubmits only what did not finish (here with a shorter long leg).
    let show = env.kitt(&["results", "show", "last", "--json"]);
    let run: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    let id = run["id"].as_str().unwrap().to_string();
    let resumed = env.run(
        &["apply", &suite, "--resume", &id, "-p", "long=4"],
        Duration::from_secs(120),
    );
    assert_eq!(resumed.code(), Some(0), "{}", resumed.text());
    assert_eq!(
        resumed.stdout.matches("submitted group").count(),
        1,
        "{}",
        resumed.stdout
    );
    let after = legs_of_last_run(&env, env.store().to_str().unwrap());
    assert!(after.iter().all(|l| l.1 == "succeeded"), "{after:?}");
    let quick_after = after.iter().find(|l| l.0 == "quick").unwrap();
    assert_eq!(
        quick_after.2, quick.2,
        "quick kept from the first job: {after:?}"
    );
    let long_after = after.iter().find(|l| l.0 == "long").unwrap();
    assert_ne!(long_after.2, long.2, "long ran in a new job: {after:?}");
    // Nothing left to resume.
    let again = env.kitt(&["apply", &suite, "--resume", &id, "-p", "long=4"]);
    assert_eq!(again.code(), Some(0), "{}", again.text());
    assert!(
        again.stdout.contains("nothing to resume"),
        "{}",
        again.stdout
    );
}

#[test]
fn a_job_at_its_time_limit_keeps_what_finished_and_says_why_the_rest_failed() {
    let Some((conf, _alone)) = slurm_conf() else {
        return;
    };
    let env = Env::new();
    // One minute: Slurm's notice comes 12 s before it.
    let suite = slow_suite(&env, "limited", ", time_limit: 1m");
    let mut child = apply_until_running(&env, &conf, &suite, "limited");
    assert_eq!(wait(&mut child, Duration::from_secs(150)), Some(1));
    let legs = legs_of_last_run(&env, env.store().to_str().unwrap());
    let long = legs.iter().find(|l| l.0 == "long").expect("long");
    assert_eq!(long.1, "failed", "{legs:?}");
    assert!(
        long.4.contains("TIMEOUT") && long.4.contains("1 min time limit"),
        "{legs:?}"
    );
    let quick = legs.iter().find(|l| l.0 == "quick").expect("quick");
    assert_eq!(quick.1, "succeeded", "{legs:?}");
    assert!(
        queued(&conf, "limited").is_empty(),
        "{}",
        queued(&conf, "limited")
    );
}

#[test]
fn a_group_on_the_real_llama_server_runs_through_slurm() {
    let Some((_conf, _alone)) = slurm_conf() else {
        return;
    };
    if common::skipped("llama") {
        return;
    }
    let env = Env::new();
    let suite = env.write(
        "llama.yaml",
        format!(
            "apiVersion: kitt/v1\nkind: Suite\nmetadata: {{name: llama-slurm, version: 1.0.0}}\n\
             executor:\n  kind: slurm\n  slurm: {{results_dir: {}}}\n\
             engines:\n  llama:\n    uses: llama.cpp\n    mode: native\n    model: {}\n\
             \x20   config: {{binary: {}, threads: 2}}\n    resources: {{cpus: 2}}\n\
             nodes:\n  - {{id: lat, benchmark: latency, engine: llama, params: {{requests: 3, output_tokens: 8}}}}\n",
            env.path("shared/results").display(),
            common::test_model().display(),
            common::llama_server().display()
        ),
    );
    let run = env.run(
        &["apply", suite.to_str().unwrap()],
        Duration::from_secs(300),
    );
    assert_eq!(run.code(), Some(0), "{}", run.text());
    let legs = legs_of_last_run(&env, env.store().to_str().unwrap());
    assert_eq!(legs.len(), 1);
    assert_eq!(legs[0].1, "succeeded", "{legs:?}");
    assert!(legs[0].3 == "n1" || legs[0].3 == "n2", "{legs:?}");
    // The engine really answered: llama-server's own token counts came back.
    assert_eq!(
        metric_of(
            &env,
            env.store().to_str().unwrap(),
            "lat",
            "output_tokens_mean"
        ),
        8.0
    );
    // And no llama-server outlived its job.
    assert!(common::processes_with(&common::test_model().display().to_string()).is_empty());
}

#[test]
fn a_group_that_needs_another_s_output_runs_after_it_with_the_value_rendered_in() {
    let Some((_conf, _alone)) = slurm_conf() else {
        return;
    };
    let env = Env::new();
    let suite = env.write(
        "chain.yaml",
        format!(
            "apiVersion: kitt/v1\nkind: Suite\nmetadata: {{name: chain, version: 1.0.0}}\n\
             executor:\n  kind: slurm\n  slurm: {{results_dir: {}}}\n\
             engines:\n\
             \x20 a: {{uses: simulator, config: {{ttft: 5ms, itl: 1ms, output_tokens: 4}}}}\n\
             \x20 b: {{uses: simulator, config: {{ttft: 5ms, itl: 1ms, output_tokens: 4}}}}\n\
             nodes:\n\
             \x20 - {{id: sw, benchmark: sweep, engine: a, params: {{over: concurrency, values: [1, 2], requests: 6, output_tokens: 4}}}}\n\
             \x20 - {{id: ld, benchmark: load, engine: b, needs: [sw], params: {{concurrency: \"${{{{ nodes.sw.outputs.max_concurrency }}}}\", requests: 8, output_tokens: 4}}}}\n",
            env.path("shared/results").display()
        ),
    );
    let suite = suite.to_str().unwrap();
    let plan = env.kitt(&["plan", suite, "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plan["slurm_jobs"][1]["after"], serde_json::json!(["a"]));
    let run = env.run(&["apply", suite], Duration::from_secs(180));
    assert_eq!(run.code(), Some(0), "{}", run.text());
    // b was submitted only after a's job ended.
    let a_ended = run
        .stdout
        .find("group a (job")
        .and_then(|_| run.stdout.find("COMPLETED"));
    let b_submitted = run.stdout.find("submitted group b");
    assert!(a_ended.is_some() && b_submitted > a_ended, "{}", run.stdout);
    let store = env.store();
    let store = store.to_str().unwrap();
    // The sweep's answer (every point held: 2) became the load's concurrency.
    assert_eq!(metric_of(&env, store, "sw", "max_concurrency"), 2.0);
    assert_eq!(metric_of(&env, store, "ld", "concurrency_max"), 2.0);
    let legs = legs_of_last_run(&env, store);
    assert!(legs.iter().all(|l| l.1 == "succeeded"), "{legs:?}");
}

#[test]
fn a_sweep_s_concurrency_output_feeds_a_later_load_locally_too() {
    // The concurrency a sweep finds is a whole number a `load` accepts (it was `2.0`).
    let env = Env::new();
    let suite = env.write(
        "found.yaml",
        common::binary::sim_suite(
            "found",
            "  - {id: sw, benchmark: sweep, engine: sim, params: {over: concurrency, values: [1, 3], requests: 6}}\n\
             \x20 - {id: ld, benchmark: load, engine: sim, needs: [sw], params: {concurrency: \"${{ nodes.sw.outputs.max_concurrency }}\", requests: 6}}\n",
        ),
    );
    let run = env.kitt(&["apply", suite.to_str().unwrap()]);
    assert_eq!(run.code(), Some(0), "{}", run.text());
    let store = env.store();
    assert_eq!(
        metric_of(&env, store.to_str().unwrap(), "ld", "concurrency_max"),
        3.0
    );
}
