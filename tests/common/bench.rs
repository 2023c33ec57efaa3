//! Running benchmarks against engines started for real, for the benchmark tests.
#![allow(dead_code)]
// Tests print with the std macros; the output edge rule is for kitt itself.
#![allow(clippy::disallowed_macros)]

use std::sync::Arc;
use std::time::Duration;

use kitt::bench::{BenchContext, BenchError, BenchResult};
use kitt::engine::RunningEngine;
use kitt::engine::runtime::StartContext;
use kitt::suite::model::{EngineSpec, Sampling, Warmup};
use serde_json::Value;

/// Starts an engine from its spec, with logs in `dir`.
pub async fn start(spec: &EngineSpec, dir: &std::path::Path) -> RunningEngine {
    kitt::process::set_executable(env!("CARGO_BIN_EXE_kitt"));
    let ctx = StartContext {
        run_dir: dir.to_path_buf(),
        default_startup_timeout: Duration::from_secs(120),
        ..StartContext::new_run()
    };
    kitt::engine::initialize(&kitt::assemble::builtins(), "engine", spec, &ctx)
        .await
        .unwrap_or_else(|e| panic!("engine `{}` starts: {e}", spec.uses))
}

/// A simulator engine with this config.
pub fn simulator(config: Value) -> EngineSpec {
    EngineSpec {
        uses: "simulator".into(),
        config: serde_json::from_value(config).expect("config object"),
        ..EngineSpec::default()
    }
}

/// Runs benchmark `name` with `params` and `warmup` requests; datasets relative to `base`.
pub async fn run_with(
    engine: &RunningEngine,
    name: &str,
    params: Value,
    warmup: u32,
    base: &std::path::Path,
) -> Result<BenchResult, BenchError> {
    let registry = kitt::assemble::builtins();
    let entry = registry.benchmarks.get(name).expect("registered benchmark");
    let ctx = BenchContext {
        engine,
        sampling: Sampling::default(),
        warmup: Warmup {
            requests: Some(warmup),
            duration: None,
        },
        base_dir: base.to_path_buf(),
        cache_dir: base.join("cache"),
        progress: Arc::new(|line: &str| eprintln!("{line}")),
        tally: Arc::default(),
        run_dir: base.join("run"),
        telemetry: Default::default(),
        salt: 0x5A17,
    };
    kitt::bench::run(entry, &ctx, &params).await
}

/// Runs benchmark `name` with `params` and these telemetry settings, no warmup.
pub async fn run_with_telemetry(
    engine: &RunningEngine,
    name: &str,
    params: Value,
    telemetry: kitt::telemetry::Settings,
) -> BenchResult {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = kitt::assemble::builtins();
    let entry = registry.benchmarks.get(name).expect("registered benchmark");
    let ctx = BenchContext {
        engine,
        sampling: Sampling::default(),
        warmup: Warmup::default(),
        base_dir: dir.path().to_path_buf(),
        cache_dir: dir.path().join("cache"),
        progress: Arc::new(|line: &str| eprintln!("{line}")),
        tally: Arc::default(),
        run_dir: dir.path().join("run"),
        telemetry,
        salt: 0x5A17,
    };
    kitt::bench::run(entry, &ctx, &params)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs benchmark `name` without warmup, datasets relative to the crate root.
pub async fn run(engine: &RunningEngine, name: &str, params: Value) -> BenchResult {
    let base = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    run_with(engine, name, params, 0, &base)
        .await
        .unwrap_or_else(|e| panic!("{name} runs: {e}"))
}

/// A metric that must be there.
pub fn metric(r: &BenchResult, name: &str) -> f64 {
    r.metric(name)
        .unwrap_or_else(|| panic!("{} reports no `{name}`: {:?}", r.test_name, r.metrics))
}

/// Asserts `value` lies in `[low, high]`, naming it.
pub fn within(name: &str, value: f64, low: f64, high: f64) {
    assert!(
        (low..=high).contains(&value),
        "{name} = {value}, expected within [{low}, {high}]"
    );
}
