//! Reporters over a fixed stored run: a snapshot of every format, the JUnit parsed back, a
//! run with a failed node, a breached assert and a skipped node still rendering, and template
//! errors that name the template, the line and the problem.
// Tests print with the std macros; the output edge rule is for kitt itself.
#![allow(clippy::disallowed_macros)]

mod common;

use kitt::report::context::Report;
use kitt::report::render;
use kitt::store::{AssertRecord, MetricRecord, NodeRecord, RunRecord, SeriesRecord, Store};
use serde_json::json;

fn metric(name: &str, value: f64, unit: &str, direction: &str) -> MetricRecord {
    MetricRecord {
        name: name.into(),
        value,
        unit: unit.into(),
        direction: if direction == "higher" {
            kitt::registry::Direction::Higher
        } else {
            kitt::registry::Direction::Lower
        },
    }
}

fn node(leg: &str, benchmark: &str, status: &str, errors: &[&str]) -> NodeRecord {
    NodeRecord {
        run_id: "1700000000-1-0".into(),
        leg: leg.into(),
        node: leg.split('[').next().unwrap().into(),
        benchmark: benchmark.into(),
        benchmark_version: "1.0.0".into(),
        engine: "sim".into(),
        engine_uses: "simulator".into(),
        image: None,
        image_digest: None,
        model: Some("tiny".into()),
        params: json!({"requests": 10}),
        spec_hash: "0123456789abcdef".into(),
        status: kitt::store::NodeStatus::parse(status),
        attempts: 1,
        errors: errors.iter().map(|e| e.to_string()).collect(),
        outputs: json!({}),
        details: json!({}),
        started_at: Some(1_700_000_001.0),
        ended_at: Some(1_700_000_003.5),
        seconds: Some(2.5),
    }
}

/// A stored run with a passing latency node, a failing load node (breached assert), a
/// skipped node and a quality node.
fn fixed_report() -> Report {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("kitt.db")).unwrap();
    store
        .insert_run(&RunRecord {
            id: "1700000000-1-0".into(),
            suite: "fixed".into(),
            suite_version: "1.2.3".into(),
            suite_path: "suites/fixed.yaml".into(),
            digest: "00112233aabbccdd".into(),
            git_commit: Some("0123456789abcdef0123".into()),
            git_dirty: Some(false),
            started_at: 1_700_000_000.0,
            ended_at: Some(1_700_000_060.0),
            status: kitt::store::RunStatus::Failed,
            kitt_version: "0.1.0".into(),
            fingerprint: "c0ffee000000".into(),
            fingerprint_summary: "no GPU; 2 × test CPU; 24 GiB; Test OS; kernel 6".into(),
            params: json!({"requests": 10}),
            owner: None,
            heartbeat_at: None,
        })
        .unwrap();
    let latency = [
        metric("ttft_p50_ms", 41.5, "ms", "lower"),
        metric("ttft_p99_ms", 48.25, "ms", "lower"),
        metric("e2e_p50_ms", 290.0, "ms", "lower"),
        metric("e2e_p99_ms", 300.0, "ms", "lower"),
        metric("requests_per_s", 3.45, "requests/s", "higher"),
        metric("output_tokens_per_s", 110.4, "tokens/s", "higher"),
    ];
    let held = AssertRecord {
        metric: "ttft_p99_ms".into(),
        bound: json!({"max": 500}),
        measured: Some(48.25),
        baseline: None,
        passed: true,
        message: "ttft_p99_ms = 48.2500 holds".into(),
    };
    store
        .put_node(
            &node("latency", "latency", "succeeded", &[]),
            &latency,
            &[held],
            None,
        )
        .unwrap();
    // The latency leg's telemetry: three series on one time axis of 2 s.
    let series = |name: &str, unit: &str, points: &[(f64, f64)]| SeriesRecord {
        name: name.into(),
        unit: unit.into(),
        points: points.to_vec(),
    };
    store
        .put_series(
            "1700000000-1-0",
            "latency",
            &[
                series(
                    "client_in_flight_requests",
                    "requests",
                    &[(0.0, 0.0), (1.0, 4.0), (2.0, 2.0)],
                ),
                series(
                    "server_running_requests",
                    "requests",
                    &[(0.0, 0.0), (1.0, 4.0), (2.0, 1.0)],
                ),
                series(
                    "kv_cache_usage",
                    "ratio",
                    &[(0.0, 0.0), (1.0, 0.5), (2.0, 0.25)],
                ),
            ],
        )
        .unwrap();
    let breached = AssertRecord {
        metric: "ttft_p99_ms".into(),
        bound: json!({"max": 100}),
        measured: Some(180.0),
        baseline: None,
        passed: false,
        message: "ttft_p99_ms 180.0000 > max 100 & \"quoted\" <tag>".into(),
    };
    let load = [
        metric("ttft_p50_ms", 120.0, "ms", "lower"),
        metric("ttft_p99_ms", 180.0, "ms", "lower"),
        metric("e2e_p99_ms", 400.0, "ms", "lower"),
        metric("requests_per_s", 20.0, "requests/s", "higher"),
    ];
    store
        .put_node(
            &node(
                "load[concurrency=8]",
                "load",
                "failed",
                &["assert: ttft_p99_ms 180.0000 > max 100"],
            ),
            &load,
            &[breached],
            None,
        )
        .unwrap();
    store
        .put_node(
            &node(
                "after",
                "throughput",
                "skipped",
                &["a needed node did not succeed"],
            ),
            &[],
            &[],
            None,
        )
        .unwrap();
    let mut sweep = node("sweep", "sweep", "succeeded", &[]);
    sweep.params =
        json!({"over": "concurrency", "values": [1, 4, 16], "slo": {"ttft_p99_ms": 100}});
    sweep.outputs = json!({"over": "concurrency", "max_value": 4.0, "client_limited": true});
    sweep.details = json!({"client_limited": ["Concurrency 16: the load loop was busy 97 % of the run: requests waited for the client"], "curve": [
        {"value": 1.0, "passed": true, "breaches": [], "metrics": {"ttft_p99_ms": 45.0, "requests_per_s": 3.0}},
        {"value": 4.0, "passed": true, "breaches": [], "metrics": {"ttft_p99_ms": 80.0, "requests_per_s": 11.0}},
        {"value": 16.0, "passed": false, "breaches": ["ttft_p99_ms 240 (needs <= 100)"], "metrics": {"ttft_p99_ms": 240.0, "requests_per_s": 14.0}}
    ]});
    store
        .put_node(
            &sweep,
            &[metric("max_value", 4.0, "value", "higher")],
            &[],
            None,
        )
        .unwrap();
    let mut other = node("gsm8k-other", "gsm8k", "succeeded", &[]);
    other.engine = "other".into();
    store
        .put_node(
            &other,
            &[
                metric("accuracy", 0.55, "ratio", "higher"),
                metric("accuracy_stderr", 0.035, "ratio", "lower"),
            ],
            &[],
            None,
        )
        .unwrap();
    store
        .put_node(
            &node("gsm8k", "gsm8k", "succeeded", &[]),
            &[
                metric("accuracy", 0.62, "ratio", "higher"),
                metric("accuracy_stderr", 0.034, "ratio", "lower"),
            ],
            &[],
            None,
        )
        .unwrap();
    Report::from_results(&store.run_results("1700000000-1-0").unwrap())
}

