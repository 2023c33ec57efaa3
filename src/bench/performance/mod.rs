//! Performance benchmarks over the shared load generator, and the metrics they all report.

pub mod conversation;
pub mod embeddings;
pub mod load;
pub mod long_context;
pub mod memory;
pub mod structured;
pub mod sweep;
pub mod throughput;
pub mod tool_calls;
pub mod trace_replay;
pub mod warmup_analysis;

use serde_json::json;

use super::Outcome;
use super::loadgen::LoadReport;
use super::stats::Latencies;

/// Calls a benchmark made outside the load generator (embeddings, structured output): how
/// many succeeded and failed, with a few distinct error messages.
#[derive(Debug, Default)]
pub struct Calls {
    pub ok: u64,
    pub failed: u64,
    errors: Vec<String>,
}

/// Distinct error messages a result keeps.
pub const ERROR_EXAMPLES: usize = 5;

impl Calls {
    /// One call failed with `error`.
    pub fn fail(&mut self, error: &impl std::fmt::Display) {
        self.failed += 1;
        let message = error.to_string();
        if self.errors.len() < ERROR_EXAMPLES && !self.errors.contains(&message) {
            self.errors.push(message);
        }
    }

    /// The outcome so far: `requests`, `errors` and `error_rate` of `requested` calls,
    /// passed when none failed.
    pub fn outcome(self, requested: u64) -> Outcome {
        let mut outcome = Outcome {
            passed: self.failed == 0,
            errors: self.errors,
            ..Outcome::default()
        };
        outcome.set("requests", self.ok as f64);
        outcome.set("errors", self.failed as f64);
        outcome.set("error_rate", self.failed as f64 / requested.max(1) as f64);
        outcome
    }
}

/// What a closed loop of one-shot chat requests got back: the call tally, latencies and
/// output tokens of the answers.
#[derive(Debug, Default)]
pub struct Answers {
    pub calls: Calls,
    pub ttft: Latencies,
    pub e2e: Latencies,
    pub output_tokens: u64,
}

/// Sends `requests` requests built by `request`, `concurrency` in flight, and hands each
/// answer to `judge` as it comes; progress goes to the context's tally.
pub async fn answer_each(
    ctx: &super::BenchContext<'_>,
    requests: u64,
    concurrency: u32,
    request: impl Fn(u64) -> crate::engine::generation::GenerationRequest,
    mut judge: impl FnMut(&crate::engine::generation::GenerationResult),
) -> Answers {
    use futures_util::StreamExt;
    let mut out = Answers::default();
    let mut answers = futures_util::stream::iter(0..requests)
        .map(|i| {
            let req = request(i);
            async move { ctx.engine.generate(&req).await }
        })
        .buffer_unordered(concurrency as usize);
    while let Some(answer) = answers.next().await {
        match answer {
            Ok(r) => {
                out.calls.ok += 1;
                out.output_tokens += r.completion_tokens;
                if let Some(t) = r.ttft {
                    out.ttft.record(t);
                }
                out.e2e.record(r.e2e);
                judge(&r);
            }
            Err(e) => out.calls.fail(&e),
        }
        ctx.tally
            .set(out.calls.ok + out.calls.failed, Some(requests));
    }
    out
}

impl Answers {
    /// The outcome of `requested` calls: [`Calls::outcome`], `output_tokens_mean` and the
    /// TTFT and e2e medians and 99th percentiles.
    pub fn outcome(self, requested: u64) -> Outcome {
        let ok = self.calls.ok;
        let mut outcome = self.calls.outcome(requested);
        if ok > 0 {
            outcome.set("output_tokens_mean", self.output_tokens as f64 / ok as f64);
        }
        for (name, lat) in [("ttft", &self.ttft), ("e2e", &self.e2e)] {
            if let Some(s) = lat.summary() {
                outcome.set(&format!("{name}_p50_ms"), s.p50);
                outcome.set(&format!("{name}_p99_ms"), s.p99);
            }
        }
        outcome
    }
}

/// The metrics [`Answers::outcome`] sets beside [`CALL_METRICS`].
pub const ANSWER_METRICS: [(&str, &str, bool); 5] = [
    ("ttft_p50_ms", "ms", false),
    ("ttft_p99_ms", "ms", false),
    ("e2e_p50_ms", "ms", false),
    ("e2e_p99_ms", "ms", false),
    ("output_tokens_mean", "tokens", false),
];

/// The metrics [`Calls::outcome`] sets (name, unit, whether higher is better).
pub const CALL_METRICS: [(&str, &str, bool); 3] = [
    ("requests", "count", true),
    ("errors", "count", false),
    ("error_rate", "ratio", false),
];

/// The five latency quantities and their names.
pub const LATENCIES: [&str; 5] = ["ttft", "ttfo", "itl", "tpot", "e2e"];
/// The statistics reported for each.
pub const STATISTICS: [&str; 6] = ["mean", "p50", "p90", "p95", "p99", "max"];

