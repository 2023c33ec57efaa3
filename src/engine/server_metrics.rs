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
