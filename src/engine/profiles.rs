//! Built-in engine profiles: the engine contract's static facts for each engine, as data.

use serde_json::{Value, json};

use super::launch::{Driver, ModelArg, ServerLaunch};
use crate::registry::{EngineInfo, ModelFormat};
use crate::suite::model::RuntimeMode;

/// The launch facts most OpenAI-compatible servers share; engines override what differs.
const OPENAI_SERVER: ServerLaunch = ServerLaunch {
    binary: "",
    native_args: &[],
    model: ModelArg::Flag("--model"),
    host_flag: Some("--host"),
    port_flag: Some("--port"),
    address_env: None,
    config_flags: &[],
    ignore_eos_field: None,
    min_tokens_field: None,
    request_options: &[],
    pulls_model: false,
};

/// Settings every OpenAI-compatible server engine accepts under `config:`.
fn server_config(extra: Value) -> Value {
    let mut properties = json!({
        "context_length": {"type": "integer", "minimum": 1, "description": "Maximum context length in tokens."},
        "gpu_memory_utilization": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "description": "Fraction of GPU memory the engine may use."},
        "tensor_parallel_size": {"type": "integer", "minimum": 1, "description": "GPUs one model is split across."},
        "quantization": {"type": "string", "description": "Quantization method, as the engine names it."},
        "dtype": {"type": "string", "enum": ["auto", "float16", "bfloat16", "float32"]},
        "served_model_name": {"type": "string", "description": "Model name sent in requests."}
    });
    if let (Some(base), Some(more)) = (properties.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            base.insert(k.clone(), v.clone());
        }
    }
    json!({"type": "object", "additionalProperties": false, "properties": properties})
}

struct Profile {
    name: &'static str,
    description: &'static str,
    formats: &'static [ModelFormat],
    image: Option<&'static str>,
    port: u16,
    container_port: u16,
    health: &'static str,
    modes: &'static [RuntimeMode],
    config: Value,
    driver: Driver,
}

impl From<Profile> for EngineInfo {
    fn from(p: Profile) -> Self {
        EngineInfo {
            name: p.name.into(),
            description: p.description.into(),
            formats: p.formats.to_vec(),
            default_image: p.image.map(Into::into),
            default_port: p.port,
            container_port: p.container_port,
            health_endpoint: p.health.into(),
            modes: p.modes.to_vec(),
            config_schema: p.config,
            model_required: !matches!(p.driver, Driver::Simulator),
            needs_gpu: matches!(p.name, "vllm" | "sglang" | "tgi"),
            driver: p.driver,
        }
    }
}