#[test]
fn every_format_renders_the_fixed_run() {
    let report = fixed_report();
    for reporter in ["markdown", "html", "json", "junit", "csv"] {
        let text = render::render_builtin(reporter, &report).unwrap_or_else(|e| panic!("{e}"));
        insta::assert_snapshot!(format!("report_{reporter}"), text);
    }
}

#[test]
fn markdown_puts_failures_first() {
    let md = render::render_builtin("markdown", &fixed_report()).unwrap();
    let failed = md
        .find("## Failed asserts")
        .expect("failed asserts section");
    let nodes = md.find("## Nodes").expect("nodes section");
    assert!(failed < nodes);
    assert!(md.starts_with("# ❌ fixed 1.2.3: failed"), "{md}");
    assert!(md.contains("`load[concurrency=8]` | `ttft_p99_ms` | ttft_p99_ms 180.0000 > max 100"));
    // gsm8k ran on two engines: shown side by side.
    let side = md.find("## gsm8k side by side").expect("side by side");
    assert!(md[side..].contains("| `gsm8k-other` | other |"), "{md}");
}

#[test]
fn a_client_limited_node_is_warned_about() {
    let report = fixed_report();
    let warned: Vec<&str> = report
        .nodes
        .iter()
        .filter(|n| !n.warnings.is_empty())
        .map(|n| n.id.as_str())
        .collect();
    assert_eq!(warned, ["sweep"]);
    let md = render::render_builtin("markdown", &report).unwrap();
    let section = md.find("## Warnings").expect("warnings section");
    assert!(section < md.find("## Nodes").unwrap());
    assert!(
        md.contains("- ⚠️ `sweep`: client_limited: kitt's client, not the engine, was the bottleneck, so these figures describe the client (Concurrency 16: the load loop was busy 97 %"),
        "{md}"
    );
    let html = render::render_builtin("html", &report).unwrap();
    assert!(html.contains("<h2>Warnings</h2>"));
    let xml = render::render_builtin("junit", &report).unwrap();
    assert!(
        xml.contains("<system-out>warning: client_limited: kitt&#x27;s client"),
        "{xml}"
    );
}

