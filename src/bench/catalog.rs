//! The built-in benchmarks' static facts: params schemas and the metrics they report.

use serde_json::{Map, Value, json};

use crate::registry::{BenchmarkInfo, Category, Direction, MetricInfo};
use crate::suite::model::DURATION_PATTERN;

fn metric(name: &str, unit: &str, direction: Direction) -> MetricInfo {
    MetricInfo {
        name: name.into(),
        unit: unit.into(),
        direction,
    }
}

/// Latency metrics in milliseconds: every statistic of ttft, ttfo, itl, tpot and e2e.
fn latency_metrics() -> Vec<MetricInfo> {
    let mut metrics = Vec::new();
    for m in ["ttft", "ttfo", "itl", "tpot", "e2e"] {
        for s in ["mean", "p50", "p90", "p95", "p99", "max"] {
            metrics.push(metric(&format!("{m}_{s}_ms"), "ms", Direction::Lower));
        }
    }
    metrics.push(metric("output_tokens_per_s", "tokens/s", Direction::Higher));
    metrics.push(metric(
        "output_tokens_per_s_per_request",
        "tokens/s",
        Direction::Higher,
    ));
    metrics.push(metric("requests_per_s", "requests/s", Direction::Higher));
    metrics.push(metric("error_rate", "ratio", Direction::Lower));
    metrics
}

fn quality_metrics() -> Vec<MetricInfo> {
    vec![
        metric("accuracy", "ratio", Direction::Higher),
        metric("accuracy_stderr", "ratio", Direction::Lower),
        metric("items", "count", Direction::Higher),
        metric("unparsable", "count", Direction::Lower),
        metric("errored", "count", Direction::Lower),
    ]
}

/// Schema of an SLO map: metric name → upper bound.
fn slo_schema() -> Value {
    json!({
        "type": "object",
        "description": "Service-level objectives: metric name → highest accepted value.",
        "additionalProperties": {"type": "number", "minimum": 0}
    })
}

/// Params shared by the load-generating benchmarks.
fn workload_properties() -> Map<String, Value> {
    let v = json!({
        "input_tokens": {"type": "integer", "minimum": 1, "default": 256, "description": "Mean synthetic prompt length in tokens."},
        "output_tokens": {"type": "integer", "minimum": 1, "default": 128, "description": "Mean requested output length in tokens."},
        "length_spread": {"type": "number", "minimum": 0, "maximum": 1, "default": 0, "description": "Relative spread of lengths around the means."},
        "dataset": {"type": "string", "description": "JSONL/JSON/CSV prompts instead of synthetic ones."},
        "seed": {"type": "integer", "minimum": 0, "default": 0},
        "endpoint": {"type": "string", "enum": ["chat", "completions"], "default": "chat"}
    });
    v.as_object().cloned().unwrap_or_default()
}

fn object_schema(mut properties: Map<String, Value>, extra: Value) -> Value {
    if let Some(more) = extra.as_object() {
        properties.extend(more.clone());
    }
    json!({"type": "object", "additionalProperties": false, "properties": properties})
}

fn quality(name: &str, description: &str, extra: Value) -> BenchmarkInfo {
    let properties = json!({
        "limit": {"type": "integer", "minimum": 1, "description": "Score at most this many items."},
        "seed": {"type": "integer", "minimum": 0, "default": 0, "description": "Seed of the item sample."},
        "few_shot": {"type": "integer", "minimum": 0, "maximum": 25},
        "dataset": {"type": "string", "description": "Local file of items instead of the published set."}
    });
    BenchmarkInfo {
        name: name.into(),
        version: "1.0.0".into(),
        category: Category::QualityStandard,
        description: description.into(),
        params_schema: object_schema(properties.as_object().cloned().unwrap_or_default(), extra),
        metrics: quality_metrics(),
        dynamic_metric_prefixes: Vec::new(),
        outputs: vec!["accuracy".into()],
    }
}

