//! The load generator every performance benchmark shares: closed loop (N streams) or open
//! loop (a precomputed schedule, optionally capped), by count or duration, measuring latency
//! from the scheduled send time and recording how late each send was.
//!
//! All requests of a run are futures polled by one task (no spawning, no locks): the
//! generator's cost per request stays small and the engine can be borrowed.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::samples::Sample;
use super::schedule::Schedule;
use super::stats::Latencies;
use super::workload::Workload;
use crate::engine::RunningEngine;
use crate::engine::client::ClientError;
use crate::engine::generation::{GenerationRequest, GenerationResult};

/// How requests are released.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// `concurrency` streams, each sending its next request when the last one ends.
    Closed { concurrency: u32 },
    /// Sends at the schedule's offsets; beyond `max_concurrency` in flight, requests queue.
    Open {
        schedule: Schedule,
        max_concurrency: Option<u32>,
    },
}

/// When a run ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    Requests(u64),
    Duration(Duration),
}

/// Per-request service-level objectives; a request meeting all of them counts for goodput.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestSlo {
    /// Highest accepted time to first token, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Highest accepted time to first visible output, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfo_ms: Option<f64>,
    /// Highest accepted time per output token, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_ms: Option<f64>,
    /// Highest accepted gap between two chunks, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_ms: Option<f64>,
    /// Highest accepted end-to-end latency, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<f64>,
}

/// One load run's settings.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub pattern: Pattern,
    pub stop: Stop,
    /// Requests scheduled this early in the run are sent but not measured.
    pub warmup: Duration,
    /// With a duration, requests scheduled this close to the end are sent but not measured.
    pub cooldown: Duration,
    pub slo: RequestSlo,
}

/// Distinct error messages kept as examples.
const ERROR_EXAMPLES: usize = 5;
/// Points kept in the concurrency timeline (older ones are thinned out).
const TIMELINE_POINTS: usize = 512;

/// What a load run measured. Latencies of measured requests only; they start at the
/// scheduled send time, so queueing in the client or the server is included.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub ttft: Latencies,
    pub ttfo: Latencies,
    pub itl: Latencies,
    pub tpot: Latencies,
    pub e2e: Latencies,
    /// Lateness of each send against its schedule (or against a freed slot when capped).
    pub send_lag: Latencies,
    /// Time requests waited for a slot under `max_concurrency`.
    pub queue_wait: Latencies,
    /// Measured requests that succeeded.
    pub ok: u64,
    /// Measured requests that failed.
    pub errors: u64,
    /// Of those, the ones the server refused for lack of capacity (429, 503, "overloaded").
    pub overloaded: u64,
    /// Requests sent during warmup or cooldown.
    pub excluded: u64,
    /// Measured successes meeting every SLO.
    pub good: u64,
    pub output_tokens: u64,
    pub prompt_tokens: u64,
    /// Successes whose token counts came from chunk counting, not server usage.
    pub chunk_counted: u64,
    per_request_tps_sum: f64,
    pub error_examples: IndexMap<String, u64>,
    /// From the first measured send to the last measured completion.
    pub window: Duration,
    /// From the first to the last measured send.
    pub send_span: Duration,
    pub concurrency_mean: f64,
    pub concurrency_max: u64,
    /// (seconds since start, requests in flight), thinned to at most 512 points.
    pub timeline: Vec<(f64, u64)>,
    /// CPU time kitt's process used during the run for the client (an in-process engine's
    /// share taken out).
    pub cpu: Duration,
    /// CPU time an in-process engine (the simulator) used during the run.
    pub engine_cpu: Option<Duration>,
    /// Cores kitt's process may run on.
    pub cores: f64,
    /// Time the load loop itself was running (sending, reading, parsing, recording).
    pub loop_busy: Duration,
    /// Open loop: from the first to the last measured request's scheduled send.
    pub scheduled_span: Duration,
    /// Whether this was an open loop, and whether `max_concurrency` capped it.
    pub open_loop: bool,
    pub capped: bool,
    pub wall: Duration,
    /// A uniform sample of the measured requests.
    pub samples: super::samples::Reservoir,
}

impl LoadReport {
    pub fn measured(&self) -> u64 {
        self.ok + self.errors
    }

    pub fn error_rate(&self) -> f64 {
        if self.measured() == 0 {
            0.0
        } else {
            self.errors as f64 / self.measured() as f64
        }
    }

    /// Successful completions per second over the measured window (first send to last end).
    pub fn requests_per_s(&self) -> f64 {
        per_second(self.ok as f64, self.window)
    }