#[test]
fn junit_parses_back_with_a_case_per_node_and_assert() {
    use quick_xml::events::Event;
    let xml = render::render_builtin("junit", &fixed_report()).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut cases, mut failures, mut skipped) = (0, 0, 0);
    let mut failure_messages = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"testcase" => cases += 1,
                b"failure" => {
                    failures += 1;
                    let attr = e.try_get_attribute("message").unwrap().unwrap();
                    let raw = String::from_utf8_lossy(&attr.value).to_string();
                    failure_messages.push(quick_xml::escape::unescape(&raw).unwrap().to_string());
                }
                b"skipped" => skipped += 1,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    // Six nodes and two asserts.
    assert_eq!(cases, 8);
    // The failed node (a breach, so a failure) and its breached assert.
    assert_eq!(failures, 2);
    assert_eq!(skipped, 1);
    assert!(
        failure_messages
            .iter()
            .any(|m| m.contains("& \"quoted\" <tag>")),
        "{failure_messages:?}"
    );
}

#[test]
fn html_is_self_contained_with_a_series_per_latency_statistic() {
    let html = render::render_builtin("html", &fixed_report()).unwrap();
    assert!(
        !html.contains("http://")
            || html.matches("http://").all(|_| false)
            || html.contains("xmlns=\"http://www.w3.org/2000/svg\"")
    );
    assert!(
        !html.contains("<script src") && !html.contains("<link"),
        "no network"
    );
    // Two timed nodes, three series each.
    assert_eq!(html.matches("class=\"series\"").count(), 6);
    assert!(
        html.contains("&amp; &quot;quoted&quot; &lt;tag&gt;"),
        "escaped"
    );
}

#[test]
fn template_errors_name_the_template_line_and_problem() {
    let report = fixed_report();
    let e = render::render_text("mine.md", "ok\n{{ suite.nosuch }}\n", &report)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mine.md:2") && e.contains("undefined") && e.contains("suite.nosuch"),
        "{e}"
    );
    let e = render::render_text("broken.md", "{% for x in %}", &report)
        .unwrap_err()
        .to_string();
    assert!(e.contains("broken.md") && e.contains("syntax"), "{e}");
    let path = render::output_path("reports/{{ suite.name }}.md", &report).unwrap();
    assert_eq!(path, "reports/fixed.md");
}

#[test]
fn the_step_summary_is_truncated_before_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("summary.md");
    std::fs::write(&file, "x".repeat(1024 * 1024 - 100)).unwrap();
    kitt::report::append_step_summary(&file, &"y".repeat(10_000)).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.len() <= 1024 * 1024, "{}", text.len());
    assert!(text.contains("Truncated"));
}

#[test]
fn the_html_report_renders_in_a_headless_browser() {
    let Some(browser) = common::chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(
        &page,
        render::render_builtin("html", &fixed_report()).unwrap(),
    )
    .unwrap();
    let dom = common::browse(&browser, &page, &["--dump-dom"]);
    let html = String::from_utf8_lossy(&dom.stdout);
    // The browser parsed the chart: one group per series and node (two timed nodes × 3).
    assert_eq!(html.matches("class=\"series\"").count(), 6, "{html}");
    assert!(html.contains("id=\"latency-chart\""));
    // The sweep's curve with its SLO line, and accuracy bars with error bars for both engines.
    assert_eq!(html.matches("class=\"curve-series\"").count(), 1);
    assert_eq!(html.matches("class=\"slo-line\"").count(), 1);
    assert_eq!(html.matches("class=\"error-bar\"").count(), 2);
    // One telemetry chart (only the latency leg sampled), a polyline per series, scaled to
    // the shared 2 s axis (x from 200 to 750) and to each series' own maximum.
    assert_eq!(
        html.matches("class=\"telemetry-chart\"").count(),
        1,
        "{html}"
    );
    assert_eq!(html.matches("class=\"telemetry-series\"").count(), 3);
    assert!(
        html.contains("data-series=\"client_in_flight_requests\" fill=\"none\" stroke=\"#2563eb\" stroke-width=\"1.5\" points=\"200.0,70.0 475.0,15.0 750.0,42.5 \""),
        "{html}"
    );
    assert!(
        html.contains("points=\"200.0,210.0 475.0,155.0 750.0,182.5 \""),
        "{html}"
    );
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(
        !log.contains("Uncaught")
            && !log
                .lines()
                .any(|l| l.contains("CONSOLE") && l.contains("ERROR")),
        "console errors: {log}"
    );
    let shot = dir.path().join("shot.png");
    common::browse(
        &browser,
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,900",
        ],
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.len() > 1000 && png.starts_with(b"\x89PNG"),
        "{} bytes",
        png.len()
    );
}