/// The built-in benchmarks.
pub fn builtin_benchmarks() -> Vec<BenchmarkInfo> {
    let duration = json!({"type": "string", "pattern": DURATION_PATTERN});
    let mut load_metrics = latency_metrics();
    load_metrics.extend([
        metric("achieved_rate", "requests/s", Direction::Higher),
        metric("goodput", "requests/s", Direction::Higher),
        metric("send_lag_p99_ms", "ms", Direction::Lower),
        metric("concurrency_mean", "requests", Direction::Higher),
    ]);
    vec![
        BenchmarkInfo {
            name: "throughput".into(),
            version: "1.0.0".into(),
            category: Category::Performance,
            description: "Closed-loop throughput at a fixed concurrency".into(),
            params_schema: object_schema(
                workload_properties(),
                json!({
                    "requests": {"type": "integer", "minimum": 1, "default": 100},
                    "concurrency": {"type": "integer", "minimum": 1, "default": 8}
                }),
            ),
            metrics: latency_metrics(),
            dynamic_metric_prefixes: Vec::new(),
            outputs: vec!["requests_per_s".into(), "output_tokens_per_s".into()],
        },
        BenchmarkInfo {
            name: "latency".into(),
            version: "1.0.0".into(),
            category: Category::Performance,
            description: "Per-request latency, one request at a time".into(),
            params_schema: object_schema(
                workload_properties(),
                json!({"requests": {"type": "integer", "minimum": 1, "default": 20}}),
            ),
            metrics: latency_metrics(),
            dynamic_metric_prefixes: Vec::new(),
            outputs: vec!["ttft_p50_ms".into(), "e2e_p50_ms".into()],
        },
        BenchmarkInfo {
            name: "load".into(),
            version: "1.0.0".into(),
            category: Category::Performance,
            description: "One load point: closed loop at a concurrency or open loop at a rate"
                .into(),
            params_schema: object_schema(
                workload_properties(),
                json!({
                    "concurrency": {"type": "integer", "minimum": 1, "description": "Closed loop: streams in flight."},
                    "rate": {"type": "number", "exclusiveMinimum": 0, "description": "Open loop: requests per second."},
                    "arrival": {"type": "string", "enum": ["poisson", "gamma", "constant"], "default": "poisson"},
                    "burstiness": {"type": "number", "exclusiveMinimum": 0, "default": 1},
                    "max_concurrency": {"type": "integer", "minimum": 1, "description": "Open loop: queue beyond this many in flight."},
                    "requests": {"type": "integer", "minimum": 1},
                    "duration": duration,
                    "cooldown": duration,
                    "slo": slo_schema()
                }),
            ),
            metrics: load_metrics.clone(),
            dynamic_metric_prefixes: Vec::new(),
            outputs: vec!["achieved_rate".into(), "goodput".into()],
        },
        BenchmarkInfo {
            name: "sweep".into(),
            version: "1.0.0".into(),
            category: Category::Performance,
            description:
                "Load points over concurrency or rate, and the highest one that meets the SLOs"
                    .into(),
            params_schema: object_schema(
                workload_properties(),
                json!({
                    "over": {"type": "string", "enum": ["concurrency", "rate"]},
                    "values": {"type": "array", "minItems": 1, "items": {"type": "number", "exclusiveMinimum": 0}},
                    "duration": duration,
                    "requests": {"type": "integer", "minimum": 1},
                    "slo": slo_schema()
                }),
            ),
            metrics: vec![
                metric("max_rate", "requests/s", Direction::Higher),
                metric("max_concurrency", "requests", Direction::Higher),
                metric("points", "count", Direction::Higher),
            ],
            dynamic_metric_prefixes: Vec::new(),
            outputs: vec!["max_rate".into(), "max_concurrency".into()],
        },
        quality(
            "gsm8k",
            "Grade-school math word problems, scored on the final number",
            json!({}),
        ),
        quality(
            "mmlu",
            "Massive multitask multiple choice, scored on the answer letter",
            json!({"subjects": {"type": "array", "items": {"type": "string"}}}),
        ),
    ]
}
