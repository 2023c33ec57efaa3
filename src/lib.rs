//! kitt: benchmark LLM inference engines from declarative, versioned YAML suites.

pub mod bench;
pub mod cli;
pub mod engine;
pub mod exit;
pub mod registry;
pub mod report;
pub mod suite;
