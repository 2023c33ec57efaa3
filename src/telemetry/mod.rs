//! Telemetry beside the client's measurements: the server's Prometheus metrics over a leg's
//! measured window (one scrape at each end, gauges sampled at an interval between), the
//! client's own in-flight count on the same clock, the figures that cross-check the two, and
//! the power of the GPUs (or CPU) the engine computes on, with energy per generated token.

pub mod gpu;
pub mod power;
pub mod rapl;
pub mod sampler;
pub mod samples;
pub mod summary;

use std::time::Duration;

use serde::Serialize;

pub use sampler::Session;

use crate::registry::Direction;

/// What every figure of an extra scrape page starts with: `scrape_<series>_mean`.
pub const SCRAPE_PREFIX: &str = "scrape_";

/// The shortest sampling interval.
pub const MIN_INTERVAL: Duration = crate::suite::model::MIN_TELEMETRY_INTERVAL;

/// What a leg records.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Between two samples of the gauges (at least [`MIN_INTERVAL`]).
    pub interval: Duration,
    /// Whether the engine's metrics page is scraped.
    pub server: bool,
    /// Whether the engine's GPUs (or the CPU's RAPL counters) are read.
    pub gpu: bool,
    /// More pages to record, and which of their series.
    pub scrape: Vec<crate::suite::model::ScrapeTarget>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            interval: Duration::from_secs(1),
            server: true,
            gpu: true,
            scrape: Vec::new(),
        }
    }
}

/// One figure over a leg's window, with its unit and which way is better.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub direction: Direction,
}

/// Values of one quantity over a leg, on the leg's clock (seconds since its window began).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub name: String,
    pub unit: &'static str,
    pub points: Vec<(f64, f64)>,
}

/// What telemetry recorded for one leg.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LegTelemetry {
    pub figures: Vec<Figure>,
    pub series: Vec<Series>,
    /// Where it came from, what is missing and why, the scrapes that failed.
    pub notes: serde_json::Map<String, serde_json::Value>,
}

/// Every figure telemetry may report (name, unit, whether higher is better), for the
/// benchmark catalog: asserts, compare and `kitt test show` know them.
pub fn figure_names() -> Vec<(String, &'static str, bool)> {
    let mut names = Vec::new();
    for (gauge, unit, higher) in samples::GAUGES {
        for stat in ["mean", "p50", "p99", "max"] {
            names.push((format!("{gauge}_{stat}"), unit, higher));
        }
    }
    for (histogram, _) in summary::HISTOGRAMS {
        for stat in ["mean", "p50", "p90", "p99"] {
            names.push((format!("{histogram}_{stat}_ms"), "ms", false));
        }
    }
    for (name, unit, higher) in summary::SCALARS.into_iter().chain(power::FIGURES) {
        names.push((name.to_string(), unit, higher));
    }
    names
}