/// The built-in engines.
pub fn builtin_engines() -> Vec<EngineInfo> {
    use ModelFormat::*;
    use RuntimeMode::*;
    let profiles = vec![
        Profile {
            name: "vllm",
            description: "vLLM OpenAI-compatible server",
            formats: &[Safetensors],
            image: Some("vllm/vllm-openai:v0.9.2"),
            port: 8000,
            container_port: 8000,
            health: "/health",
            modes: &[Docker, Native, External],
            config: server_config(json!({"max_num_seqs": {"type": "integer", "minimum": 1}})),
            driver: Driver::Server(ServerLaunch {
                binary: "vllm",
                native_args: &["serve"],
                model: ModelArg::Flag("--model"),
                config_flags: &[
                    ("context_length", "--max-model-len"),
                    ("gpu_memory_utilization", "--gpu-memory-utilization"),
                    ("tensor_parallel_size", "--tensor-parallel-size"),
                    ("quantization", "--quantization"),
                    ("dtype", "--dtype"),
                    ("served_model_name", "--served-model-name"),
                    ("max_num_seqs", "--max-num-seqs"),
                ],
                ignore_eos_field: Some("ignore_eos"),
                min_tokens_field: Some("min_tokens"),
                ..OPENAI_SERVER
            }),
        },
        Profile {
            name: "sglang",
            description: "SGLang server",
            formats: &[Safetensors],
            image: Some("lmsysorg/sglang:v0.4.9"),
            port: 30000,
            container_port: 30000,
            health: "/health",
            modes: &[Docker, Native, External],
            config: server_config(json!({})),
            driver: Driver::Server(ServerLaunch {
                binary: "python3",
                native_args: &["-m", "sglang.launch_server"],
                model: ModelArg::Flag("--model-path"),
                config_flags: &[
                    ("context_length", "--context-length"),
                    ("gpu_memory_utilization", "--mem-fraction-static"),
                    ("tensor_parallel_size", "--tp-size"),
                    ("quantization", "--quantization"),
                    ("dtype", "--dtype"),
                    ("served_model_name", "--served-model-name"),
                ],
                ignore_eos_field: Some("ignore_eos"),
                min_tokens_field: Some("min_tokens"),
                ..OPENAI_SERVER
            }),
        },
        Profile {
            name: "tgi",
            description: "Hugging Face Text Generation Inference",
            formats: &[Safetensors],
            image: Some("ghcr.io/huggingface/text-generation-inference:3.3.4"),
            port: 8080,
            container_port: 80,
            health: "/health",
            modes: &[Docker, External],
            config: server_config(
                json!({"max_batch_prefill_tokens": {"type": "integer", "minimum": 1}}),
            ),
            driver: Driver::Server(ServerLaunch {
                binary: "text-generation-launcher",
                model: ModelArg::Flag("--model-id"),
                host_flag: Some("--hostname"),
                config_flags: &[
                    ("context_length", "--max-total-tokens"),
                    ("gpu_memory_utilization", "--cuda-memory-fraction"),
                    ("tensor_parallel_size", "--num-shard"),
                    ("quantization", "--quantize"),
                    ("dtype", "--dtype"),
                    ("max_batch_prefill_tokens", "--max-batch-prefill-tokens"),
                ],
                ..OPENAI_SERVER
            }),
        },
        Profile {
            name: "llama.cpp",
            description: "llama.cpp llama-server",
            formats: &[Gguf],
            image: Some("ghcr.io/ggml-org/llama.cpp:server"),
            port: 8080,
            container_port: 8080,
            health: "/health",
            modes: &[Native, Docker, External],
            config: server_config(json!({
                "n_gpu_layers": {"type": "integer", "minimum": -1},
                "threads": {"type": "integer", "minimum": 1},
                "parallel": {"type": "integer", "minimum": 1},
                "binary": {"type": "string", "description": "Path of llama-server for native mode."}
            })),
            driver: Driver::Server(ServerLaunch {
                binary: "llama-server",
                model: ModelArg::Flag("--model"),
                config_flags: &[
                    ("context_length", "--ctx-size"),
                    ("n_gpu_layers", "--n-gpu-layers"),
                    ("threads", "--threads"),
                    ("parallel", "--parallel"),
                    ("served_model_name", "--alias"),
                ],
                ignore_eos_field: Some("ignore_eos"),
                ..OPENAI_SERVER
            }),
        },
        Profile {
            name: "ollama",
            description: "Ollama (the model is pulled through its API before use)",
            formats: &[OllamaTag],
            image: Some("ollama/ollama:0.9.6"),
            port: 11434,
            container_port: 11434,
            health: "/api/version",
            modes: &[Docker, Native, External],
            config: server_config(json!({"num_ctx": {"type": "integer", "minimum": 1}})),
            driver: Driver::Server(ServerLaunch {
                binary: "ollama",
                native_args: &["serve"],
                model: ModelArg::None,
                host_flag: None,
                port_flag: None,
                address_env: Some("OLLAMA_HOST"),
                request_options: &["num_ctx"],
                pulls_model: true,
                ..OPENAI_SERVER
            }),
        },
        Profile {
            name: "openai",
            description: "Any external OpenAI-compatible endpoint",
            formats: &[ServerSide],
            image: None,
            port: 443,
            container_port: 443,
            health: "/v1/models",
            modes: &[External],
            config: server_config(json!({})),
            driver: Driver::Endpoint,
        },
        Profile {
            name: "simulator",
            description: "In-process OpenAI-compatible server with configurable timing, for trying kitt and testing suites without a GPU",
            formats: &[ServerSide],
            image: None,
            port: 0,
            container_port: 0,
            health: "/health",
            modes: &[Native],
            config: json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "ttft": {"type": "string", "pattern": crate::suite::model::DURATION_PATTERN, "description": "Time to first token."},
                    "itl": {"type": "string", "pattern": crate::suite::model::DURATION_PATTERN, "description": "Time between tokens."},
                    "output_tokens": {"type": "integer", "minimum": 1, "description": "Mean tokens per answer."},
                    "max_concurrency": {"type": "integer", "minimum": 1, "description": "Sequences served at once; more wait in a queue."},
                    "output_distribution": {"type": "string", "enum": ["fixed", "uniform", "exponential"], "description": "How answer lengths vary around output_tokens (uniform: 50% to 150%)."},
                    "error_rate": {"type": "number", "minimum": 0, "maximum": 1, "description": "Fraction of requests answered with HTTP 500."},
                    "seed": {"type": "integer", "minimum": 0},
                    "prefill": {"type": "string", "pattern": crate::suite::model::DURATION_PATTERN, "description": "Extra time to first token per 1,000 prompt tokens (prompt tokens are words)."},
                    "context": {"type": "integer", "minimum": 16, "description": "Context length in tokens (default 8192): longer prompts get HTTP 400; reported as max_model_len by /v1/models."}
                }
            }),
            driver: Driver::Simulator,
        },
    ];
    profiles.into_iter().map(EngineInfo::from).collect()
}
