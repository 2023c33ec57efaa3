//! The plugin protocol: JSON-RPC 2.0 messages, the same for every transport. The full
//! description with an example exchange is `docs/plugin-protocol.md`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The protocol version this kitt speaks (independent of kitt's own version).
pub const PROTOCOL_VERSION: u32 = 1;

/// What the host offers a plugin during calls.
pub const HOST_FEATURES: [&str; 4] = ["generate", "log", "progress", "sample"];

/// A message on the wire: a request, a notification (no id) or a response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub jsonrpc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

/// A JSON-RPC error; `data` says whose fault it was and whether retrying may help.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<ErrorData>,
}

/// Who is at fault, whether to retry, and where in the node's params.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ErrorData {
    /// `user` (bad params), `plugin` (a bug) or `infra` (the machine, the network).
    #[serde(default = "plugin_kind")]
    pub kind: String,
    #[serde(default)]
    pub retryable: bool,
    /// A JSON pointer into the node's params, e.g. `/prompt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
}

/// A plugin's request or notification to the host, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum HostCall {
    /// `generate`: a request the host answers with the engine's generation.
    Generate { id: Value, params: Value },
    /// `log`: a line for the person running kitt.
    Log { message: String },
    /// `progress`: work done, and how much there will be.
    Progress { done: u64, total: Option<u64> },
    /// `sample`: one raw measurement.
    Sample { name: String, value: f64 },
    /// A known method with params it cannot use.
    Invalid {
        id: Option<Value>,
        method: String,
        reason: String,
    },
    /// A method the host does not offer.
    Unknown { id: Option<Value>, method: String },
}

impl HostCall {
    /// The call a message carries, or the message itself back when it is a response (it has
    /// no method).
    pub fn from_message(message: Message) -> Result<HostCall, Box<Message>> {
        let Some(method) = message.method.clone() else {
            return Err(Box::new(message));
        };
        let id = message.id;
        let params = message.params.unwrap_or(Value::Null);
        let invalid = |reason: &str| HostCall::Invalid {
            id: id.clone(),
            method: method.clone(),
            reason: reason.to_string(),
        };
        Ok(match method.as_str() {
            "generate" => match id.clone() {
                Some(id) => HostCall::Generate { id, params },
                None => invalid("generate must be a request (with an id)"),
            },
            "log" => HostCall::Log {
                message: params
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            },
            "progress" => HostCall::Progress {
                done: params.get("done").and_then(Value::as_u64).unwrap_or(0),
                total: params.get("total").and_then(Value::as_u64),
            },
            "sample" => match (
                params.get("name").and_then(Value::as_str),
                params.get("value").and_then(Value::as_f64),
            ) {
                (Some(name), Some(value)) => HostCall::Sample {
                    name: name.to_string(),
                    value,
                },
                _ => invalid("needs a string `name` and a number `value`"),
            },
            _ => HostCall::Unknown {
                id: id.clone(),
                method: method.clone(),
            },
        })
    }
}

fn plugin_kind() -> String {
    "plugin".into()
}

impl Message {
    pub fn request(id: u64, method: &str, params: Value) -> Message {
        Message {
            jsonrpc: "2.0".into(),
            id: Some(json!(id)),
            method: Some(method.into()),
            params: Some(params),
            result: None,
            error: None,
        }
    }

    pub fn notification(method: &str, params: Value) -> Message {
        Message {
            jsonrpc: "2.0".into(),
            id: None,
            method: Some(method.into()),
            params: Some(params),
            result: None,
            error: None,
        }
    }

    pub fn response(id: Value, result: Result<Value, RpcError>) -> Message {
        let (result, error) = match result {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        Message {
            jsonrpc: "2.0".into(),
            id: Some(id),
            method: None,
            params: None,
            result,
            error,
        }
    }

    /// The `initialize` request the host opens with.
    pub fn initialize(id: u64, plugin: &str) -> Message {
        Message::request(
            id,
            "initialize",
            json!({
                "protocol_versions": [PROTOCOL_VERSION],
                "kitt_version": env!("CARGO_PKG_VERSION"),
                "plugin": plugin,
                "features": HOST_FEATURES,
            }),
        )
    }
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>, kind: &str, retryable: bool) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: Some(ErrorData {
                kind: kind.into(),
                retryable,
                pointer: None,
            }),
        }
    }

    pub fn kind(&self) -> &str {
        self.data.as_ref().map_or("plugin", |d| d.kind.as_str())
    }
}

/// Checks an `initialize` result: the version the plugin chose must be ours.
pub fn check_handshake(result: &Value) -> Result<Vec<String>, String> {
    let version = result
        .get("protocol_version")
        .and_then(Value::as_u64)
        .ok_or("its `initialize` answer has no integer `protocol_version`")?;
    if version != u64::from(PROTOCOL_VERSION) {
        return Err(format!(
            "it speaks protocol version {version}; this kitt speaks {PROTOCOL_VERSION}"
        ));
    }
    Ok(result
        .get("features")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_handshakes_are_checked() {
        let m = Message::initialize(1, "echo");
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains("\"protocol_versions\":[1]"));
        let back: Message = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            check_handshake(&json!({"protocol_version": 1, "features": ["run"]})).unwrap(),
            ["run"]
        );
        assert!(
            check_handshake(&json!({"protocol_version": 2}))
                .unwrap_err()
                .contains("version 2")
        );
        assert!(check_handshake(&json!({})).is_err());
    }
}
