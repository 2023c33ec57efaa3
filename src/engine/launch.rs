//! How a server engine is launched and spoken to, as data: its binary, how each `config:`
//! setting reaches it (a flag, a switch, an environment variable), its container needs, and
//! which sampling settings its requests honour. One interpreter (`command`, `extra_body`,
//! `ignored`) serves every engine, so no engine carries its own code.

use serde_json::{Map, Value, json};

pub use crate::registry::GpuUse;
use crate::suite::model::{EngineSpec, Sampling};

/// What kind of implementation an engine has.
#[derive(Debug, Clone)]
pub enum Driver {
    /// An OpenAI-compatible server kitt can start as a process or a container.
    Server(Box<ServerLaunch>),
    /// kitt's in-process simulator.
    Simulator,
    /// An endpoint kitt never starts (external mode only).
    Endpoint,
    /// An engine plugin: its process starts an OpenAI-compatible server and says where.
    Plugin(std::sync::Arc<crate::plugin::PluginRef>),
}

impl Driver {
    /// The driver of a registered engine. One registered without an implementation (a test
    /// fixture) can only be reached at a URL, like `Endpoint`.
    pub fn of(info: &crate::registry::EngineInfo) -> &Driver {
        static NONE: Driver = Driver::Endpoint;
        info.driver.get::<Driver>().unwrap_or(&NONE)
    }
}

/// How a model reaches the server's command line.
#[derive(Debug, Clone, Copy)]
pub enum ModelArg {
    /// `--flag MODEL`
    Flag(&'static str),
    /// `MODEL` first, before every flag (`vllm serve MODEL`).
    Positional,
    /// Not on the command line (Ollama pulls it through its API).
    None,
}

/// How one `config:` setting reaches the server.
#[derive(Debug, Clone, Copy)]
pub enum Setting {
    /// `--flag VALUE`: numbers and strings as written, objects and lists as JSON.
    Flag(&'static str),
    /// A boolean: the `on` flag when true, the `off` flag when false (either may be none).
    Switch {
        on: Option<&'static str>,
        off: Option<&'static str>,
    },
    /// An environment variable of the server process or container (booleans as 1 or 0).
    Env(&'static str),
    /// Tokens per request on a server that divides its context among parallel slots: `flag`
    /// gets the value times the slots, and `slots_flag` the slot count (the `slots_key`
    /// setting, else `default_slots`), so every request may use the whole value.
    PerSlot {
        flag: &'static str,
        slots_key: &'static str,
        slots_flag: &'static str,
        default_slots: u64,
    },
    /// `--flag PATH` for a file the server reads (a draft model): in a container the file is
    /// mounted read-only and the flag names the mounted path.
    Path(&'static str),
    /// Read by kitt itself (such as the native binary's path); never passed on.
    Kitt,
}

/// The host directory a weights cache comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCache {
    /// `$HF_HOME`, else `~/.cache/huggingface`.
    HuggingFace,
    /// `~/.ollama`.
    Ollama,
}

/// What an engine's container needs besides its command.
#[derive(Debug, Clone, Copy)]
pub struct ContainerNeeds {
    /// Replaces the image's entrypoint (SGLang's image has none).
    pub entrypoint: &'static [&'static str],
    /// Arguments before kitt's in the container's command (Ollama's `serve`: its image's
    /// entrypoint is the `ollama` program).
    pub args_prefix: &'static [&'static str],
    /// The image for GPU runs when it differs from the default (llama.cpp's CUDA build).
    pub gpu_image: Option<&'static str>,
    /// Share the host's IPC namespace (PyTorch shared memory for tensor parallelism).
    pub ipc_host: bool,
    /// Default `/dev/shm` size.
    pub shm_size: Option<&'static str>,
    /// Default ulimits: name, soft, hard.
    pub ulimits: &'static [(&'static str, i64, i64)],
    /// Where the engine keeps downloaded weights inside the container, and the host cache
    /// mounted there when the engine sets `weights_cache`.
    pub weights: Option<(HostCache, &'static str)>,
}

/// No container needs beyond the image.
pub const PLAIN_CONTAINER: ContainerNeeds = ContainerNeeds {
    entrypoint: &[],
    args_prefix: &[],
    gpu_image: None,
    ipc_host: false,
    shm_size: None,
    ulimits: &[],
    weights: None,
};

/// Which request settings an engine's OpenAI endpoints honour.
#[derive(Debug, Clone, Copy)]
pub struct RequestMap {
    /// The request field for `ignore_eos`, where the engine has one.
    pub ignore_eos: Option<&'static str>,
    /// The request field for `min_tokens`, where the engine has one.
    pub min_tokens: Option<&'static str>,
    /// Whether `top_k` is honoured.
    pub top_k: bool,
    /// `top_p` must be below 1: a `top_p` of 1 (no nucleus cut) is sent as absent.
    pub top_p_below_one: bool,
    /// The request's `model` field is always this (TGI reads any other name as an adapter).
    pub model_field: Option<&'static str>,
}

