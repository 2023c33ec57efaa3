//! The built-in benchmarks' static facts — params schemas generated from the params types,
//! the metrics each reports — and the driver that runs each.

use schemars::JsonSchema;
use serde_json::{Value, json};

use super::params::schema_of;
use super::performance::{
    self, conversation, embeddings, load, long_context, memory, structured, sweep, throughput,
    tool_calls, trace_replay, warmup_analysis,
};
use super::quality::{self, Standard, custom, standard};
use super::run::Driver;
use crate::registry::{BenchmarkInfo, Category, Direction, MetricInfo};

fn metric(name: &str, unit: &str, higher: bool) -> MetricInfo {
    MetricInfo {
        name: name.into(),
        unit: unit.into(),
        direction: if higher {
            Direction::Higher
        } else {
            Direction::Lower
        },
    }
}

fn metrics(list: &[(&str, &str, bool)]) -> Vec<MetricInfo> {
    list.iter().map(|(n, u, h)| metric(n, u, *h)).collect()
}

/// What every load-generating benchmark reports.
fn load_metrics() -> Vec<MetricInfo> {
    performance::load_metric_names()
        .iter()
        .map(|(n, u, h)| metric(n, u, *h))
        .collect()
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

struct Facts {
    name: &'static str,
    category: Category,
    description: &'static str,
    schema: Value,
    metrics: Vec<MetricInfo>,
    dynamic: Vec<String>,
    outputs: Vec<String>,
    driver: Driver,
}

impl From<Facts> for BenchmarkInfo {
    fn from(f: Facts) -> Self {
        BenchmarkInfo {
            name: f.name.into(),
            version: "1.0.0".into(),
            category: f.category,
            description: f.description.into(),
            params_schema: f.schema,
            metrics: f.metrics,
            dynamic_metric_prefixes: f.dynamic,
            outputs: f.outputs,
            driver: crate::registry::Implementation::new(f.driver),
        }
    }
}

fn performance<T: JsonSchema>(
    name: &'static str,
    description: &'static str,
    metrics: Vec<MetricInfo>,
    outputs: &[&str],
    driver: Driver,
) -> Facts {
    let mut metrics = metrics;
    for (name, unit, higher) in crate::telemetry::figure_names() {
        if !metrics.iter().any(|m| m.name == name) {
            metrics.push(metric(&name, unit, higher));
        }
    }
    Facts {
        name,
        category: Category::Performance,
        description,
        schema: schema_of::<T>(),
        metrics,
        dynamic: vec![crate::telemetry::SCRAPE_PREFIX.into()],
        outputs: strings(outputs),
        driver,
    }
}

fn standard_quality(s: Standard) -> Facts {
    let mut schema = schema_of::<standard::StandardParams>();
    if s != Standard::Mmlu
        && let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut)
    {
        props.remove("subjects");
    }
    Facts {
        name: s.name(),
        category: Category::QualityStandard,
        description: s.description(),
        schema,
        metrics: metrics(&quality::METRICS),
        dynamic: Vec::new(),
        outputs: strings(&["accuracy", "scoring"]),
        driver: Driver::Quality(s),
    }
}

/// The sweep's schema, with `slo` keys limited to load metrics.
fn sweep_schema() -> Value {
    let mut schema = schema_of::<sweep::SweepParams>();
    let names: Vec<String> = sweep::slo_metrics().into_iter().map(|(n, _)| n).collect();
    if let Some(slo) = schema
        .pointer_mut("/properties/slo")
        .and_then(Value::as_object_mut)
    {
        slo.insert("propertyNames".into(), json!({"enum": names}));
    }
    schema
}

