//! The simulator's `/metrics` page, in vLLM's names and with exactly known meanings, so a
//! scrape of it can be checked against what the simulator did:
//!
//! - `vllm:num_requests_waiting`: accepted requests waiting for a slot;
//!   `vllm:num_requests_running`: requests holding a slot (`max_concurrency` of them at most).
//! - `vllm:kv_cache_usage_perc`: tokens held by running requests (their prompt tokens plus the
//!   tokens sent so far) over `kv_cache_tokens`, at most 1 (the simulator never preempts, so
//!   `vllm:num_preemptions_total` stays 0).
//! - `vllm:prompt_tokens_total`: prompt tokens of requests that got a slot;
//!   `vllm:prefix_cache_queries_total` the same tokens, looked up in the prefix cache, and
//!   `vllm:prefix_cache_hits_total` those of them it served (0 with `prefix_cache: false`);
//!   `vllm:generation_tokens_total`: tokens sent; `vllm:request_success_total{finished_reason}`:
//!   requests whose last token was sent.
//! - Histograms, from the request's arrival (after its body was read and checked):
//!   `vllm:request_queue_time_seconds` until it got a slot, `vllm:time_to_first_token_seconds`
//!   until its first token was sent, `vllm:e2e_request_latency_seconds` until its last; with
//!   vLLM's bucket bounds.
//!
//! Requests refused with an error (bad body, too long, `error_rate`) are counted nowhere, as
//! on vLLM. A request whose client goes away leaves every gauge as if it had never come but
//! keeps the tokens it was sent in the counters.

use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// vLLM's bounds for time to first token, in seconds.
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
/// vLLM's bounds for request latencies (end to end, queue time), in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// Observations in fixed buckets.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    /// Observations at or below each bound (not cumulative; made so when written).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, seconds: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| seconds <= b) {
            self.counts[i] += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(&self.counts) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{bound:?}\"}} {cumulative}"
            );
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {:?}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// What the page reports.
#[derive(Debug)]
struct State {
    waiting: u64,
    running: u64,
    kv_tokens: u64,
    prompt_tokens: u64,
    prefix_hits: u64,
    generation_tokens: u64,
    finished_stop: u64,
    finished_length: u64,
    queue: Histogram,
    ttft: Histogram,
    e2e: Histogram,
}

/// The simulator's counters, shared by its requests.
#[derive(Debug)]
pub struct Metrics {
    model: String,
    kv_cache_tokens: u64,
    state: Mutex<State>,
}