    pub fn output_tokens_per_s(&self) -> f64 {
        per_second(self.output_tokens as f64, self.window)
    }

    /// Completions that met every objective, per second over the same window.
    pub fn goodput(&self) -> f64 {
        per_second(self.good as f64, self.window)
    }

    /// Open loop: sends per second the schedule asked for over the measured sends.
    pub fn scheduled_rate(&self) -> f64 {
        let n = self.measured();
        if n < 2 {
            return 0.0;
        }
        per_second((n - 1) as f64, self.scheduled_span)
    }

    /// Sends per second over the span of the measured sends (first to last send) — a send
    /// rate, not a completion rate.
    pub fn send_rate(&self) -> f64 {
        let n = self.measured();
        if n < 2 {
            return 0.0;
        }
        per_second((n - 1) as f64, self.send_span)
    }

    pub fn per_request_tokens_per_s(&self) -> f64 {
        if self.ok == 0 {
            0.0
        } else {
            self.per_request_tps_sum / self.ok as f64
        }
    }
}

fn per_second(n: f64, over: Duration) -> f64 {
    let s = over.as_secs_f64();
    if s > 0.0 { n / s } else { 0.0 }
}

/// One request as it went.
struct Sent {
    index: u64,
    scheduled: Instant,
    ready: Instant,
    sent: Instant,
    ended: Instant,
    result: Result<GenerationResult, ClientError>,
}

type InFlight<'a> = FuturesUnordered<Pin<Box<dyn Future<Output = Sent> + Send + 'a>>>;

/// What a load sends: request `i` of a run, built when it is sent.
pub trait Requests: Sync {
    fn request(&self, i: u64) -> GenerationRequest;
}

impl Requests for Workload {
    fn request(&self, i: u64) -> GenerationRequest {
        Workload::request(self, i)
    }
}

/// Runs the load and measures it. Dropping the future cancels every request in flight.
pub async fn run(
    engine: &RunningEngine,
    workload: &dyn Requests,
    spec: &LoadSpec,
    tally: &super::Tally,
) -> LoadReport {
    let cpu_before = cpu_time();
    let engine_cpu_before = engine.in_process_cpu();
    let mut rec = Recorder::new(spec, Instant::now());
    let total = match (&spec.pattern, spec.stop) {
        (Pattern::Open { schedule, .. }, _) => Some(schedule.offsets.len() as u64),
        (_, Stop::Requests(n)) => Some(n),
        _ => None,
    };
    tally.set(0, total);
    let on_progress = |done: u64| tally.set(done, None);
    let mut in_flight: InFlight<'_> = FuturesUnordered::new();
    let send = |index, scheduled, ready| send(engine, workload, index, scheduled, ready);
    let start = rec.start;
    let ((), loop_busy) = busy_time(async {
        match &spec.pattern {
            Pattern::Closed { concurrency } => {
                let mut next = 0u64;
                let more = |next: u64| match spec.stop {
                    Stop::Requests(n) => next < n,
                    Stop::Duration(d) => start.elapsed() < d,
                };
                while (in_flight.len() as u64) < u64::from(*concurrency) && more(next) {
                    let now = Instant::now();
                    in_flight.push(send(next, now, now));
                    next += 1;
                }
                rec.concurrency(in_flight.len());
                while let Some(done) = in_flight.next().await {
                    rec.record(done);
                    on_progress(rec.finished);
                    if more(next) {
                        let now = Instant::now();
                        in_flight.push(send(next, now, now));
                        next += 1;
                    }
                    rec.concurrency(in_flight.len());
                }
            }
            Pattern::Open {
                schedule,
                max_concurrency,
            } => {
                let cap = max_concurrency.map_or(usize::MAX, |c| c as usize);
                let pacer = super::pacer::Pacer::new();
                let mut offsets = schedule.offsets.iter().enumerate().peekable();
                loop {
                    let due = offsets.peek().map(|(_, o)| start + **o);
                    match due {
                        Some(at) if in_flight.len() < cap => {
                            tokio::select! {
                                biased;
                                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                                    rec.record(done);
                                    on_progress(rec.finished);
                                }
                                _ = pacer.sleep_until(at) => {
                                    let (i, _) = offsets.next().expect("peeked");
                                    in_flight.push(send(i as u64, at, at));
                                }
                            }
                        }
                        Some(at) => {
                            // At the cap: the next send waits for a slot.
                            if let Some(done) = in_flight.next().await {
                                rec.record(done);
                                on_progress(rec.finished);
                            }
                            let now = Instant::now();
                            if now >= at {
                                let (i, _) = offsets.next().expect("peeked");
                                in_flight.push(send(i as u64, at, now));
                            }
                        }
                        None => match in_flight.next().await {
                            Some(done) => {
                                rec.record(done);
                                on_progress(rec.finished);
                            }
                            None => break,
                        },
                    }
                    rec.concurrency(in_flight.len());
                }
            }
        }
    })
    .await;
    let mut report = rec.finish();
    // An in-process engine's thread is kitt's process too; its share is its own figure.
    report.engine_cpu = engine
        .in_process_cpu()
        .zip(engine_cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    report.cpu = cpu_time()
        .saturating_sub(cpu_before)
        .saturating_sub(report.engine_cpu.unwrap_or_default());
    report.cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    report.loop_busy = loop_busy;
    if let Pattern::Open {
        max_concurrency, ..
    } = &spec.pattern
    {
        report.open_loop = true;
        report.capped = max_concurrency.is_some();
    }
    report
}

