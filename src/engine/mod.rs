//! Inference engines: the engine contract, the measurement client every engine shares, the
//! runtimes that start and stop them, the built-in engine profiles and the simulator.
//!
//! The contract carried over from the original KITT: `name`, `supported_formats`,
//! `default_image`, `default_port`, `container_port`, `health_endpoint` (the [`Engine`]
//! trait, answered by the registry's static facts), `initialize` ([`start::initialize`]:
//! start and wait for health), `generate` ([`RunningEngine::generate`]) and `cleanup`
//! ([`RunningEngine::cleanup`], provided by the runtime, never by an engine).

pub mod checks;
pub mod client;
pub mod error;
pub mod generation;
pub mod http1;
pub mod launch;
pub mod preflight;
pub mod profiles;
pub mod running;
pub mod runtime;
pub mod simulator;
pub mod sse;
pub mod start;
pub mod wire;

pub use running::RunningEngine;
pub use start::initialize;

use crate::registry::{EngineInfo, ModelFormat};

/// The engine contract's static facts.
pub trait Engine {
    fn name(&self) -> &str;
    fn supported_formats(&self) -> &[ModelFormat];
    fn default_image(&self) -> Option<&str>;
    fn default_port(&self) -> u16;
    fn container_port(&self) -> u16;
    fn health_endpoint(&self) -> &str;
}

impl Engine for EngineInfo {
    fn name(&self) -> &str {
        &self.name
    }
    fn supported_formats(&self) -> &[ModelFormat] {
        &self.formats
    }
    fn default_image(&self) -> Option<&str> {
        self.default_image.as_deref()
    }
    fn default_port(&self) -> u16 {
        self.default_port
    }
    fn container_port(&self) -> u16 {
        self.container_port
    }
    fn health_endpoint(&self) -> &str {
        &self.health_endpoint
    }
}
