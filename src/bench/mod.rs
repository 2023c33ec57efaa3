//! Benchmarks: the contract (run = warmup + execute), the load generator and statistics,
//! datasets, and the built-in performance and quality benchmarks.

pub mod catalog;
pub mod dataset;
pub mod hf;
pub mod loadgen;
pub mod pacer;
pub mod params;
pub mod performance;
pub mod plugin;
pub mod quality;
pub mod samples;
pub mod schedule;
pub mod stats;
pub mod trace;
pub mod workload;

mod contract;
mod run;

pub use contract::{BenchContext, BenchError, BenchResult, Metric, Outcome, Tally, WarmupSummary};
pub use run::{Driver, check_params, run};