/// The OpenAI extensions vLLM and SGLang accept.
pub const FULL_REQUESTS: RequestMap = RequestMap {
    ignore_eos: Some("ignore_eos"),
    min_tokens: Some("min_tokens"),
    top_k: true,
    top_p_below_one: false,
    model_field: None,
};

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
    /// Every `config:` key the engine honours and how it reaches the server.
    pub settings: &'static [(&'static str, Setting)],
    pub requests: RequestMap,
    pub container: ContainerNeeds,
    pub gpu: GpuUse,
    /// The model must be pulled through the engine's API after it starts.
    pub pulls_model: bool,
    /// Defaults of the engine that distort measurements, each noted on the results when the
    /// suite leaves its key unset.
    pub unset_notes: &'static [(&'static str, &'static str)],
    /// The upstream release this profile was checked against, flag by flag.
    pub checked_against: &'static str,
    /// Where the server serves Prometheus metrics and what its series mean.
    pub metrics: super::server_metrics::ServerMetrics,
}

/// A command to start a server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

/// A setting's value as a command-line word.
fn word(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl ServerLaunch {
    /// The command line for `spec`, placed as given; the suite's `args` come last.
    pub fn command(&self, spec: &EngineSpec, placement: &Placement<'_>) -> Command {
        let mut args: Vec<String> = Vec::new();
        let mut env: Vec<(String, String)> = Vec::new();
        if placement.native {
            args.extend(self.native_args.iter().map(|a| a.to_string()));
        } else {
            args.extend(self.container.args_prefix.iter().map(|a| a.to_string()));
        }
        match (self.model, placement.model) {
            (ModelArg::Flag(flag), Some(model)) => {
                args.push(flag.into());
                args.push(model.into());
            }
            (ModelArg::Positional, Some(model)) => args.push(model.into()),
            _ => {}
        }
        if let Some(flag) = self.host_flag {
            args.push(flag.into());
            args.push(placement.host.into());
        }
        if let Some(flag) = self.port_flag {
            args.push(flag.into());
            args.push(placement.port.to_string());
        }
        for (key, setting) in self.settings {
            let value = spec.config.get(*key).filter(|v| !v.is_null());
            match (setting, value) {
                (Setting::Flag(flag) | Setting::Path(flag), Some(v)) => {
                    args.push(flag.to_string());
                    args.push(word(v));
                }
                (Setting::Switch { on, off }, Some(Value::Bool(b))) => {
                    if let Some(flag) = if *b { on } else { off } {
                        args.push(flag.to_string());
                    }
                }
                (Setting::Env(var), Some(v)) => {
                    let text = match v {
                        Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
                        other => word(other),
                    };
                    env.push((var.to_string(), text));
                }
                (
                    Setting::PerSlot {
                        flag,
                        slots_key,
                        slots_flag,
                        default_slots,
                    },
                    Some(v),
                ) => {
                    let slots = spec.config.get(*slots_key).and_then(Value::as_u64);
                    let per_request = v.as_u64().unwrap_or(0);
                    args.push(flag.to_string());
                    args.push((per_request * slots.unwrap_or(*default_slots)).to_string());
                    if slots.is_none() {
                        args.push(slots_flag.to_string());
                        args.push(default_slots.to_string());
                    }
                }
                _ => {}
            }
        }
        args.extend(spec.args.iter().cloned());
        if let Some(var) = self.address_env {
            env.insert(
                0,
                (var.into(), format!("{}:{}", placement.host, placement.port)),
            );
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

    /// Notes on engine defaults the suite left in place that distort measurements.
    pub fn unset_notes(&self, spec: &EngineSpec) -> Vec<String> {
        self.unset_notes
            .iter()
            .filter(|(key, _)| !spec.config.contains_key(*key))
            .map(|(_, note)| note.to_string())
            .collect()
    }

    /// Request fields this engine needs for the given sampling settings.
    pub fn extra_body(&self, sampling: &Sampling) -> Map<String, Value> {
        let mut extra = Map::new();
        if let (Some(field), Some(true)) = (self.requests.ignore_eos, sampling.ignore_eos) {
            extra.insert(field.into(), json!(true));
        }
        if let (Some(field), Some(n)) = (self.requests.min_tokens, sampling.min_tokens) {
            extra.insert(field.into(), json!(n));
        }
        if let (true, Some(k)) = (self.requests.top_k, sampling.top_k) {
            extra.insert("top_k".into(), json!(k));
        }
        extra
    }

    /// The sampling settings this engine does not apply, in words (for the result's
    /// warnings): those it has no field for.
    pub fn ignored(&self, sampling: &Sampling) -> Vec<String> {
        let mut out = Vec::new();
        if sampling.ignore_eos == Some(true) && self.requests.ignore_eos.is_none() {
            out.push(
                "ignore_eos is not supported: answers stop at the end-of-sequence token, so output lengths are not fixed"
                    .to_string(),
            );
        }
        if sampling.min_tokens.is_some() && self.requests.min_tokens.is_none() {
            out.push("min_tokens is not supported and was not applied".to_string());
        }
        if sampling.top_k.is_some() && !self.requests.top_k {
            out.push("top_k is not supported and was not applied".to_string());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch() -> ServerLaunch {
        ServerLaunch {
            metrics: crate::engine::server_metrics::ServerMetrics::None("a test profile"),
            binary: "vllm",
            native_args: &["serve"],
            model: ModelArg::Flag("--model"),
            host_flag: Some("--host"),
            port_flag: Some("--port"),
            address_env: None,
            settings: &[
                ("context_length", Setting::Flag("--max-model-len")),
                (
                    "enforce_eager",
                    Setting::Switch {
                        on: Some("--enforce-eager"),
                        off: Some("--no-enforce-eager"),
                    },
                ),
                ("spec", Setting::Flag("--speculative-config")),
                ("keep_alive", Setting::Env("KEEP_ALIVE")),
                ("flash", Setting::Env("FLASH")),
            ],
            requests: FULL_REQUESTS,
            container: PLAIN_CONTAINER,
            gpu: GpuUse::Required,
            pulls_model: false,
            unset_notes: &[],
            checked_against: "test",
        }
    }

    #[test]
    fn config_becomes_flags_switches_and_env_and_suite_args_come_last() {
        let mut spec = EngineSpec {
            uses: "vllm".into(),
            args: vec!["--seed".into(), "1".into()],
            ..EngineSpec::default()
        };
        spec.config.insert("context_length".into(), json!(4096));
        spec.config.insert("enforce_eager".into(), json!(false));
        spec.config
            .insert("spec".into(), json!({"method": "ngram", "n": 3}));
        spec.config.insert("keep_alive".into(), json!("30m"));
        spec.config.insert("flash".into(), json!(true));
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
            r#"--model /models/m --host 0.0.0.0 --port 8000 --max-model-len 4096 --no-enforce-eager --speculative-config {"method":"ngram","n":3} --seed 1"#
        );
        assert_eq!(
            cmd.env,
            vec![
                ("KEEP_ALIVE".to_string(), "30m".to_string()),
                ("FLASH".to_string(), "1".to_string())
            ]
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
    fn a_per_slot_context_multiplies_by_the_slots() {
        let launch = ServerLaunch {
            settings: &[
                (
                    "context_length",
                    Setting::PerSlot {
                        flag: "--ctx-size",
                        slots_key: "parallel",
                        slots_flag: "--parallel",
                        default_slots: 4,
                    },
                ),
                ("parallel", Setting::Flag("--parallel")),
            ],
            ..launch()
        };
        let placement = Placement {
            host: "h",
            port: 1,
            model: None,
            native: false,
        };
        let mut spec = EngineSpec::default();
        spec.config.insert("context_length".into(), json!(2048));
        let cmd = launch.command(&spec, &placement);
        assert!(
            cmd.args.join(" ").ends_with("--ctx-size 8192 --parallel 4"),
            "{:?}",
            cmd.args
        );
        spec.config.insert("parallel".into(), json!(2));
        let cmd = launch.command(&spec, &placement);
        assert!(
            cmd.args.join(" ").ends_with("--ctx-size 4096 --parallel 2"),
            "{:?}",
            cmd.args
        );
    }

    #[test]
    fn sampling_maps_to_engine_fields_and_the_rest_is_named_as_ignored() {
        let sampling = Sampling {
            ignore_eos: Some(true),
            min_tokens: Some(8),
            top_k: Some(5),
            ..Sampling::default()
        };
        let extra = launch().extra_body(&sampling);
        assert_eq!(extra["ignore_eos"], json!(true));
        assert_eq!(extra["min_tokens"], json!(8));
        assert_eq!(extra["top_k"], json!(5));
        assert!(launch().ignored(&sampling).is_empty());
        let bare = ServerLaunch {
            requests: RequestMap {
                ignore_eos: None,
                min_tokens: None,
                top_k: false,
                top_p_below_one: true,
                model_field: Some("tgi"),
            },
            ..launch()
        };
        assert!(bare.extra_body(&sampling).is_empty());
        let ignored = bare.ignored(&sampling);
        assert_eq!(ignored.len(), 3, "{ignored:?}");
        assert!(ignored[0].contains("output lengths are not fixed"));
    }
}
