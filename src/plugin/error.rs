//! Why a plugin call failed, the same for both transports.

use std::time::Duration;

use serde_json::Value;

use super::protocol::{Message, RpcError};

/// Why a plugin call failed. Every variant names the plugin; the plugin's faults carry its
/// last stderr lines.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin `{plugin}` could not start: {reason}")]
    Start { plugin: String, reason: String },
    #[error("plugin `{plugin}` did not answer `{method}` within {after:?}; it was stopped{stderr}")]
    Timeout {
        plugin: String,
        method: String,
        after: Duration,
        stderr: String,
    },
    #[error(
        "plugin `{plugin}` broke the protocol during `{method}`: {reason}; it was stopped{stderr}"
    )]
    Protocol {
        plugin: String,
        method: String,
        reason: String,
        stderr: String,
    },
    #[error("plugin `{plugin}` exited during `{method}` ({status}){stderr}")]
    Exited {
        plugin: String,
        method: String,
        status: String,
        stderr: String,
    },
    #[error("plugin `{plugin}` was stopped during `{method}`: {reason}")]
    Trapped {
        plugin: String,
        method: String,
        reason: String,
    },
    #[error("plugin `{plugin}` reported a {} error in `{method}`: {}", error.kind(), error.message)]
    Reported {
        plugin: String,
        method: String,
        error: Box<RpcError>,
    },
}

/// A plugin's answer as a result: its `result`, or its error reported as the plugin's.
pub fn outcome(plugin: &str, method: &str, answer: Message) -> Result<Value, PluginError> {
    match (answer.result, answer.error) {
        (_, Some(error)) => Err(PluginError::Reported {
            plugin: plugin.to_string(),
            method: method.into(),
            error: Box::new(error),
        }),
        (Some(result), None) => Ok(result),
        (None, None) => Ok(Value::Null),
    }
}
