//! Results over time: a store of 56 generated runs with a planted regression and a machine
//! change, as a history (bands, flags, markers), rendered in HTML and opened in headless
//! Chromium, in Markdown, and as `kitt results trend` with its CI gate; and a real store
//! built by applying a suite on the simulator, with a slowdown the trend must catch.

mod common;

use std::process::Command;

use kitt::compare::history::{self, ChangeKind, Flag, Query};
use kitt::store::{MetricRecord, NodeRecord, RunRecord, Store};
use serde_json::{Value, json};

use common::binary::{Env, sim_suite};

const RUNS: usize = 56;
/// The machine changes at this run (values 20 % higher from here: explained, not flagged).
const NEW_MACHINE: usize = 30;
/// The planted regression: TTFT p50 40 % above its trend.
const PLANTED: usize = 50;

fn metric(name: &str, value: f64, unit: &str, higher: bool) -> MetricRecord {
    MetricRecord {
        name: name.into(),
        value,
        unit: unit.into(),
        direction: if higher {
            kitt::registry::Direction::Higher
        } else {
            kitt::registry::Direction::Lower
        },
    }
}

fn run_id(i: usize) -> String {
    format!("{}-1-{i}", 1_790_000_000 + i * 86_400)
}

/// A store of `RUNS` nightly runs of suite `nightly`, one latency leg each; `last` extra
/// runs may be left out to end the history earlier.
fn generated_store(dir: &std::path::Path, runs: usize) -> std::path::PathBuf {
    let path = dir.join("kitt.db");
    let mut store = Store::open(&path).unwrap();
    for i in 0..runs {
        let id = run_id(i);
        let started = 1_790_000_000.0 + (i * 86_400) as f64;
        store
            .insert_run(&RunRecord {
                id: id.clone(),
                suite: "nightly".into(),
                suite_version: "1.0.0".into(),
                suite_path: "suites/nightly.yaml".into(),
                digest: "00112233aabbccdd".into(),
                git_commit: None,
                git_dirty: None,
                started_at: started,
                ended_at: Some(started + 60.0),
                status: kitt::store::RunStatus::Succeeded,
                kitt_version: "0.1.0".into(),
                fingerprint: if i < NEW_MACHINE {
                    "aaaa0000"
                } else {
                    "bbbb1111"
                }
                .into(),
                fingerprint_summary: "test machine".into(),
                params: json!({}),
                owner: None,
                heartbeat_at: None,
            })
            .unwrap();
        // ±1 % of cyclic noise, 20 % slower on the new machine, the planted +40 %.
        let noise = 1.0 + 0.01 * ((i * 7 % 5) as f64 - 2.0) / 2.0;
        let machine = if i < NEW_MACHINE { 1.0 } else { 1.2 };
        let planted = if i == PLANTED { 1.4 } else { 1.0 };
        let ttft = 40.0 * noise * machine * planted;
        let rps = 20.0 * noise / machine;
        let node = NodeRecord {
            run_id: id.clone(),
            leg: "latency".into(),
            node: "latency".into(),
            benchmark: "latency".into(),
            benchmark_version: "1.0.0".into(),
            engine: "sim".into(),
            engine_uses: "simulator".into(),
            image: None,
            image_digest: None,
            model: Some("tiny".into()),
            params: json!({}),
            spec_hash: "0123456789abcdef".into(),
            status: kitt::store::NodeStatus::Succeeded,
            attempts: 1,
            errors: vec![],
            outputs: json!({}),
            details: json!({}),
            started_at: Some(started),
            ended_at: Some(started + 50.0),
            seconds: Some(50.0),
        };
        // 200 requests around the run's TTFT, so the p50 has a standard error.
        let samples: Vec<kitt::bench::samples::Sample> = (0..200)
            .map(|k| kitt::bench::samples::Sample {
                at_ms: k as f32 * 10.0,
                ttft_ms: (ttft * (0.99 + 0.0001 * k as f64)) as f32,
                tpot_ms: 5.0,
                e2e_ms: (ttft + 50.0) as f32,
                tokens: 10,
                ok: true,
            })
            .collect();
        let encoded = kitt::bench::samples::encode(&samples);
        store
            .put_node(
                &node,
                &[
                    metric("ttft_p50_ms", ttft, "ms", false),
                    metric("requests_per_s", rps, "requests/s", true),
                    metric("unlisted_metric", 1.0, "1", true),
                ],
                &[],
                Some((kitt::bench::samples::FORMAT, 200, &encoded)),
            )
            .unwrap();
    }
    path
}

