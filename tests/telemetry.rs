//! Telemetry beside the client's measurements: the simulator's /metrics read over a load leg
//! and held against the client's counts, a metrics page that stalls, lies or disappears
//! (the leg completes, the gap is counted), and the real llama-server with `--metrics`.

mod common;
#[path = "common/bench.rs"]
mod harness;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use harness::{metric, run, simulator, start};
use kitt::bench::BenchResult;
use kitt::suite::model::{EngineSpec, RuntimeMode};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

fn has(r: &BenchResult, name: &str) -> bool {
    r.metric(name).is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulator_load_leg_records_the_servers_account_and_it_matches_the_clients() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(
        &simulator(
            json!({"ttft": "40ms", "itl": "5ms", "max_concurrency": 2, "kv_cache_tokens": 1000}),
        ),
        dir.path(),
    )
    .await;
    let r = run(
        &engine,
        "load",
        json!({"concurrency": 4, "requests": 12, "input_tokens": 20, "output_tokens": 10}),
    )
    .await;
    assert!(r.passed, "{:?}", r.errors);
    // Every token and every prompt token the client counted, the server counted too.
    assert_eq!(metric(&r, "client_generation_tokens"), 120.0);
    assert_eq!(metric(&r, "server_generation_tokens"), 120.0);
    assert_eq!(metric(&r, "generation_tokens_server_minus_client"), 0.0);
    assert_eq!(
        metric(&r, "server_prompt_tokens"),
        metric(&r, "client_prompt_tokens")
    );
    assert!(metric(&r, "client_prompt_tokens") >= 12.0 * 20.0);
    assert_eq!(metric(&r, "server_preemptions"), 0.0);
    assert_eq!(metric(&r, "telemetry_scrape_failures"), 0.0);
    assert!(metric(&r, "telemetry_scrapes") >= 2.0);
    // Two slots: never more than two running, and the windows' ends see nothing running.
    assert!(metric(&r, "server_running_requests_max") <= 2.0);
    assert!(metric(&r, "kv_cache_usage_max") <= 1.0);
    // The server's TTFT is from arrival to first token: the configured 40 ms plus queueing;
    // the client's adds the way there and back, so the difference is small and positive.
    let server_ttft = metric(&r, "server_ttft_mean_ms");
    assert!(server_ttft >= 40.0, "{server_ttft}");
    let overhead = metric(&r, "ttft_client_minus_server_mean_ms");
    assert!((0.0..20.0).contains(&overhead), "{overhead}");
    // The series are kept for the store: start and end samples at least.
    let names: Vec<&str> = r.telemetry_series.iter().map(|s| s.name.as_str()).collect();
    for name in [
        "server_running_requests",
        "server_waiting_requests",
        "kv_cache_usage",
        "client_in_flight_requests",
    ] {
        assert!(names.contains(&name), "{names:?}");
    }
    assert!(r.telemetry_series.iter().all(|s| s.points.len() >= 2));
    assert_eq!(
        r.details["telemetry"]["server_metrics"],
        json!(format!("{}/metrics", engine.base_url))
    );
    // The simulator computes on the CPU: its energy is RAPL's where the host has it, and
    // where not, the result says so (these build machines have no powercap zones).
    if std::path::Path::new("/sys/class/powercap/intel-rapl:0/energy_uj").exists() {
        assert!(
            r.details["telemetry"]["power"] == json!("RAPL (CPU packages)")
                || r.details["telemetry"]["missing"]
                    .to_string()
                    .contains("RAPL"),
            "{}",
            r.details["telemetry"]
        );
    } else {
        let missing = r.details["telemetry"]["missing"].to_string();
        assert!(
            missing.contains("no power readings: GPU: the engine runs on the CPU; CPU RAPL:"),
            "{missing}"
        );
        assert!(r.metrics.iter().all(|m| m.name != "energy_j"));
    }
    engine.cleanup().await;
}

/// How the proxy answers `/metrics`.
#[derive(Clone, Copy)]
enum Page {
    /// Never answers.
    Stalls,
    /// Answers 200 with text that is no exposition format.
    Garbage,
    /// Passes the first `n` scrapes through, then closes every connection at once.
    GoneAfter(u64),
}

/// Answers 200 with `body` and closes.
async fn answer(socket: &mut TcpStream, body: &str) {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(body.as_bytes()).await;
}