/// Runs a future and adds up the time spent polling it: how busy the load loop kept its
/// thread.
async fn busy_time<F: Future>(work: F) -> (F::Output, Duration) {
    let mut work = std::pin::pin!(work);
    let mut total = Duration::ZERO;
    let output = std::future::poll_fn(|cx| {
        let began = Instant::now();
        let poll = work.as_mut().poll(cx);
        total += began.elapsed();
        poll
    })
    .await;
    (output, total)
}

/// Builds request `index` and the future that sends and times it.
fn send<'a>(
    engine: &'a RunningEngine,
    workload: &dyn Requests,
    index: u64,
    scheduled: Instant,
    ready: Instant,
) -> Pin<Box<dyn Future<Output = Sent> + Send + 'a>> {
    let request = workload.request(index);
    Box::pin(async move {
        let sent = Instant::now();
        let result = engine.generate(&request).await;
        Sent {
            index,
            scheduled,
            ready,
            sent,
            ended: Instant::now(),
            result,
        }
    })
}

/// kitt's process CPU time, user and system.
pub fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(t.tv_sec().max(0) as u64)
                    + Duration::from_micros(t.tv_usec().max(0) as u64)
            };
            tv(u.user_time()) + tv(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

/// Folds finished requests into a report.
struct Recorder {
    start: Instant,
    measure_from: Instant,
    measure_until: Option<Instant>,
    slo: RequestSlo,
    report: LoadReport,
    finished: u64,
    first_send: Option<Instant>,
    last_scheduled: Option<Instant>,
    last_send: Option<Instant>,
    last_end: Option<Instant>,
    in_flight: u64,
    last_change: Instant,
    area: f64,
    timeline_every: Duration,
    last_point: Option<Instant>,
}

impl Recorder {
    fn new(spec: &LoadSpec, start: Instant) -> Self {
        let measure_until = match spec.stop {
            Stop::Duration(d) => Some(start + d.saturating_sub(spec.cooldown)),
            Stop::Requests(_) => None,
        };
        Recorder {
            start,
            measure_from: start + spec.warmup,
            measure_until,
            slo: spec.slo.clone(),
            report: LoadReport::default(),
            finished: 0,
            first_send: None,
            last_scheduled: None,
            last_send: None,
            last_end: None,
            in_flight: 0,
            last_change: start,
            area: 0.0,
            timeline_every: Duration::from_millis(10),
            last_point: None,
        }
    }

    /// Notes the number of requests in flight now.
    fn concurrency(&mut self, n: usize) {
        let n = n as u64;
        if n == self.in_flight {
            return;
        }
        let now = Instant::now();
        self.area += self.in_flight as f64 * (now - self.last_change).as_secs_f64();
        self.last_change = now;
        self.in_flight = n;
        self.report.concurrency_max = self.report.concurrency_max.max(n);
        if self
            .last_point
            .is_none_or(|p| now - p >= self.timeline_every)
        {
            self.last_point = Some(now);
            let timeline = &mut self.report.timeline;
            timeline.push(((now - self.start).as_secs_f64(), n));
            if timeline.len() >= TIMELINE_POINTS {
                let mut i = 0;
                timeline.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.timeline_every *= 2;
            }
        }
    }

    fn record(&mut self, s: Sent) {
        self.finished += 1;
        let measured = s.scheduled >= self.measure_from
            && self.measure_until.is_none_or(|until| s.scheduled <= until);
        if !measured {
            self.report.excluded += 1;
            return;
        }
        let _ = s.index;
        let r = &mut self.report;
        r.send_lag.record(s.sent.saturating_duration_since(s.ready));
        r.queue_wait
            .record(s.ready.saturating_duration_since(s.scheduled));
        self.first_send = Some(self.first_send.map_or(s.scheduled, |f| f.min(s.scheduled)));
        self.last_scheduled = Some(
            self.last_scheduled
                .map_or(s.scheduled, |l| l.max(s.scheduled)),
        );
        self.last_send = Some(self.last_send.map_or(s.sent, |l| l.max(s.sent)));
        self.last_end = Some(self.last_end.map_or(s.ended, |l| l.max(s.ended)));
        let at_ms = (s.scheduled.saturating_duration_since(self.start)).as_secs_f64() as f32 * 1e3;
        let result = match s.result {
            Ok(result) => result,
            Err(e) => {
                r.samples.offer(Sample {
                    at_ms,
                    ttft_ms: f32::NAN,
                    tpot_ms: f32::NAN,
                    e2e_ms: s.ended.saturating_duration_since(s.scheduled).as_secs_f64() as f32
                        * 1e3,
                    tokens: 0,
                    ok: false,
                });
                r.errors += 1;
                if e.is_overload() {
                    r.overloaded += 1;
                }
                let message = e.to_string();
                if let Some(n) = r.error_examples.get_mut(&message) {
                    *n += 1;
                } else if r.error_examples.len() < ERROR_EXAMPLES {
                    r.error_examples.insert(message, 1);
                }
                return;
            }
        };
        // Latency counts from the scheduled send, so a late client cannot hide queueing.
        let behind = s.sent.saturating_duration_since(s.scheduled);
        r.ok += 1;
        let ttft = result.ttft.map(|t| t + behind);
        let ttfo = result.ttfo.map(|t| t + behind);
        let e2e = result.e2e + behind;
        if let Some(t) = ttft {
            r.ttft.record(t);
        }
        if let Some(t) = ttfo {
            r.ttfo.record(t);
        }
        r.e2e.record(e2e);
        let mut max_gap = Duration::ZERO;
        for gap in result.itl() {
            r.itl.record(gap);
            max_gap = max_gap.max(gap);
        }
        let tpot = result.tpot();
        if let Some(t) = tpot {
            r.tpot.record(t);
        }
        r.output_tokens += result.completion_tokens;
        r.prompt_tokens += result.prompt_tokens.unwrap_or(0);
        if result.count_source == crate::engine::generation::CountSource::ChunkCount {
            r.chunk_counted += 1;
        }
        let secs = result.e2e.as_secs_f64();
        if secs > 0.0 {
            r.per_request_tps_sum += result.completion_tokens as f64 / secs;
        }
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        let ms32 = |d: Option<Duration>| ms(d).map_or(f32::NAN, |v| v as f32);
        r.samples.offer(Sample {
            at_ms,
            ttft_ms: ms32(ttft),
            tpot_ms: ms32(tpot),
            e2e_ms: ms32(Some(e2e)),
            tokens: u32::try_from(result.completion_tokens).unwrap_or(u32::MAX),
            ok: true,
        });
        let within = |bound: Option<f64>, value: Option<f64>| match bound {
            None => true,
            Some(b) => value.is_some_and(|v| v <= b),
        };
        let slo = &self.slo;
        if within(slo.ttft_ms, ms(ttft))
            && within(slo.ttfo_ms, ms(ttfo))
            && within(slo.tpot_ms, ms(tpot))
            && within(slo.itl_ms, ms(Some(max_gap)))
            && within(slo.e2e_ms, ms(Some(e2e)))
        {
            r.good += 1;
        }
    }

    fn finish(mut self) -> LoadReport {
        let now = Instant::now();
        self.concurrency(0);
        let wall = now - self.start;
        self.report.wall = wall;
        if let (Some(first), Some(end)) = (self.first_send, self.last_end) {
            self.report.window = end.saturating_duration_since(first);
        }
        if let (Some(first), Some(last)) = (self.first_send, self.last_send) {
            self.report.send_span = last.saturating_duration_since(first);
        }
        if let (Some(first), Some(last)) = (self.first_send, self.last_scheduled) {
            self.report.scheduled_span = last.saturating_duration_since(first);
        }
        let secs = wall.as_secs_f64();
        self.report.concurrency_mean = if secs > 0.0 { self.area / secs } else { 0.0 };
        self.report
    }
}
