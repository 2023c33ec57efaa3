//! Inference engines: the measurement client every engine shares, the runtimes that start and
//! stop them, the built-in engine profiles and the simulator.
//!
//! The engine contract carried over from the original KITT lives in three places, the same for
//! built-in profiles and engine plugins (no trait: an engine is data plus a [`launch::Driver`]):
//! the static facts — name, supported formats, default image, ports, health endpoint — are the
//! registry's [`crate::registry::EngineInfo`]; `initialize` is [`start::initialize`] (start,
//! wait for health); `generate` is [`RunningEngine::generate`]; `cleanup` is
//! [`RunningEngine::cleanup`], provided by the runtime, never by an engine.

pub mod checks;
pub mod client;
pub mod devices;
pub mod error;
pub mod generation;
pub mod http1;
pub mod launch;
pub mod openai;
pub mod preflight;
pub mod profiles;
pub mod prometheus;
pub mod running;
pub mod runtime;
pub mod scrape;
pub mod server_metrics;
pub mod simulator;
pub mod sse;
pub mod start;
pub mod tally;
pub mod window;

pub use running::RunningEngine;
pub use start::initialize;
