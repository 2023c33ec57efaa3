//! kitt: benchmark LLM inference engines from declarative, versioned YAML suites.

pub mod assemble;
pub mod bench;
pub mod cli;
pub mod compare;
pub mod engine;
pub mod exit;
pub mod fingerprint;
pub mod foreign;
pub mod fsio;
pub mod output;
pub mod paths;
pub mod plugin;
pub mod process;
pub mod redact;
pub mod registry;
pub mod report;
pub mod runner;
pub mod seed;
pub mod store;
pub mod suite;
pub mod telemetry;