fn query(last: Option<usize>) -> Query {
    Query {
        suite: "nightly".into(),
        last,
        ..Query::default()
    }
}

#[test]
fn the_planted_regression_is_flagged_and_the_machine_change_explains_its_jump() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_existing(&generated_store(dir.path(), RUNS)).unwrap();
    let h = history::build(&store, &query(Some(100))).unwrap();
    assert_eq!(h.runs.len(), RUNS);
    // The key metrics only (the unlisted one is left out).
    let names: Vec<&str> = h.series.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(names, ["ttft_p50_ms", "requests_per_s"]);
    let ttft = &h.series[0];
    let flagged: Vec<(usize, Flag)> = ttft
        .points
        .iter()
        .filter(|p| matches!(p.flag, Flag::Regression | Flag::Improvement))
        .map(|p| (p.run, p.flag))
        .collect();
    assert_eq!(flagged, [(PLANTED, Flag::Regression)], "{:#?}", ttft.points);
    let planted = &ttft.points[PLANTED];
    let band = planted.band.unwrap();
    assert!(band.high < planted.value && band.points == 10, "{band:?}");
    // The run after it is judged against a median the one outlier does not move.
    assert_eq!(ttft.points[PLANTED + 1].flag, Flag::WithinNoise);
    // The machine change is marked on the run and the point, and restarts the baseline.
    let changed = &h.runs[NEW_MACHINE].changes;
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].what, ChangeKind::Fingerprint);
    assert_eq!(
        (changed[0].from.as_str(), changed[0].to.as_str()),
        ("aaaa0000", "bbbb1111")
    );
    assert_eq!(ttft.points[NEW_MACHINE].changes, *changed);
    assert_eq!(ttft.points[NEW_MACHINE].flag, Flag::NoBaseline);
    assert_eq!(
        ttft.points[NEW_MACHINE + history::MIN_BASELINE].flag,
        Flag::WithinNoise
    );
    // Throughput fell on the new machine as well and is not flagged either.
    assert_eq!((h.series[1].regressions, h.series[1].improvements), (0, 0));
    // The samples give the p50 a standard error.
    assert!(planted.standard_error.is_some_and(|se| se > 0.0));
    // The newest run is fine, so no regression is "latest".
    assert_eq!(h.latest_regressions, 0);
    // A window: the newest 10 runs, and a node and metric filter.
    let h = history::build(&store, &query(Some(10))).unwrap();
    assert_eq!(h.runs[0].id, run_id(RUNS - 10));
    let mut q = query(None);
    q.metrics = vec!["unlisted_metric".into()];
    q.nodes = vec!["latency".into()];
    let h = history::build(&store, &q).unwrap();
    assert_eq!(h.runs.len(), history::DEFAULT_LAST);
    assert_eq!(h.series.len(), 1);
    let mut q = query(None);
    q.since = kitt::store::time::parse_utc(&kitt::store::time::format_utc(
        1_790_000_000.0 + ((RUNS - 3) * 86_400) as f64,
    ));
    assert_eq!(history::build(&store, &q).unwrap().runs.len(), 3);
    q.suite = "other".into();
    let e = history::build(&store, &q).unwrap_err().to_string();
    assert!(e.contains("no runs of suite `other`"), "{e}");
}

#[test]
fn the_history_report_renders_in_a_headless_browser_with_its_marks() {
    let dir = tempfile::tempdir().unwrap();
    let store_path = generated_store(dir.path(), RUNS);
    let page = dir.path().join("history.html");
    let out = Command::new(env!("CARGO_BIN_EXE_kitt"))
        .args([
            "report",
            "--history",
            "nightly",
            "--last",
            "100",
            "-r",
            "html",
            "--store",
        ])
        .arg(&store_path)
        .arg("-o")
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("http://")
            || html.matches("http://").count()
                == html.matches("http://www.w3.org/2000/svg").count(),
        "self-contained: no link but the SVG namespace"
    );
    let Some(browser) = common::chromium() else {
        return;
    };
    let dom = common::browse(&browser, &page, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    // Two charts (TTFT p50 and throughput), a point per run on each.
    assert_eq!(dom.matches("class=\"history-chart\"").count(), 2, "{dom}");
    assert_eq!(dom.matches("<circle class=\"point ").count(), 2 * RUNS);
    // The planted regression is the one marked point, on the TTFT chart.
    assert_eq!(dom.matches("class=\"point regression\"").count(), 1);
    assert!(
        dom.contains(&format!(
            "class=\"point regression\" data-run=\"{}\"",
            run_id(PLANTED)
        )),
        "{dom}"
    );
    assert_eq!(dom.matches("class=\"point improvement\"").count(), 0);
    // The machine change is a marker on both charts and a row of the changes table.
    let marker = format!(
        "class=\"change-marker\" data-run=\"{}\" data-changes=\"fingerprint\"",
        run_id(NEW_MACHINE)
    );
    assert_eq!(dom.matches(&marker).count(), 2, "{dom}");
    assert_eq!(dom.matches("class=\"change-marker\"").count(), 2);
    assert!(dom.contains("fingerprint: aaaa0000 → bbbb1111"));
    // Bands from the fifth point on (machine change restarts them): 4 + 4 points without.
    assert_eq!(dom.matches("class=\"band\"").count(), 2 * (RUNS - 8));
    let shot = dir.path().join("shot.png");
    let out = common::browse(
        &browser,
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,1600",
        ],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("Uncaught"), "console errors: {log}");
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.len() > 1000 && png.starts_with(b"\x89PNG"));
}

