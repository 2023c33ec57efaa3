//! What a run is given besides its plan, and what it comes to.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::record::SummaryRow;
use crate::bench::BenchResult;
use crate::engine::runtime::StartContext;
use crate::registry::Registry;
use crate::store::RunStatus;

/// A leg that is not run in this run, with what an earlier run left.
#[derive(Debug, Clone)]
pub struct Carried {
    pub outputs: Map<String, Value>,
    /// The run it came from.
    pub from: String,
}

/// Everything a run needs besides its plan.
pub struct Setup {
    pub run_id: String,
    pub suite: String,
    pub registry: Arc<Registry>,
    /// Relative dataset paths start here.
    pub base_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub start: StartContext,
    /// Legs not to run, by index.
    pub carried: HashMap<usize, Carried>,
    /// GPUs on this machine (0: none seen, no limit applied).
    pub gpus: usize,
    /// Where a pointer into a node's params is written in the suite.
    pub locate: super::Locator,
    /// Keep each leg's whole benchmark result in `Finished::results` (`kitt test run`).
    pub keep_results: bool,
}

/// How a run ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finished {
    pub run_id: String,
    /// Succeeded, failed or interrupted; failed whenever a result could not be stored.
    pub status: RunStatus,
    /// Store writes that failed (a full disk): what was measured but is not in the store.
    pub store_errors: Vec<String>,
    pub rows: Vec<SummaryRow>,
    /// `leg: metric measured vs bound`.
    pub breaches: Vec<String>,
    /// `leg: first error`.
    pub failures: Vec<String>,
    /// Each leg's whole result, by leg id, when asked for.
    #[serde(skip)]
    pub results: Vec<(String, Result<BenchResult, String>)>,
    /// When each leg started and ended (Unix seconds), by leg id, in the order they ended.
    #[serde(skip)]
    pub timeline: Vec<(String, f64, f64)>,
    /// An engine did not start for want of something it needs (exit 69 for `kitt test run`).
    pub engines_unavailable: bool,
}