/// A loopback proxy in front of `upstream`: everything passes through but `/metrics`.
async fn proxy(upstream: String, page: Page) -> String {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = upstream.trim_start_matches("http://").to_string();
    let scrapes = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let scrapes = scrapes.clone();
            tokio::spawn(async move {
                let Some(request) = common::read_request(&mut socket).await else {
                    return;
                };
                if request.starts_with(b"GET /metrics") {
                    let n = scrapes.fetch_add(1, Ordering::SeqCst);
                    match page {
                        Page::Stalls => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                        Page::Garbage => {
                            answer(&mut socket, "{\"this is\": \"not prometheus\"}\n<html>").await;
                            return;
                        }
                        Page::GoneAfter(k) if n >= k => return,
                        Page::GoneAfter(_) => {
                            // Served here, one page a connection, so each scrape is counted.
                            let body = reqwest::get(format!("http://{upstream}/metrics"))
                                .await
                                .unwrap()
                                .text()
                                .await
                                .unwrap();
                            answer(&mut socket, &body).await;
                            return;
                        }
                    }
                }
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                if server.write_all(&request).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut socket, &mut server).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_page_that_stalls_lies_or_disappears_leaves_a_counted_gap_not_a_failed_leg() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(
        &simulator(json!({"ttft": "20ms", "itl": "5ms"})),
        dir.path(),
    )
    .await;
    for (page, what) in [
        (Page::Stalls, "no answer within"),
        (Page::Garbage, "line 1"),
        (Page::GoneAfter(2), "http://"),
    ] {
        let url = proxy(sim.base_url.clone(), page).await;
        let spec = EngineSpec {
            uses: "vllm".into(),
            mode: Some(RuntimeMode::External),
            url: Some(url),
            model: Some("sim".into()),
            ..EngineSpec::default()
        };
        let engine = start(&spec, dir.path()).await;
        let began = Instant::now();
        let mut ctx_params = json!({"concurrency": 2, "duration": "2500ms", "output_tokens": 4});
        ctx_params["input_tokens"] = json!(8);
        let r = harness::run_with_telemetry(
            &engine,
            "load",
            ctx_params,
            kitt::telemetry::Settings {
                interval: Duration::from_millis(200),
                server: true,
                gpu: true,
                scrape: Vec::new(),
            },
        )
        .await;
        let took = began.elapsed();
        assert!(r.passed, "{what}: {:?}", r.errors);
        assert!(metric(&r, "requests") > 0.0);
        assert!(metric(&r, "telemetry_scrape_failures") >= 1.0, "{what}");
        let errors = r.details["telemetry"]["scrape_errors"].to_string();
        assert!(errors.contains(what), "{what}: {errors}");
        // Each scrape is bounded: the leg is its 2.5 s plus the closing scrape's 2 s at most.
        assert!(took < Duration::from_secs(8), "{what}: took {took:?}");
        // The client's account is there whatever the server's page did.
        assert!(metric(&r, "client_generation_tokens") > 0.0);
        if matches!(page, Page::GoneAfter(_)) {
            // The opening scrape worked and the closing one did not: no counters.
            assert!(!has(&r, "server_generation_tokens"));
            assert!(
                r.details["telemetry"]["missing"]
                    .to_string()
                    .contains("closing scrape")
            );
        }
        engine.cleanup().await;
    }
    sim.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_off_or_an_engine_without_a_page_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(&simulator(json!({"ttft": "5ms", "itl": "1ms"})), dir.path()).await;
    let r = harness::run_with_telemetry(
        &engine,
        "load",
        json!({"concurrency": 1, "requests": 3, "output_tokens": 2}),
        kitt::telemetry::Settings {
            interval: Duration::from_millis(100),
            server: false,
            gpu: true,
            scrape: Vec::new(),
        },
    )
    .await;
    assert!(r.passed);
    assert!(!has(&r, "server_generation_tokens"));
    assert_eq!(metric(&r, "client_generation_tokens"), 6.0);
    assert!(
        r.details["telemetry"]["missing"]
            .to_string()
            .contains("server: false")
    );
    engine.cleanup().await;

    // llama.cpp without `metrics: true` serves no page, and the result says how to get one.
    let spec = common::llama_spec(&[]);
    let names = kitt::engine::server_metrics::LLAMA_CPP;
    assert_eq!(names.enabled_by, Some("metrics"));
    assert!(!spec.config.contains_key("metrics"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_server_with_metrics_reports_running_requests_and_the_same_token_count() {
    if common::skipped("llama-server") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut spec = common::llama_spec(&[]);
    spec.config.insert("metrics".into(), json!(true));
    spec.config.insert("parallel".into(), json!(2));
    let engine = start(&spec, dir.path()).await;
    let r = harness::run_with_telemetry(
        &engine,
        "load",
        json!({"concurrency": 3, "requests": 6, "input_tokens": 16, "output_tokens": 8}),
        kitt::telemetry::Settings {
            interval: Duration::from_millis(100),
            server: true,
            gpu: true,
            scrape: Vec::new(),
        },
    )
    .await;
    assert!(r.passed, "{:?}", r.errors);
    assert_eq!(metric(&r, "telemetry_scrape_failures"), 0.0);
    let client = metric(&r, "client_generation_tokens");
    assert!(client > 0.0);
    assert_eq!(
        metric(&r, "server_generation_tokens"),
        client,
        "{:?}",
        r.details["telemetry"]
    );
    assert_eq!(metric(&r, "generation_tokens_server_minus_client"), 0.0);
    // Prompt tokens the server read (computed and reused from its cache) are the client's.
    assert_eq!(
        metric(&r, "server_prompt_tokens"),
        metric(&r, "client_prompt_tokens")
    );
    let hit_rate = metric(&r, "prefix_cache_hit_rate");
    assert!((0.0..=1.0).contains(&hit_rate), "{hit_rate}");
    // Three clients on two slots: the server ran at most two and had the third waiting.
    let running = metric(&r, "server_running_requests_max");
    assert!((1.0..=2.0).contains(&running), "{running}");
    assert!(has(&r, "server_waiting_requests_max"));
    assert!(metric(&r, "client_in_flight_requests_max") >= 2.0);
    // llama-server has no TTFT histogram, and the result says which gauges it lacks.
    assert!(!has(&r, "ttft_client_minus_server_mean_ms"));
    assert!(
        r.details["telemetry"]["missing"]
            .to_string()
            .contains("kv_cache_usage")
    );
    engine.cleanup().await;
}

#[test]
fn kitt_apply_asserts_on_telemetry_stores_its_series_and_validate_refuses_a_short_interval() {
    let env = common::binary::Env::new();
    let suite = "apiVersion: kitt/v1\nkind: Suite\nmetadata: {name: tele, version: 1.0.0}\n\
         telemetry: {interval: 5s}\n\
         engines:\n  sim: {uses: simulator, config: {ttft: 20ms, itl: 2ms, max_concurrency: 2}, telemetry: {interval: 1s}}\n\
         nodes:\n  - id: load\n    benchmark: load\n    engine: sim\n    telemetry: {interval: 100ms}\n\
         \x20   params: {concurrency: 4, duration: 1500ms, output_tokens: 8}\n\
         \x20   assert: {generation_tokens_server_minus_client: {min: 0, max: 0}, server_running_requests_max: {max: 2}}\n";
    let path = env.write("tele.yaml", suite);
    let run = env.kitt(&["apply", path.to_str().unwrap()]);
    assert!(run.status.success(), "{}", run.text());
    let store = kitt::store::Store::open_existing(&env.store()).unwrap();
    let id = store.runs(None, 1).unwrap()[0].id.clone();
    let series = store.series(&id, "load").unwrap();
    let running = series
        .iter()
        .find(|s| s.name == "server_running_requests")
        .expect("the running series is stored");
    // The node's 100 ms interval won over the engine's 1 s and the suite's 5 s: a 1.5 s leg
    // has about 15 samples, far more than the two ends alone.
    assert!(running.points.len() >= 8, "{:?}", running.points);
    assert!(running.points.iter().all(|(_, v)| *v <= 2.0));
    assert!(running.points.windows(2).all(|w| w[0].0 < w[1].0));
    let metrics = store.metrics(&id, "load").unwrap();
    assert!(
        metrics
            .iter()
            .any(|m| m.name == "kv_cache_usage_max" && m.unit == "ratio")
    );

    let bad = env.write(
        "bad.yaml",
        suite.replace(
            "telemetry: {interval: 100ms}",
            "telemetry: {interval: 50ms}",
        ),
    );
    let out = env.kitt(&["validate", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(out.text().contains("bad.yaml:11:"), "{}", out.text());
    assert!(out.text().contains("below the shortest"), "{}", out.text());
    // A metrics vocabulary names an engine's page: on a node it is refused at its key.
    let misplaced = env.write(
        "misplaced.yaml",
        suite.replace(
            "telemetry: {interval: 100ms}",
            "telemetry: {interval: 100ms, metrics: vllm}",
        ),
    );
    let out = env.kitt(&["validate", misplaced.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(out.text().contains("misplaced.yaml:11:"), "{}", out.text());
    assert!(
        out.text().contains("belongs under that engine"),
        "{}",
        out.text()
    );

    // Two extra pages may not record series whose figures would share a name.
    let dup = env.write(
        "dup.yaml",
        suite.replace(
            "telemetry: {interval: 1s}",
            "telemetry: {interval: 1s, scrape: [{url: 'http://127.0.0.1:9/m', series: {gpu_power: lower}}, {url: 'http://127.0.0.1:8/m', series: {GPU_POWER: lower}}]}",
        ),
    );
    let out = env.kitt(&["validate", dup.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(out.text().contains("dup.yaml:6:"), "{}", out.text());
    assert!(
        out.text().contains("recorded from two pages"),
        "{}",
        out.text()
    );

    // `results show` lists the telemetry figures; the HTML report draws the leg's chart.
    let show = env.kitt(&["results", "show", "last"]);
    assert!(show.status.success(), "{}", show.text());
    for name in [
        "server_running_requests_max",
        "client_in_flight_requests_mean",
        "telemetry_scrapes",
    ] {
        assert!(show.text().contains(name), "{name}: {}", show.text());
    }
    let html = env.path("report.html");
    let report = env.kitt(&[
        "report",
        "last",
        "--reporter",
        "html",
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(report.status.success(), "{}", report.text());
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.contains("class=\"telemetry-chart\" data-node=\"load\""),
        "{html}"
    );
    assert!(html.contains("data-series=\"server_running_requests\""));
}

/// A DCGM-like exporter on loopback: an energy counter that grows by 1000 with every
/// scrape, and a power gauge on two GPUs (250 W and 50 W).
async fn exporter() -> String {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scrapes = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let n = scrapes.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = [0u8; 1024];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut request).await;
                let body = format!(
                    "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n\
                     DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{gpu=\"0\"}} {}\n\
                     # TYPE DCGM_FI_DEV_POWER_USAGE gauge\n\
                     DCGM_FI_DEV_POWER_USAGE{{gpu=\"0\"}} 250\n\
                     DCGM_FI_DEV_POWER_USAGE{{gpu=\"1\"}} 50\n",
                    1000 * n
                );
                answer(&mut socket, &body).await;
            });
        }
    });
    format!("http://{addr}/metrics")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extra_scrape_page_records_its_named_series_as_figures_and_series() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(
        &simulator(json!({"ttft": "20ms", "itl": "5ms"})),
        dir.path(),
    )
    .await;
    let target: kitt::suite::model::ScrapeTarget = serde_json::from_value(json!({
        "url": exporter().await,
        "series": {
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": "lower",
            "DCGM_FI_DEV_POWER_USAGE": "lower",
            "DCGM_FI_DEV_GPU_UTIL": "higher"
        }
    }))
    .unwrap();
    let r = harness::run_with_telemetry(
        &engine,
        "load",
        json!({"concurrency": 2, "duration": "1s", "output_tokens": 4}),
        kitt::telemetry::Settings {
            interval: Duration::from_millis(100),
            scrape: vec![target],
            ..Default::default()
        },
    )
    .await;
    assert!(r.passed, "{:?}", r.errors);
    // The page was read at both ends and about every 100 ms between; the counter grew by
    // 1000 a scrape in between its two end readings.
    let power = r
        .telemetry_series
        .iter()
        .find(|s| s.name == "scrape_dcgm_fi_dev_power_usage")
        .expect("the power series");
    let scrapes = power.points.len() as f64;
    assert!(scrapes >= 5.0, "{:?}", power.points);
    assert_eq!(
        metric(&r, "scrape_dcgm_fi_dev_total_energy_consumption_increase"),
        1000.0 * (scrapes - 1.0)
    );
    // Label sets are added together: 250 W + 50 W in every sample.
    assert_eq!(metric(&r, "scrape_dcgm_fi_dev_power_usage_mean"), 300.0);
    assert_eq!(metric(&r, "scrape_dcgm_fi_dev_power_usage_max"), 300.0);
    assert!(power.points.iter().all(|p| p.1 == 300.0));
    // A series the page lacks is named in the result, not invented.
    assert!(!has(&r, "scrape_dcgm_fi_dev_gpu_util_mean"));
    assert!(
        r.details["telemetry"]["missing"]
            .to_string()
            .contains("no sample has `DCGM_FI_DEV_GPU_UTIL`"),
        "{}",
        r.details["telemetry"]
    );
    engine.cleanup().await;
}

/// The simulator's prefix cache: a prompt's leading 16-word blocks seen before skip their
/// prefill (1 ms a token here), and `/metrics` counts the tokens looked up and served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_prefix_cache_skips_the_prefill_of_cached_blocks_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let engine = start(
        &simulator(json!({"ttft": "10ms", "itl": "1ms", "prefill": "1000ms", "output_tokens": 2})),
        dir.path(),
    )
    .await;
    let words = |seed: u64, n: u32| kitt::bench::workload::synthetic_text(n, seed);
    let a = words(1, 320); // 20 blocks
    let b = format!(
        "{} {}",
        a.split(' ').take(160).collect::<Vec<_>>().join(" "),
        words(2, 160)
    );
    let ttft = async |prompt: &str| -> f64 {
        let r = engine
            .generate(&kitt::engine::generation::GenerationRequest::chat(prompt))
            .await
            .unwrap();
        r.ttft.unwrap().as_secs_f64() * 1e3
    };
    // Cold: 10 ms + 320 tokens of prefill; again: all 20 blocks cached; b shares 10 blocks.
    for (prompt, expected) in [(&a, 330.0), (&a, 10.0), (&b, 170.0)] {
        let got = ttft(prompt).await;
        assert!(
            (expected..expected + 30.0).contains(&got),
            "expected {expected} ms, got {got}"
        );
    }
    let http = reqwest::Client::new();
    let page = kitt::engine::scrape::scrape(
        &http,
        &format!("{}/metrics", engine.base_url),
        Duration::from_secs(2),
        kitt::engine::prometheus::Limits::default(),
    )
    .await
    .unwrap();
    let total = |name| kitt::telemetry::samples::total(&page, name).unwrap();
    assert_eq!(total("vllm:prefix_cache_queries_total"), 960.0);
    assert_eq!(total("vllm:prefix_cache_hits_total"), 320.0 + 160.0);
    engine.cleanup().await;
}

/// No accidental cache hits (vllm#54227): two legs with the same seed, and a sweep's points,
/// send prompts no prefix cache can serve from one another; a second run of the same leg in
/// one process is set apart by its salt too.
#[test]
fn legs_and_sweep_points_of_one_run_get_no_prefix_cache_hits_from_each_other() {
    let env = common::binary::Env::new();
    let suite = "apiVersion: kitt/v1\nkind: Suite\nmetadata: {name: salt, version: 1.0.0}\n\
         engines:\n  sim: {uses: simulator, config: {ttft: 2ms, itl: 1ms, prefix_block_tokens: 4}}\n\
         nodes:\n\
         \x20 - id: first\n    benchmark: load\n    engine: sim\n\
         \x20   params: {concurrency: 2, requests: 20, input_tokens: 40, output_tokens: 2, seed: 7}\n\
         \x20 - id: again\n    benchmark: load\n    engine: sim\n    needs: [first]\n\
         \x20   params: {concurrency: 2, requests: 20, input_tokens: 40, output_tokens: 2, seed: 7}\n\
         \x20   assert: {prefix_cache_hit_tokens: {max: 0}}\n\
         \x20 - id: sweep\n    benchmark: sweep\n    engine: sim\n    needs: [again]\n\
         \x20   params: {over: concurrency, values: [1, 2, 4], requests: 12, input_tokens: 40, output_tokens: 2, seed: 7}\n\
         \x20   assert: {prefix_cache_hit_tokens: {max: 0}, prefix_cache_hit_rate: {max: 0}}\n";
    let path = env.write("salt.yaml", suite);
    let run = env.kitt(&["apply", path.to_str().unwrap()]);
    assert!(run.status.success(), "{}", run.text());
    let store = kitt::store::Store::open_existing(&env.store()).unwrap();
    let id = store.runs(None, 1).unwrap()[0].id.clone();
    let value = |leg: &str, name: &str| {
        store
            .metrics(&id, leg)
            .unwrap()
            .into_iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("{leg}: no {name}"))
            .value
    };
    // The cache was looked up for every prompt token, and served none of them.
    for leg in ["again", "sweep"] {
        assert!(value(leg, "server_prompt_tokens") >= 12.0 * 40.0, "{leg}");
        assert_eq!(value(leg, "prefix_cache_hit_tokens"), 0.0, "{leg}");
    }
}
