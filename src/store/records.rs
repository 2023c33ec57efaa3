//! The rows of the store, as kitt reads and writes them.

use serde::Serialize;
use serde_json::Value;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Its owner is working on it.
    Running,
    Succeeded,
    Failed,
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
    /// Stored as running, but its owner is gone (killed, crashed, power lost); resumable.
    Abandoned,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Abandoned => "abandoned",
        }
    }

    /// The status stored as `text` (unknown text reads as failed).
    pub fn parse(text: &str) -> RunStatus {
        match text {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "interrupted" => RunStatus::Interrupted,
            "abandoned" => RunStatus::Abandoned,
            _ => RunStatus::Failed,
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a leg stands, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Running,
    Succeeded,
    Failed,
    /// Not run: its run_if did not hold, or fail_fast after a failed sibling.
    Skipped,
    /// Stopped or never started because the run was interrupted.
    Cancelled,
    /// Not run: its result was taken from an earlier run (resume, only-changed, only).
    Reused,
    /// Stored as running in a run whose owner is gone (read only, never written).
    Abandoned,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Running => "running",
            NodeStatus::Succeeded => "succeeded",
            NodeStatus::Failed => "failed",
            NodeStatus::Skipped => "skipped",
            NodeStatus::Cancelled => "cancelled",
            NodeStatus::Reused => "reused",
            NodeStatus::Abandoned => "abandoned",
        }
    }

    /// The status stored as `text` (unknown text reads as failed).
    pub fn parse(text: &str) -> NodeStatus {
        match text {
            "running" => NodeStatus::Running,
            "succeeded" => NodeStatus::Succeeded,
            "skipped" => NodeStatus::Skipped,
            "cancelled" => NodeStatus::Cancelled,
            "reused" => NodeStatus::Reused,
            "abandoned" => NodeStatus::Abandoned,
            _ => NodeStatus::Failed,
        }
    }

    /// Whether its result counts as good (measured now, or carried from a good earlier run).
    pub fn ok(self) -> bool {
        matches!(self, NodeStatus::Succeeded | NodeStatus::Reused)
    }
}

impl std::fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `kitt apply`.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub id: String,
    pub suite: String,
    pub suite_version: String,
    pub suite_path: String,
    /// sha256 of the suite file's bytes (short hex).
    pub digest: String,
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    /// Unix seconds.
    pub started_at: f64,
    pub ended_at: Option<f64>,
    /// As stored; a running run whose owner is gone reads as abandoned.
    pub status: RunStatus,
    pub kitt_version: String,
    pub fingerprint: String,
    pub fingerprint_summary: String,
    /// The suite params the run used.
    pub params: Value,
    /// The process working on the run (none in stores written before owners were kept).
    #[serde(skip)]
    pub owner: Option<crate::process::owner::Owner>,
    /// When the owner last said it was alive (Unix seconds).
    #[serde(skip)]
    pub heartbeat_at: Option<f64>,
}

/// One leg of a run: a benchmark on an engine with its rendered params.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRecord {
    pub run_id: String,
    /// `node` or `node[axis=value]`.
    pub leg: String,
    pub node: String,
    pub benchmark: String,
    pub benchmark_version: String,
    pub engine: String,
    pub engine_uses: String,
    pub image: Option<String>,
    pub image_digest: Option<String>,
    pub model: Option<String>,
    pub params: Value,
    pub spec_hash: String,
    pub status: NodeStatus,
    pub attempts: u32,
    pub errors: Vec<String>,
    pub outputs: Value,
    pub details: Value,
    pub started_at: Option<f64>,
    pub ended_at: Option<f64>,
    pub seconds: Option<f64>,
}

/// One telemetry series of a leg: (seconds since its window opened, value) points.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SeriesRecord {
    pub name: String,
    pub unit: String,
    pub points: Vec<(f64, f64)>,
}

/// A measured value.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct MetricRecord {
    pub name: String,
    pub value: f64,
    pub unit: String,
    /// `higher` or `lower` (is better).
    pub direction: crate::registry::Direction,
}

/// One assert's verdict.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AssertRecord {
    pub metric: String,
    /// The bound as written in the suite.
    pub bound: Value,
    pub measured: Option<f64>,
    /// The baseline's value, for ratio bounds.
    pub baseline: Option<f64>,
    pub passed: bool,
    /// Measured vs bound, in words.
    pub message: String,
}