/// Whether `name` is one of the latency statistics (`ttft_p99_ms`, `e2e_mean_ms`, …).
pub fn is_latency_metric(name: &str) -> bool {
    name.strip_suffix("_ms")
        .and_then(|n| n.rsplit_once('_'))
        .is_some_and(|(q, stat)| LATENCIES.contains(&q) && STATISTICS.contains(&stat))
}

fn latency<'a>(r: &'a LoadReport, name: &str) -> &'a Latencies {
    match name {
        "ttft" => &r.ttft,
        "ttfo" => &r.ttfo,
        "itl" => &r.itl,
        "tpot" => &r.tpot,
        _ => &r.e2e,
    }
}

/// Sets the latency, throughput, token and client metrics of a load run, and its details.
pub fn report_load(outcome: &mut Outcome, r: &LoadReport) {
    for name in LATENCIES {
        if let Some(s) = latency(r, name).summary() {
            for (stat, value) in STATISTICS
                .iter()
                .zip([s.mean, s.p50, s.p90, s.p95, s.p99, s.max])
            {
                outcome.set(&format!("{name}_{stat}_ms"), value);
            }
        }
    }
    outcome.set("requests", r.ok as f64);
    outcome.set("errors", r.errors as f64);
    outcome.set("overloaded_requests", r.overloaded as f64);
    outcome.set("error_rate", r.error_rate());
    outcome.set("requests_per_s", r.requests_per_s());
    outcome.set("output_tokens_per_s", r.output_tokens_per_s());
    outcome.set(
        "output_tokens_per_s_per_request",
        r.per_request_tokens_per_s(),
    );
    if r.ok > 0 {
        outcome.set("output_tokens_mean", r.output_tokens as f64 / r.ok as f64);
        outcome.set("prompt_tokens_mean", r.prompt_tokens as f64 / r.ok as f64);
    }
    let sent = r.measured() + r.excluded;
    if sent > 0 {
        outcome.set(
            "client_cpu_ms_per_request",
            r.cpu.as_secs_f64() * 1e3 / sent as f64,
        );
        if let Some(engine) = r.engine_cpu {
            outcome.set(
                "engine_cpu_ms_per_request",
                engine.as_secs_f64() * 1e3 / sent as f64,
            );
        }
    }
    if let Some(lag) = r.send_lag.summary() {
        outcome.set("send_lag_p50_ms", lag.p50);
        outcome.set("send_lag_p99_ms", lag.p99);
        outcome.set("send_lag_max_ms", lag.max);
    }
    let wall = r.wall.as_secs_f64();
    if wall > 0.0 {
        outcome.set("client_cpu_cores", r.cpu.as_secs_f64() / wall);
        outcome.set("client_loop_busy", r.loop_busy.as_secs_f64() / wall);
    }
    mark_client_limits(outcome, &client_limits(r));
    outcome.detail(
        "requests",
        json!({
            "ok": r.ok, "errors": r.errors, "excluded": r.excluded,
            "window_s": r.window.as_secs_f64(), "wall_s": r.wall.as_secs_f64(),
        }),
    );
    if r.chunk_counted > 0 {
        outcome.detail(
            "token_counts",
            format!(
                "{} of {} requests had no server usage; their output tokens were counted as chunks (exact only at one token per chunk)",
                r.chunk_counted, r.ok
            ),
        );
    } else {
        outcome.detail("token_counts", "server usage");
    }
    if !r.error_examples.is_empty() {
        outcome.detail("error_examples", &r.error_examples);
        for (message, n) in &r.error_examples {
            outcome.errors.push(format!("{n}× {message}"));
        }
    }
    outcome.samples = Some(r.samples.clone());
    outcome.passed = r.ok > 0;
    if r.ok == 0 {
        outcome
            .errors
            .insert(0, "no request succeeded, so nothing was measured".into());
    }
}

/// Above this share of its thread, the load loop (or of the cores, kitt's process) was the
/// bottleneck.
const SATURATED: f64 = 0.9;
/// Open-loop sends later than this (p99) mean the client did not keep the schedule.
const LATE_SEND_MS: f64 = 1.0;
/// An uncapped open loop below this share of its scheduled rate fell behind.
const RATE_KEPT: f64 = 0.99;

