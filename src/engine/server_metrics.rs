//! Where each engine serves its Prometheus metrics and which of its series mean what in
//! kitt's one vocabulary (running and waiting requests, KV-cache use, token counters, the
//! server's latency histograms): profile data, read by the telemetry sampler.

/// How a KV-cache usage gauge is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// 0 to 1.
    Ratio,
    /// 0 to 100.
    Percent,
}

/// How an engine counts prefix-cache use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixCache {
    /// Counters of prompt tokens looked up and of those found (vLLM).
    QueriesAndHits {
        queries: &'static str,
        hits: &'static str,
    },
    /// Counters of prompt tokens computed and of those reused (llama.cpp): the lookups are
    /// their sum.
    ComputedAndCached {
        computed: &'static str,
        cached: &'static str,
    },
}

/// An engine's series names for kitt's canonical quantities; `None` where it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricNames {
    /// The page's path on the engine's base URL.
    pub path: &'static str,
    /// A `config:` switch that must be `true` for the engine to serve the page (llama.cpp
    /// `metrics`, SGLang `metrics`); `None` when it always does.
    pub enabled_by: Option<&'static str>,
    /// Gauge: requests being generated.
    pub running: Option<&'static str>,
    /// Gauge: requests waiting for a slot.
    pub waiting: Option<&'static str>,
    /// Gauge: share of the KV cache in use.
    pub kv_cache_usage: Option<(&'static str, Scale)>,
    /// Counter: requests preempted (their KV cache taken back).
    pub preemptions: Option<&'static str>,
    pub prefix_cache: Option<PrefixCache>,
    /// Counter: prompt tokens processed.
    pub prompt_tokens: Option<&'static str>,
    /// Counter: tokens generated.
    pub generation_tokens: Option<&'static str>,
    /// Histogram families (without `_bucket`), in seconds.
    pub ttft: Option<&'static str>,
    pub tpot: Option<&'static str>,
    pub e2e: Option<&'static str>,
    pub queue_time: Option<&'static str>,
}

/// A profile with nothing mapped, for engines to override.
pub const NOTHING_MAPPED: MetricNames = MetricNames {
    path: "/metrics",
    enabled_by: None,
    running: None,
    waiting: None,
    kv_cache_usage: None,
    preemptions: None,
    prefix_cache: None,
    prompt_tokens: None,
    generation_tokens: None,
    ttft: None,
    tpot: None,
    e2e: None,
    queue_time: None,
};

/// Whether and where an engine serves metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerMetrics {
    Served(&'static MetricNames),
    /// It serves none; why, in words for the result.
    None(&'static str),
}

/// vLLM's names (`vllm/v1/metrics/loggers.py`), which the simulator also serves.
pub const VLLM: MetricNames = MetricNames {
    running: Some("vllm:num_requests_running"),
    waiting: Some("vllm:num_requests_waiting"),
    kv_cache_usage: Some(("vllm:kv_cache_usage_perc", Scale::Ratio)),
    preemptions: Some("vllm:num_preemptions_total"),
    prefix_cache: Some(PrefixCache::QueriesAndHits {
        queries: "vllm:prefix_cache_queries_total",
        hits: "vllm:prefix_cache_hits_total",
    }),
    prompt_tokens: Some("vllm:prompt_tokens_total"),
    generation_tokens: Some("vllm:generation_tokens_total"),
    ttft: Some("vllm:time_to_first_token_seconds"),
    tpot: Some("vllm:inter_token_latency_seconds"),
    e2e: Some("vllm:e2e_request_latency_seconds"),
    queue_time: Some("vllm:request_queue_time_seconds"),
    ..NOTHING_MAPPED
};

/// llama-server's names (`tools/server/server-context.cpp`, shown with `--metrics`).
pub const LLAMA_CPP: MetricNames = MetricNames {
    enabled_by: Some("metrics"),
    running: Some("llamacpp:requests_processing"),
    waiting: Some("llamacpp:requests_deferred"),
    prefix_cache: Some(PrefixCache::ComputedAndCached {
        computed: "llamacpp:prompt_tokens_total",
        cached: "llamacpp:prompt_tokens_cached_total",
    }),
    prompt_tokens: Some("llamacpp:prompt_tokens_total"),
    generation_tokens: Some("llamacpp:tokens_predicted_total"),
    ..NOTHING_MAPPED
};

/// SGLang's names (`sglang/srt/observability/metrics_collector.py` in the 0.5.23 wheel),
/// served with `--enable-metrics` on the API port. Its prompt-token counter counts every
/// prompt token and its cached-token counter those the radix cache served (summed over the
/// `cache_source` label), so they are the prefix cache's queries and hits.
pub const SGLANG: MetricNames = MetricNames {
    enabled_by: Some("metrics"),
    running: Some("sglang:num_running_reqs"),
    waiting: Some("sglang:num_queue_reqs"),
    kv_cache_usage: Some(("sglang:token_usage", Scale::Ratio)),
    preemptions: Some("sglang:num_retracted_requests_total"),
    prefix_cache: Some(PrefixCache::QueriesAndHits {
        queries: "sglang:prompt_tokens_total",
        hits: "sglang:cached_tokens_total",
    }),
    prompt_tokens: Some("sglang:prompt_tokens_total"),
    generation_tokens: Some("sglang:generation_tokens_total"),
    ttft: Some("sglang:time_to_first_token_seconds"),
    tpot: Some("sglang:inter_token_latency_seconds"),
    e2e: Some("sglang:e2e_request_latency_seconds"),
    queue_time: Some("sglang:queue_time_seconds"),
    ..NOTHING_MAPPED
};

/// TGI's names (`router/src/server.rs`, `validation.rs`, `backends/v3/src/queue.rs` at
/// v3.3.7), always served on the API port (its `--prometheus-port` exporter is never run).
/// It has no KV-cache, preemption, prefix-cache or TTFT series and no token counters: the
/// token figures are the `_sum` of its per-request length histograms (the prompt one also
/// counts requests that failed after validation), and its time per token is inference time
/// over generated tokens, prefill included.
pub const TGI: MetricNames = MetricNames {
    running: Some("tgi_batch_current_size"),
    waiting: Some("tgi_queue_size"),
    prompt_tokens: Some("tgi_request_input_length_sum"),
    generation_tokens: Some("tgi_request_generated_tokens_sum"),
    tpot: Some("tgi_request_mean_time_per_token_duration"),
    e2e: Some("tgi_request_duration"),
    queue_time: Some("tgi_request_queue_duration"),
    ..NOTHING_MAPPED
};

/// The names a suite's `telemetry: metrics:` says an engine's page uses.
pub fn named(naming: crate::suite::model::MetricsNaming) -> &'static MetricNames {
    use crate::suite::model::MetricsNaming;
    match naming {
        MetricsNaming::Vllm => &VLLM,
        MetricsNaming::Sglang => &SGLANG,
        MetricsNaming::Tgi => &TGI,
        MetricsNaming::LlamaCpp => &LLAMA_CPP,
    }
}
