//! Plugins, the low half: the manifest, the protocol's types, the one host-call server, and
//! the two transports (a subprocess, a wasm module). What a plugin registers as is decided
//! above, in `assemble`, where built-ins and plugins take the same path.

pub mod discovery;
pub mod error;
pub mod host;
pub mod install;
pub mod manifest;
pub mod protocol;
pub mod pypi;
pub mod subprocess;
pub mod wasm;

use std::path::PathBuf;

pub use discovery::{Discovered, discover, discover_all};
pub use manifest::{Kind, Manifest};

/// A registered plugin: where it lives and what its manifest says.
#[derive(Debug, Clone)]
pub struct PluginRef {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// The committed plugin manifest schema (a test keeps it equal to what the types generate).
pub const PLUGIN_SCHEMA: &str = include_str!("../../schemas/plugin.schema.json");

/// Generates the manifest's JSON Schema.
pub fn generate_schema() -> serde_json::Value {
    crate::suite::schema::generate::<Manifest>()
}