/// Why kitt's own client, not the server, limited a load run; empty when it did not.
pub fn client_limits(r: &LoadReport) -> Vec<String> {
    let mut why = Vec::new();
    let wall = r.wall.as_secs_f64();
    if wall <= 0.0 || r.measured() == 0 {
        return why;
    }
    let busy = r.loop_busy.as_secs_f64() / wall;
    if busy >= SATURATED {
        why.push(format!(
            "the load loop was busy {:.0} % of the run: requests waited for the client",
            busy * 100.0
        ));
    }
    let cores = r.cpu.as_secs_f64() / wall;
    if cores >= SATURATED * r.cores {
        why.push(format!(
            "kitt's process used {cores:.2} of the {} cores it may use",
            r.cores
        ));
    }
    // Closed loops send when a slot frees, so only an open loop has a schedule to keep.
    if let Some(lag) = r.send_lag.summary().filter(|_| r.open_loop)
        && lag.p99 > LATE_SEND_MS
    {
        why.push(format!(
            "sends were late: send lag p99 {:.3} ms (over {LATE_SEND_MS} ms)",
            lag.p99
        ));
    }
    let (asked, achieved) = (r.scheduled_rate(), r.send_rate());
    if r.open_loop && !r.capped && asked > 0.0 && achieved < RATE_KEPT * asked {
        why.push(format!(
            "sent {achieved:.1} requests/s of the {asked:.1} scheduled"
        ));
    }
    why
}

/// Records whether the client limited the run: the `client_limited` metric (1 or 0), the
/// output of the same name, and the reasons in the details.
pub fn mark_client_limits(outcome: &mut Outcome, why: &[String]) {
    let limited = !why.is_empty();
    outcome.set("client_limited", if limited { 1.0 } else { 0.0 });
    outcome
        .outputs
        .insert("client_limited".into(), json!(limited));
    if limited {
        outcome.detail("client_limited", why);
    }
}

/// The metric names `report_load` may set, with units and directions, for the catalog.
pub fn load_metric_names() -> Vec<(String, &'static str, bool)> {
    let mut names = Vec::new();
    for m in LATENCIES {
        for s in STATISTICS {
            names.push((format!("{m}_{s}_ms"), "ms", false));
        }
    }
    for (n, unit, higher) in [
        ("requests", "count", true),
        ("errors", "count", false),
        ("overloaded_requests", "count", false),
        ("error_rate", "ratio", false),
        ("requests_per_s", "requests/s", true),
        ("output_tokens_per_s", "tokens/s", true),
        ("output_tokens_per_s_per_request", "tokens/s", true),
        ("output_tokens_mean", "tokens", true),
        ("prompt_tokens_mean", "tokens", true),
        ("client_cpu_ms_per_request", "ms", false),
        ("engine_cpu_ms_per_request", "ms", false),
        ("send_lag_p50_ms", "ms", false),
        ("send_lag_p99_ms", "ms", false),
        ("send_lag_max_ms", "ms", false),
        ("client_cpu_cores", "cores", false),
        ("client_loop_busy", "ratio", false),
        ("client_limited", "flag", false),
    ] {
        names.push((n.to_string(), unit, higher));
    }
    names
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A ten-second run of 1,000 requests on one core that kept up with everything.
    fn relaxed() -> LoadReport {
        let mut r = LoadReport::default();
        r.ok = 1000;
        r.wall = Duration::from_secs(10);
        r.cpu = Duration::from_secs(1);
        r.cores = 1.0;
        r.loop_busy = Duration::from_secs(1);
        r.send_span = Duration::from_secs(10);
        r.scheduled_span = Duration::from_secs(10);
        r.open_loop = true;
        for _ in 0..1000 {
            r.send_lag.record(Duration::from_micros(20));
        }
        r
    }

    #[test]
    fn a_client_with_room_is_not_limited() {
        assert_eq!(client_limits(&relaxed()), Vec::<String>::new());
        let mut o = Outcome::default();
        mark_client_limits(&mut o, &[]);
        assert_eq!(o.get("client_limited"), Some(0.0));
        assert_eq!(o.outputs["client_limited"], json!(false));
    }

    #[test]
    fn each_sign_of_a_saturated_client_is_named() {
        let mut busy = relaxed();
        busy.loop_busy = Duration::from_millis(9500);
        let why = client_limits(&busy);
        assert!(why.len() == 1 && why[0].contains("busy 95 %"), "{why:?}");

        let mut cpu = relaxed();
        cpu.cpu = Duration::from_millis(9200);
        let why = client_limits(&cpu);
        assert!(
            why.len() == 1 && why[0].contains("0.92 of the 1 cores"),
            "{why:?}"
        );

        let mut late = relaxed();
        for _ in 0..100 {
            late.send_lag.record(Duration::from_millis(3));
        }
        let why = client_limits(&late);
        assert!(
            why.len() == 1 && why[0].contains("send lag p99 3.0"),
            "{why:?}"
        );

        let mut behind = relaxed();
        behind.send_span = Duration::from_secs(11);
        let why = client_limits(&behind);
        assert!(
            why.len() == 1 && why[0].contains("requests/s of the 99.9"),
            "{why:?}"
        );
        // A capped open loop may fall behind its schedule by design: that is queueing.
        behind.capped = true;
        assert!(client_limits(&behind).is_empty());

        let mut o = Outcome::default();
        mark_client_limits(&mut o, &client_limits(&busy));
        assert_eq!(o.get("client_limited"), Some(1.0));
        assert_eq!(o.outputs["client_limited"], json!(true));
        assert!(o.details["client_limited"][0].as_str().is_some());
    }
}
