//! How a server engine is launched and spoken to, as data: its binary, how settings become
//! launch arguments, and how sampling settings map to request fields. One interpreter
//! (`command`, `extra_body`) serves every engine, so no engine carries its own code.

use serde_json::{Map, Value, json};

use crate::suite::model::{EngineSpec, Sampling};

/// What kind of implementation an engine has.
#[derive(Debug, Clone)]
pub enum Driver {
    /// An OpenAI-compatible server kitt can start as a process or a container.
    Server(ServerLaunch),
    /// kitt's in-process simulator.
    Simulator,
    /// An endpoint kitt never starts (external mode only).
    Endpoint,
    /// An engine plugin: its process starts an OpenAI-compatible server and says where.
    Plugin(std::sync::Arc<crate::plugin::PluginRef>),
}

/// How a model reaches the server's command line.
#[derive(Debug, Clone, Copy)]
pub enum ModelArg {
    /// `--flag MODEL`
    Flag(&'static str),
    /// Not on the command line (Ollama pulls it through its API).
    None,
}

/// The launch facts of one server engine.
#[derive(Debug, Clone)]
pub struct ServerLaunch {
    /// Program for native mode.
    pub binary: &'static str,
    /// Arguments after the program in native mode only (the image's entrypoint has them).
    pub native_args: &'static [&'static str],
    pub model: ModelArg,
    /// `--host` flag; absent when the address goes in `address_env`.
    pub host_flag: Option<&'static str>,
    pub port_flag: Option<&'static str>,
    /// Environment variable taking `host:port` (Ollama's `OLLAMA_HOST`).
    pub address_env: Option<&'static str>,
    /// `config:` keys and the flags they become; booleans become a bare flag when true.
    pub config_flags: &'static [(&'static str, &'static str)],
    /// Request fields for `ignore_eos` and `min_tokens`, where the engine has them.
    pub ignore_eos_field: Option<&'static str>,
    pub min_tokens_field: Option<&'static str>,
    /// `config:` keys sent in every request's `options` object (Ollama's `num_ctx`).
    pub request_options: &'static [&'static str],
    /// The model must be pulled through the engine's API after it starts.
    pub pulls_model: bool,
}

/// A command to start a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Native mode's program; `None` for a container, whose entrypoint runs.
    pub program: Option<String>,
    pub args: Vec<String>,
    /// Environment set by kitt (secrets are added by the runtime, never here).
    pub env: Vec<(String, String)>,
}

/// Where the server should listen and which model path it sees.
#[derive(Debug, Clone)]
pub struct Placement<'a> {
    pub host: &'a str,
    pub port: u16,
    /// The model as the server sees it (a container path when mounted).
    pub model: Option<&'a str>,
    pub native: bool,
}

impl ServerLaunch {
    /// The command line for `spec`, placed as given; the suite's `args` come last.
    pub fn command(&self, spec: &EngineSpec, placement: &Placement<'_>) -> Command {
        let mut args: Vec<String> = Vec::new();
        if placement.native {
            args.extend(self.native_args.iter().map(|a| a.to_string()));
        }
        if let (ModelArg::Flag(flag), Some(model)) = (self.model, placement.model) {
            args.push(flag.into());
            args.push(model.into());
        }
        if let Some(flag) = self.host_flag {
            args.push(flag.into());
            args.push(placement.host.into());
        }
        if let Some(flag) = self.port_flag {
            args.push(flag.into());
            args.push(placement.port.to_string());
        }
        for (key, flag) in self.config_flags {
            match spec.config.get(*key) {
                Some(Value::Bool(true)) => args.push(flag.to_string()),
                Some(Value::Bool(false)) | Some(Value::Null) | None => {}
                Some(Value::String(s)) => {
                    args.push(flag.to_string());
                    args.push(s.clone());
                }
                Some(other) => {
                    args.push(flag.to_string());
                    args.push(other.to_string());
                }
            }
        }
        args.extend(spec.args.iter().cloned());
        let mut env: Vec<(String, String)> = Vec::new();
        if let Some(var) = self.address_env {
            env.push((var.into(), format!("{}:{}", placement.host, placement.port)));
        }
        env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        Command {
            program: placement
                .native
                .then(|| self.native_program(spec).to_string()),
            args,
            env,
        }
    }

    /// Native mode's program: `config.binary` when given, else the engine's usual name.
    pub fn native_program<'s>(&'s self, spec: &'s EngineSpec) -> &'s str {
        spec.config
            .get("binary")
            .and_then(Value::as_str)
            .unwrap_or(self.binary)
    }

    /// Request fields this engine needs for the given sampling settings and config.
    pub fn extra_body(&self, sampling: &Sampling, spec: &EngineSpec) -> Map<String, Value> {
        let mut extra = Map::new();
        if let (Some(field), Some(true)) = (self.ignore_eos_field, sampling.ignore_eos) {
            extra.insert(field.into(), json!(true));
        }
        if let (Some(field), Some(n)) = (self.min_tokens_field, sampling.min_tokens) {
            extra.insert(field.into(), json!(n));
        }
        let mut options = Map::new();
        for key in self.request_options {
            if let Some(v) = spec.config.get(*key) {
                options.insert(key.to_string(), v.clone());
            }
        }
        if !options.is_empty() {
            extra.insert("options".into(), Value::Object(options));
        }
        if let Some(k) = sampling.top_k {
            extra.insert("top_k".into(), json!(k));
        }
        extra
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch() -> ServerLaunch {
        ServerLaunch {
            binary: "vllm",
            native_args: &["serve"],
            model: ModelArg::Flag("--model"),
            host_flag: Some("--host"),
            port_flag: Some("--port"),
            address_env: None,
            config_flags: &[
                ("context_length", "--max-model-len"),
                ("enforce_eager", "--enforce-eager"),
            ],
            ignore_eos_field: Some("ignore_eos"),
            min_tokens_field: Some("min_tokens"),
            request_options: &[],
            pulls_model: false,
        }
    }

    #[test]
    fn config_becomes_flags_and_suite_args_come_last() {
        let mut spec = EngineSpec {
            uses: "vllm".into(),
            args: vec!["--seed".into(), "1".into()],
            ..EngineSpec::default()
        };
        spec.config.insert("context_length".into(), json!(4096));
        spec.config.insert("enforce_eager".into(), json!(true));
        let placement = Placement {
            host: "0.0.0.0",
            port: 8000,
            model: Some("/models/m"),
            native: false,
        };
        let cmd = launch().command(&spec, &placement);
        assert_eq!(cmd.program, None);
        assert_eq!(
            cmd.args.join(" "),
            "--model /models/m --host 0.0.0.0 --port 8000 --max-model-len 4096 --enforce-eager --seed 1"
        );
        let native = launch().command(
            &spec,
            &Placement {
                native: true,
                ..placement
            },
        );
        assert_eq!(native.program.as_deref(), Some("vllm"));
        assert_eq!(native.args[0], "serve");
    }

    #[test]
    fn sampling_maps_to_engine_fields() {
        let sampling = Sampling {
            ignore_eos: Some(true),
            min_tokens: Some(8),
            ..Sampling::default()
        };
        let extra = launch().extra_body(&sampling, &EngineSpec::default());
        assert_eq!(extra["ignore_eos"], json!(true));
        assert_eq!(extra["min_tokens"], json!(8));
    }
}