fn kitt(store: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kitt"))
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap()
}

#[test]
fn the_trend_is_a_ci_gate_and_the_markdown_lists_what_was_flagged() {
    let dir = tempfile::tempdir().unwrap();
    // The history up to the planted run: its newest run regressed.
    let store = generated_store(dir.path(), PLANTED + 1);
    let out = kitt(
        &store,
        &[
            "results",
            "trend",
            "nightly",
            "--last",
            "100",
            "--fail-on-regression",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("latency") && l.contains("ttft_p50_ms"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(row.contains("REGRESSION") && row.contains('█'), "{row}");
    assert!(
        text.contains("1 series regressed in the newest run"),
        "{text}"
    );
    assert!(text.contains("machine aaaa0000 → bbbb1111"), "{text}");
    // Without the gate the same history exits 0; --json carries the same verdict.
    let out = kitt(&store, &["results", "trend", "nightly", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["latest_regressions"], 1);
    assert_eq!(doc["series"][0]["latest"], "regression");
    // The newest 30 runs start after the machine change: no fingerprint marker in them.
    assert_eq!(doc["runs"].as_array().unwrap().len(), 30);
    let md = kitt(&store, &["report", "--history", "nightly", "--last", "100"]);
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(
        md.contains("**The newest run regressed on 1 series.**"),
        "{md}"
    );
    let flagged = md
        .lines()
        .find(|l| l.contains(&run_id(PLANTED)) && l.contains("ttft_p50_ms"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(flagged.contains("**regression**"), "{flagged}");
    assert!(md.contains("fingerprint `aaaa0000` → `bbbb1111`"), "{md}");
    // A history one run later: the newest run is fine again.
    let dir = tempfile::tempdir().unwrap();
    let store = generated_store(dir.path(), PLANTED + 2);
    let out = kitt(
        &store,
        &["results", "trend", "nightly", "--fail-on-regression"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Bad windows are usage errors.
    let out = kitt(
        &store,
        &["results", "trend", "nightly", "--since", "last week"],
    );
    assert_eq!(out.status.code(), Some(64), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a UTC date"));
}

#[test]
fn a_trend_over_real_runs_catches_a_slowdown_on_the_simulator() {
    let env = Env::new();
    let suite = env.write(
        "trend.yaml",
        sim_suite("trend", "  - id: latency\n    benchmark: latency\n    engine: sim\n    params: {requests: 20, output_tokens: 4}\n")
            .replace("ttft: 5ms", "ttft: \"${{ params.ttft }}\"")
            .replace("nodes:", "params: {ttft: {type: string, default: 20ms}}\nnodes:"),
    );
    let suite = suite.to_str().unwrap();
    for _ in 0..5 {
        let out = env.kitt(&["apply", suite, "--plain"]);
        assert_eq!(out.code(), Some(0), "{}", out.text());
    }
    let gate = || {
        env.kitt(&[
            "results",
            "trend",
            "trend",
            "--fail-on-regression",
            "--metric",
            "ttft_p50_ms",
        ])
    };
    let out = gate();
    assert_eq!(out.code(), Some(0), "{}", out.text());
    assert!(out.stdout.contains("within noise"), "{}", out.text());
    // Twice as slow a first token: beyond any noise of the simulator.
    let out = env.kitt(&["apply", suite, "--plain", "-p", "ttft=40ms"]);
    assert_eq!(out.code(), Some(0), "{}", out.text());
    let out = gate();
    assert_eq!(out.code(), Some(1), "{}", out.text());
    assert!(out.stdout.contains("REGRESSION"), "{}", out.text());
    // The param changed the leg's spec, and the trend says so.
    assert!(out.stdout.contains("changed: spec"), "{}", out.text());
}
