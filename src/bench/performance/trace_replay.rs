//! `trace_replay`: a recorded trace (Mooncake or BurstGPT) sent in open loop at its own
//! timestamps (scaled), with its lengths and, for Mooncake, its shared prompt blocks.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::load::{Measured, report_point};
use crate::bench::loadgen::{self, LoadSpec, Pattern, RequestSlo, Stop};
use crate::bench::schedule::Schedule;
use crate::bench::trace::{self, TraceFormat, TraceRequests};
use crate::bench::workload::EndpointParam;
use crate::bench::{BenchContext, BenchError, Outcome, params};

/// Params of `trace_replay`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceReplayParams {
    /// The trace file, relative to the suite's directory.
    pub trace: String,
    /// `mooncake` (JSONL) or `burstgpt` (CSV); by default from the extension.
    #[serde(default)]
    pub format: Option<TraceFormat>,
    /// Multiplies the trace's gaps: 0.5 replays it twice as fast, 2 at half speed.
    #[serde(default = "one")]
    #[schemars(range(min = 0.000001, max = 1_000_000))]
    pub time_scale: f64,
    /// Prompt tokens each Mooncake hash id stands for (Mooncake's blocks are 512).
    #[serde(default = "default_block_tokens")]
    #[schemars(range(min = 1, max = 65_536))]
    pub block_tokens: u32,
    /// Replay only the trace's first requests.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_requests: Option<u64>,
    /// Beyond this many in flight, sends queue (and the wait counts as latency).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_concurrency: Option<u32>,
    /// The API the requests go to.
    #[serde(default)]
    pub endpoint: EndpointParam,
    /// Per-request objectives for goodput.
    #[serde(default)]
    pub slo: RequestSlo,
}

fn one() -> f64 {
    1.0
}
fn default_block_tokens() -> u32 {
    512
}

/// The metrics `trace_replay` adds to the load point's (name, unit, whether higher is better).
pub const METRICS: [(&str, &str, bool); 3] = [
    ("trace_requests", "count", true),
    ("trace_skipped_rows", "count", false),
    ("trace_span_s", "s", false),
];

pub async fn execute(ctx: &BenchContext<'_>, params: &Value) -> Result<Outcome, BenchError> {
    let p: TraceReplayParams = params::parse(params)?;
    let path: PathBuf = ctx.base_dir.join(&p.trace);
    let format = match p.format.or_else(|| TraceFormat::of(&path)) {
        Some(f) => f,
        None => {
            return Err(BenchError::Params {
                message: format!(
                    "cannot tell the trace's format from `{}`; set `format: mooncake|burstgpt`",
                    p.trace
                ),
                pointer: Some("/format".into()),
            });
        }
    };
    let trace = trace::read(&path, format, p.max_requests).map_err(|e| BenchError::Params {
        message: e.to_string(),
        pointer: Some("/trace".into()),
    })?;
    let offsets: Vec<_> = trace
        .entries
        .iter()
        .map(|e| e.at.mul_f64(p.time_scale))
        .collect();
    let span = offsets.last().copied().unwrap_or_default();
    let requests = TraceRequests {
        trace: &trace,
        block_tokens: p.block_tokens,
        salt: ctx.salt,
        endpoint: p.endpoint.into(),
        sampling: ctx.sampling.clone(),
    };
    let spec = LoadSpec {
        pattern: Pattern::Open {
            schedule: Schedule { offsets },
            max_concurrency: p.max_concurrency,
        },
        stop: Stop::Requests(trace.entries.len() as u64),
        warmup: Default::default(),
        cooldown: Default::default(),
        slo: p.slo.clone(),
    };
    ctx.say(&format!(
        "replaying {} requests of {} over {span:.1?}{}",
        trace.entries.len(),
        trace.name,
        if trace.skipped > 0 {
            format!(" ({} rows without a request left out)", trace.skipped)
        } else {
            String::new()
        }
    ));
    let report = loadgen::run(ctx.engine, &requests, &spec, &ctx.tally).await;
    let measured = Measured {
        report,
        schedule_hash: requests.digest(p.time_scale),
        expected_prefix_hit_rate: requests.expected_prefix_hit_rate(),
    };
    let mut outcome = Outcome::default();
    report_point(&mut outcome, &measured);
    outcome.set("trace_requests", trace.entries.len() as f64);
    outcome.set("trace_skipped_rows", trace.skipped as f64);
    outcome.set("trace_span_s", span.as_secs_f64());
    let prompt: u64 = trace
        .entries
        .iter()
        .map(|e| u64::from(e.input_tokens))
        .sum();
    let answer: u64 = trace
        .entries
        .iter()
        .map(|e| u64::from(e.output_tokens))
        .sum();
    outcome.detail(
        "trace",
        json!({"file": trace.name, "format": format!("{format:?}").to_lowercase(),
               "requests": trace.entries.len(), "skipped_rows": trace.skipped,
               "prompt_tokens": prompt, "output_tokens": answer,
               "time_scale": p.time_scale, "block_tokens": p.block_tokens}),
    );
    Ok(outcome)
}