/// The built-in benchmarks.
pub fn builtin_benchmarks() -> Vec<BenchmarkInfo> {
    let mut load_point = load_metrics();
    load_point.extend(metrics(&load::POINT_METRICS));
    let mut trace_point = load_point.clone();
    trace_point.extend(metrics(&trace_replay::METRICS));
    let mut memory_metrics = load_metrics();
    memory_metrics.extend(metrics(&[
        ("memory_baseline_mib", "MiB", false),
        ("memory_peak_mib", "MiB", false),
        ("memory_mean_mib", "MiB", false),
        ("memory_growth_mib", "MiB", false),
        ("memory_samples", "count", true),
    ]));
    let facts = vec![
        performance::<throughput::ThroughputParams>(
            "throughput",
            "Closed-loop throughput and latency at a fixed concurrency",
            load_metrics(),
            &[
                "requests_per_s",
                "output_tokens_per_s",
                "schedule_hash",
                "client_limited",
            ],
            Driver::Throughput,
        ),
        performance::<throughput::LatencyParams>(
            "latency",
            "Per-request latency, one request at a time",
            load_metrics(),
            &[
                "ttft_p50_ms",
                "e2e_p50_ms",
                "schedule_hash",
                "client_limited",
            ],
            Driver::Latency,
        ),
        performance::<load::LoadParams>(
            "load",
            "One load point: closed loop at a concurrency or open loop at a rate, with goodput",
            load_point,
            &[
                "requests_per_s",
                "goodput",
                "schedule_hash",
                "client_limited",
            ],
            Driver::Load,
        ),
        Facts {
            schema: sweep_schema(),
            ..performance::<sweep::SweepParams>(
                "sweep",
                "Load points over concurrency or rate, and the highest one that meets the SLOs",
                metrics(&[
                    ("max_value", "value", true),
                    ("max_rate", "requests/s", true),
                    ("max_concurrency", "requests", true),
                    ("points", "count", true),
                    ("client_cpu_ms_per_request", "ms", false),
                    ("client_cpu_cores", "cores", false),
                    ("client_loop_busy", "ratio", false),
                    ("send_lag_p99_ms", "ms", false),
                    ("client_limited", "flag", false),
                ]),
                &[
                    "max_rate",
                    "max_concurrency",
                    "max_value",
                    "stop_reason",
                    "over",
                    "client_limited",
                ],
                Driver::Sweep,
            )
        },
        performance::<warmup_analysis::WarmupParams>(
            "warmup_analysis",
            "First requests against a fresh engine vs its steady state",
            metrics(&[
                ("first_ttft_ms", "ms", false),
                ("first_e2e_ms", "ms", false),
                ("steady_ttft_ms", "ms", false),
                ("steady_e2e_ms", "ms", false),
                ("first_to_steady_ratio", "ratio", false),
                ("requests_to_stable", "count", false),
            ]),
            &["requests_to_stable"],
            Driver::WarmupAnalysis,
        ),
        Facts {
            dynamic: vec!["ttft_ms_at_".into(), crate::telemetry::SCRAPE_PREFIX.into()],
            ..performance::<long_context::LongContextParams>(
                "long_context",
                "Time to first token as prompts grow towards the engine's context",
                metrics(&[
                    ("ttft_shortest_ms", "ms", false),
                    ("ttft_longest_ms", "ms", false),
                    ("longest_prompt_tokens", "tokens", true),
                    ("ttft_growth_ms_per_1k_tokens", "ms", false),
                ]),
                &["ttft_growth_ms_per_1k_tokens", "context"],
                Driver::LongContext,
            )
        },
        performance::<memory::MemoryParams>(
            "memory",
            "Engine memory (GPU, container or process) before and during a load",
            memory_metrics,
            &["memory_peak_mib", "memory_source", "client_limited"],
            Driver::Memory,
        ),
        performance::<embeddings::EmbeddingsParams>(
            "embeddings",
            "Embedding latency and throughput (/v1/embeddings) at a concurrency, in batches",
            metrics(&[&performance::CALL_METRICS[..], &embeddings::METRICS[..]].concat()),
            &["requests_per_s", "inputs_per_s"],
            Driver::Embeddings,
        ),
        performance::<structured::StructuredParams>(
            "structured_output",
            "JSON-schema answers (response_format): latency, and the share that parse and validate",
            metrics(
                &[
                    &performance::CALL_METRICS[..],
                    &performance::ANSWER_METRICS[..],
                    &structured::METRICS[..],
                ]
                .concat(),
            ),
            &["schema_valid_ratio", "json_parse_ratio"],
            Driver::StructuredOutput,
        ),
        Facts {
            dynamic: vec![
                conversation::TURN_PREFIX.into(),
                crate::telemetry::SCRAPE_PREFIX.into(),
            ],
            ..performance::<conversation::ConversationParams>(
                "conversation",
                "Multi-turn chat sessions that resend their history: latency by turn, cached prompt share",
                metrics(&conversation::METRICS),
                &["ttft_later_to_first_turn_ratio", "cached_prompt_share"],
                Driver::Conversation,
            )
        },
        performance::<tool_calls::ToolCallsParams>(
            "tool_calls",
            "Requests that declare tools: latency, and the share that call one with valid arguments",
            metrics(
                &[
                    &performance::CALL_METRICS[..],
                    &performance::ANSWER_METRICS[..],
                    &tool_calls::METRICS[..],
                ]
                .concat(),
            ),
            &["valid_tool_call_ratio", "tool_call_ratio"],
            Driver::ToolCalls,
        ),
        performance::<trace_replay::TraceReplayParams>(
            "trace_replay",
            "A recorded trace (Mooncake JSONL, BurstGPT CSV) replayed in open loop at its timestamps",
            trace_point,
            &[
                "requests_per_s",
                "goodput",
                "schedule_hash",
                "client_limited",
            ],
            Driver::TraceReplay,
        ),
        standard_quality(Standard::Gsm8k),
        standard_quality(Standard::Mmlu),
        standard_quality(Standard::Hellaswag),
        standard_quality(Standard::TruthfulQa),
        Facts {
            name: "custom",
            category: Category::QualityCustom,
            description: "Your own evaluation in YAML: items, a prompt template, a scorer, a threshold",
            schema: schema_of::<custom::CustomParams>(),
            metrics: metrics(&quality::METRICS),
            dynamic: Vec::new(),
            outputs: strings(&["accuracy", "scoring"]),
            driver: Driver::Custom,
        },
    ];
    facts.into_iter().map(BenchmarkInfo::from).collect()
}