impl Metrics {
    pub fn new(model: &str, kv_cache_tokens: u64) -> Self {
        Metrics {
            model: model.to_string(),
            kv_cache_tokens: kv_cache_tokens.max(1),
            state: Mutex::new(State {
                waiting: 0,
                running: 0,
                kv_tokens: 0,
                prompt_tokens: 0,
                prefix_hits: 0,
                generation_tokens: 0,
                finished_stop: 0,
                finished_length: 0,
                queue: Histogram::new(LATENCY_BUCKETS),
                ttft: Histogram::new(TTFT_BUCKETS),
                e2e: Histogram::new(LATENCY_BUCKETS),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request was accepted and waits for a slot.
    /// `cached_tokens` of its `prompt_tokens` came from the prefix cache.
    pub fn arrived(self: &Arc<Self>, prompt_tokens: u64, cached_tokens: u64) -> Tracked {
        self.lock().waiting += 1;
        Tracked {
            metrics: self.clone(),
            arrived: Instant::now(),
            prompt_tokens,
            cached_tokens,
            phase: Phase::Waiting,
        }
    }

    /// The page, in the text exposition format.
    pub fn render(&self) -> String {
        let s = self.lock();
        let labels = format!("engine=\"0\",model_name=\"{}\"", escape(&self.model));
        let mut out = String::with_capacity(8192);
        let mut one = |name: &str, kind: &str, value: String| {
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        };
        one("vllm:num_requests_running", "gauge", s.running.to_string());
        one("vllm:num_requests_waiting", "gauge", s.waiting.to_string());
        let usage = (s.kv_tokens as f64 / self.kv_cache_tokens as f64).min(1.0);
        one("vllm:kv_cache_usage_perc", "gauge", format!("{usage:?}"));
        one("vllm:num_preemptions_total", "counter", "0".into());
        one(
            "vllm:prompt_tokens_total",
            "counter",
            s.prompt_tokens.to_string(),
        );
        one(
            "vllm:prefix_cache_queries_total",
            "counter",
            s.prompt_tokens.to_string(),
        );
        one(
            "vllm:prefix_cache_hits_total",
            "counter",
            s.prefix_hits.to_string(),
        );
        one(
            "vllm:generation_tokens_total",
            "counter",
            s.generation_tokens.to_string(),
        );
        let _ = writeln!(out, "# TYPE vllm:request_success_total counter");
        for (reason, n) in [("stop", s.finished_stop), ("length", s.finished_length)] {
            let _ = writeln!(
                out,
                "vllm:request_success_total{{{labels},finished_reason=\"{reason}\"}} {n}"
            );
        }
        s.queue
            .write(&mut out, "vllm:request_queue_time_seconds", &labels);
        s.ttft
            .write(&mut out, "vllm:time_to_first_token_seconds", &labels);
        s.e2e
            .write(&mut out, "vllm:e2e_request_latency_seconds", &labels);
        out
    }
}

/// A label value escaped for the exposition format.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Waiting,
    /// Holding a slot and `held` tokens of KV cache; `sent` tokens so far.
    Running {
        held: u64,
        sent: u64,
    },
    Done,
}

/// One request's part in the metrics; dropping it before `finished` (the client went away)
/// takes the request out of the gauges.
#[derive(Debug)]
pub struct Tracked {
    metrics: Arc<Metrics>,
    arrived: Instant,
    prompt_tokens: u64,
    cached_tokens: u64,
    phase: Phase,
}

impl Tracked {
    /// It got a slot.
    pub fn started(&mut self) {
        if self.phase != Phase::Waiting {
            return;
        }
        let mut s = self.metrics.lock();
        s.waiting -= 1;
        s.running += 1;
        s.kv_tokens += self.prompt_tokens;
        s.prompt_tokens += self.prompt_tokens;
        s.prefix_hits += self.cached_tokens;
        s.queue.observe(self.arrived.elapsed().as_secs_f64());
        self.phase = Phase::Running {
            held: self.prompt_tokens,
            sent: 0,
        };
    }

    /// `n` more tokens were sent.
    pub fn sent(&mut self, n: u64) {
        let Phase::Running { held, sent } = self.phase else {
            return;
        };
        let mut s = self.metrics.lock();
        if sent == 0 && n > 0 {
            s.ttft.observe(self.arrived.elapsed().as_secs_f64());
        }
        s.generation_tokens += n;
        s.kv_tokens += n;
        self.phase = Phase::Running {
            held: held + n,
            sent: sent + n,
        };
    }

    /// Its last token was sent; `length` when it stopped at `max_tokens`.
    pub fn finished(&mut self, length: bool) {
        let Phase::Running { held, .. } = self.phase else {
            return;
        };
        let mut s = self.metrics.lock();
        s.running -= 1;
        s.kv_tokens -= held;
        if length {
            s.finished_length += 1;
        } else {
            s.finished_stop += 1;
        }
        s.e2e.observe(self.arrived.elapsed().as_secs_f64());
        self.phase = Phase::Done;
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut s = self.metrics.lock();
        match self.phase {
            Phase::Waiting => s.waiting -= 1,
            Phase::Running { held, .. } => {
                s.running -= 1;
                s.kv_tokens -= held;
            }
            Phase::Done => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::prometheus::{self, Limits};

    fn value(page: &prometheus::Page, name: &str) -> f64 {
        page.series(name)
            .next()
            .unwrap_or_else(|| panic!("{name} missing"))
            .value
    }

    #[test]
    fn the_page_follows_each_request_and_forgets_a_request_whose_client_left() {
        let m = Arc::new(Metrics::new("sim \"x\"", 100));
        let mut a = m.arrived(10, 8);
        let mut b = m.arrived(20, 0);
        let c = m.arrived(5, 0);
        a.started();
        b.started();
        a.sent(3);
        b.sent(1);
        let page = prometheus::parse(&m.render(), Limits::default()).unwrap();
        assert_eq!(value(&page, "vllm:num_requests_running"), 2.0);
        assert_eq!(value(&page, "vllm:num_requests_waiting"), 1.0);
        assert_eq!(value(&page, "vllm:kv_cache_usage_perc"), 0.34);
        assert_eq!(value(&page, "vllm:prompt_tokens_total"), 30.0);
        // Both slotted requests were looked up; 8 of a's 10 tokens came from the cache.
        assert_eq!(value(&page, "vllm:prefix_cache_queries_total"), 30.0);
        assert_eq!(value(&page, "vllm:prefix_cache_hits_total"), 8.0);
        assert_eq!(value(&page, "vllm:generation_tokens_total"), 4.0);
        assert_eq!(value(&page, "vllm:time_to_first_token_seconds_count"), 2.0);
        assert_eq!(
            page.series("vllm:num_requests_running")
                .next()
                .unwrap()
                .label("model_name"),
            Some("sim \"x\"")
        );
        a.finished(true);
        drop(a);
        drop(b); // its client went away mid-answer
        drop(c); // and this one's before it got a slot
        let page = prometheus::parse(&m.render(), Limits::default()).unwrap();
        assert_eq!(value(&page, "vllm:num_requests_running"), 0.0);
        assert_eq!(value(&page, "vllm:num_requests_waiting"), 0.0);
        assert_eq!(value(&page, "vllm:kv_cache_usage_perc"), 0.0);
        assert_eq!(value(&page, "vllm:generation_tokens_total"), 4.0);
        assert_eq!(value(&page, "vllm:e2e_request_latency_seconds_count"), 1.0);
        let finished: Vec<_> = page
            .series("vllm:request_success_total")
            .map(|s| (s.label("finished_reason").unwrap().to_string(), s.value))
            .collect();
        assert_eq!(
            finished,
            [("stop".to_string(), 0.0), ("length".to_string(), 1.0)]
        );
        // Buckets are cumulative and end with every observation.
        let buckets: Vec<f64> = page
            .series("vllm:time_to_first_token_seconds_bucket")
            .map(|s| s.value)
            .collect();
        assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(buckets.last(), Some(&2.0));
    }
}
