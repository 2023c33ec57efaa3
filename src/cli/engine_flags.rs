//! Flags that describe one engine instance the way a suite's `engines:` entry does, shared
//! by the commands that start an engine outside a suite.

use anyhow::Context;

use crate::suite::model::{EngineSpec, RuntimeMode};

/// An engine's settings from flags.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineFlags {
    /// Model path, directory, hub id or tag.
    #[arg(long)]
    pub model: Option<String>,
    /// docker, native or external.
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<RuntimeMode>,
    /// Container image (docker mode).
    #[arg(long)]
    pub image: Option<String>,
    /// Base URL (external mode).
    #[arg(long)]
    pub url: Option<String>,
    /// Docker daemon address.
    #[arg(long)]
    pub docker_host: Option<String>,
    /// Engine setting as KEY=VALUE (value parsed as JSON when it is JSON), repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Extra launch argument, repeatable.
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Health wait limit, e.g. 2m.
    #[arg(long)]
    pub startup_timeout: Option<String>,
    /// Longest one request may take, e.g. 30s (default 10m).
    #[arg(long)]
    pub request_timeout: Option<String>,
}

fn parse_mode(text: &str) -> Result<RuntimeMode, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| format!("`{text}` is not a mode: use docker, native or external"))
}

/// Parses `KEY=VALUE` pairs into a JSON object; values that are JSON are taken as JSON.
pub fn key_values(
    items: &[String],
    flag: &str,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let mut map = serde_json::Map::new();
    for item in items {
        let (key, value) = item
            .split_once('=')
            .with_context(|| format!("{flag} `{item}` is not KEY=VALUE"))?;
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        map.insert(key.to_string(), value);
    }
    Ok(map)
}

impl EngineFlags {
    /// The engine spec for registered engine `uses`.
    pub fn spec(&self, uses: &str) -> anyhow::Result<EngineSpec> {
        let config = key_values(&self.config, "--config")?;
        let startup_timeout = self
            .startup_timeout
            .as_deref()
            .map(crate::suite::model::Duration::parse)
            .transpose()
            .map_err(|e| crate::exit::usage(format!("--startup-timeout: {e}")))?;
        let request_timeout = self
            .request_timeout
            .as_deref()
            .map(crate::suite::model::Duration::parse)
            .transpose()
            .map_err(|e| crate::exit::usage(format!("--request-timeout: {e}")))?;
        Ok(EngineSpec {
            uses: uses.to_string(),
            model: self.model.clone(),
            image: self.image.clone(),
            mode: self.mode,
            url: self.url.clone(),
            docker_host: self.docker_host.clone(),
            args: self.args.clone(),
            config,
            startup_timeout,
            request_timeout,
            ..EngineSpec::default()
        })
    }
}
