//! Plugins: directories holding a `plugin.toml` manifest and a subprocess command or a wasm
//! module, found in the plugin directories and registered through the same registry calls as
//! the built-ins.

pub mod benchmark;
pub mod discovery;
pub mod manifest;
pub mod protocol;
pub mod subprocess;
pub mod wasm;

use std::path::PathBuf;

pub use discovery::{Discovered, discover, plugin_dirs};
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
