//! The scheduler of one run: starts each engine before its first leg and stops it after its
//! last, runs ready legs side by side within the limits (parallelism, a matrix's
//! max_parallel, GPUs, one performance leg per engine), applies run_if and fail_fast, retries
//! transient failures, checks asserts, writes every finished leg to the store at once, and on
//! Ctrl-C/SIGTERM cancels what runs, stops every engine and keeps what was measured.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::task::JoinSet;

use super::asserts;
use super::outputs::{self, Outputs};
use super::prepare::{Prepared, PreparedLeg};
use super::progress::Progress;
use crate::bench::{self, BenchContext, BenchError, BenchResult, Tally};
use crate::engine::RunningEngine;
use crate::engine::error::EngineError;
use crate::engine::runtime::StartContext;
use crate::registry::{Direction, Registry};
use crate::store::time::now;
use crate::store::{MetricRecord, NodeRecord, RunStatus, Store};
use crate::suite::model::{GpuRequest, RunIf};

/// Where a leg stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
    /// Not run: its result is taken from an earlier run (resume, only-changed, only).
    Reused,
}

impl LegStatus {
    pub fn name(self) -> &'static str {
        match self {
            LegStatus::Pending => "pending",
            LegStatus::Running => "running",
            LegStatus::Succeeded => "succeeded",
            LegStatus::Failed => "failed",
            LegStatus::Skipped => "skipped",
            LegStatus::Cancelled => "cancelled",
            LegStatus::Reused => "reused",
        }
    }

    fn terminal(self) -> bool {
        !matches!(self, LegStatus::Pending | LegStatus::Running)
    }

    fn ok(self) -> bool {
        matches!(self, LegStatus::Succeeded | LegStatus::Reused)
    }

    fn failed(self) -> bool {
        matches!(self, LegStatus::Failed | LegStatus::Cancelled)
    }
}

/// A leg that is not run in this run, with what an earlier run left.
#[derive(Debug, Clone)]
pub struct Carried {
    pub outputs: Map<String, Value>,
    /// The run it came from.
    pub from: String,
}

/// Everything a run needs.
pub struct Setup {
    pub run_id: String,
    pub suite: String,
    pub prepared: Prepared,
    pub registry: Arc<Registry>,
    /// Relative dataset paths start here.
    pub base_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub start: StartContext,
    /// Legs not to run, by index.
    pub carried: HashMap<usize, Carried>,
    /// GPUs on this machine (0: none seen, no limit applied).
    pub gpus: usize,
    /// Where a pointer into a node's params is written in the suite.
    pub locate: super::Locator,
}

/// One line of the final summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SummaryRow {
    pub leg: String,
    pub benchmark: String,
    pub engine: String,
    pub status: String,
    pub key_metrics: String,
    pub asserts: String,
    pub seconds: Option<f64>,
}

/// How a run ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finished {
    pub run_id: String,
    /// Succeeded, failed or interrupted; failed whenever a result could not be stored.
    pub status: RunStatus,
    /// Store writes that failed (a full disk): what was measured but is not in the store.
    pub store_errors: Vec<String>,
    pub rows: Vec<SummaryRow>,
    /// `leg: metric measured vs bound`.
    pub breaches: Vec<String>,
    /// `leg: first error`.
    pub failures: Vec<String>,
}

enum EngineState {
    Idle,
    Starting,
    Up(Arc<RunningEngine>),
    Failed(String),
    Stopping,
    Down,
}

enum Event {
    EngineUp(String, Box<Result<RunningEngine, EngineError>>),
    LegDone(usize, Box<LegRun>),
    EngineDown(String),
}

struct LegRun {
    result: Result<BenchResult, BenchError>,
    attempts: u32,
    started: f64,
    ended: f64,
    params: Value,
    image_digest: Option<String>,
}

struct Dispatcher<'s> {
    setup: Setup,
    store: &'s mut Store,
    progress: Progress,
    status: Vec<LegStatus>,
    tallies: HashMap<usize, Arc<Tally>>,
    engines: HashMap<String, EngineState>,
    gpus_in_use: usize,
    outputs: Outputs,
    baselines: HashMap<String, Option<String>>,
    rows: Vec<Option<SummaryRow>>,
    breaches: Vec<String>,
    failures: Vec<String>,
    store_errors: Vec<String>,
    last_heartbeat: std::time::Instant,
}

/// Runs the legs of `setup`, writing to `store`, until done or `cancel` resolves.
pub async fn run(
    setup: Setup,
    store: &mut Store,
    progress: Progress,
    cancel: impl Future<Output = ()>,
) -> Finished {
    let legs = setup.prepared.legs.len();
    let mut status = vec![LegStatus::Pending; legs];
    let mut outputs = Outputs::new();
    for (i, carried) in &setup.carried {
        status[*i] = LegStatus::Reused;
        outputs.insert(
            setup.prepared.legs[*i].node.clone(),
            carried.outputs.clone(),
        );
    }
    let engines = setup
        .prepared
        .engines
        .keys()
        .map(|k| (k.clone(), EngineState::Idle))
        .collect();
    let mut d = Dispatcher {
        setup,
        store,
        progress,
        status,
        tallies: HashMap::new(),
        engines,
        gpus_in_use: 0,
        outputs,
        baselines: HashMap::new(),
        rows: vec![None; legs],
        breaches: Vec::new(),
        failures: Vec::new(),
        store_errors: Vec::new(),
        last_heartbeat: std::time::Instant::now(),
    };
    for (i, c) in d.setup.carried.clone() {
        let leg = &d.setup.prepared.legs[i];
        d.rows[i] = Some(SummaryRow {
            leg: leg.id.clone(),
            benchmark: leg.benchmark.clone(),
            engine: leg.engine.clone(),
            status: "reused".into(),
            key_metrics: format!("from run {}", c.from),
            asserts: String::new(),
            seconds: None,
        });
    }
    let mut tasks: JoinSet<Event> = JoinSet::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    tokio::pin!(cancel);
    let interrupted = loop {
        d.advance(&mut tasks);
        d.stop_finished_engines(&mut tasks);
        if tasks.is_empty() {
            d.give_up_on_stuck_legs();
            break false;
        }
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(event)) => d.handle(event),
                Some(Err(e)) => d.progress.say(&format!("internal: a task ended abnormally: {e}")),
                None => {}
            },
            _ = ticker.tick() => d.tick(),
            _ = &mut cancel => break true,
        }
    };
    if interrupted {
        d.progress
            .say("interrupted: cancelling running nodes, stopping engines");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        d.cancel_rest();
        d.stop_all_engines().await;
    }
    d.finish(interrupted)
}

impl Dispatcher<'_> {
    fn leg(&self, i: usize) -> &PreparedLeg {
        &self.setup.prepared.legs[i]
    }

    /// Legs of node `node`, by index.
    fn node_legs(&self, node: &str) -> Vec<usize> {
        self.setup.prepared.legs_of(node).collect()
    }

    fn running(&self) -> impl Iterator<Item = usize> + '_ {
        self.status
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == LegStatus::Running)
            .map(|(i, _)| i)
    }

    /// GPUs an engine takes: what `resources.gpus` asks, else what its runtime gives it by
    /// default (every GPU for an engine that needs one).
    fn gpus_of(&self, engine: &str) -> usize {
        let spec = &self.setup.prepared.engines[engine];
        let asked = spec.resources.as_ref().and_then(|r| r.gpus.clone());
        let launch = self.setup.registry.engines.get(&spec.uses).and_then(|e| {
            match crate::engine::launch::Driver::of(&e.info) {
                crate::engine::launch::Driver::Server(l) => Some(l.clone()),
                _ => None,
            }
        });
        let external = spec.mode == Some(crate::suite::model::RuntimeMode::External);
        let request = match (launch, external) {
            (Some(l), false) => {
                crate::engine::start::gpu_request(&l, asked, Some(self.setup.gpus)).0
            }
            _ => asked,
        };
        match request {
            None => 0,
            Some(GpuRequest::All(_)) => self.setup.gpus,
            Some(GpuRequest::Count(n)) => n as usize,
            Some(GpuRequest::Ids(ids)) => ids.len(),
        }
    }

    /// Decides every pending leg it can: skip, fail, start its engine, or run it.
    fn advance(&mut self, tasks: &mut JoinSet<Event>) {
        for i in 0..self.status.len() {
            if self.status[i] != LegStatus::Pending {
                continue;
            }
            let leg = self.leg(i).clone();
            // Needs first: every leg of every needed node must have ended.
            let needed: Vec<usize> = leg.needs.iter().flat_map(|n| self.node_legs(n)).collect();
            if needed.iter().any(|&j| !self.status[j].terminal()) {
                continue;
            }
            let all_ok = needed.iter().all(|&j| self.status[j].ok());
            let any_failed = needed.iter().any(|&j| self.status[j].failed());
            let skip = match leg.run_if {
                RunIf::Success if !all_ok => Some("a needed node did not succeed".to_string()),
                RunIf::Failure if !any_failed => {
                    Some("no needed node failed (run_if: failure)".into())
                }
                _ => None,
            };
            let skip = skip.or_else(|| {
                let policy = leg.policy.as_ref()?;
                let failed_sibling = self
                    .node_legs(&leg.node)
                    .into_iter()
                    .find(|&j| j != i && self.status[j] == LegStatus::Failed)?;
                policy
                    .fail_fast
                    .then(|| format!("fail_fast: {} failed", self.leg(failed_sibling).id))
            });
            if let Some(reason) = skip {
                self.conclude_without_running(i, LegStatus::Skipped, &reason);
                continue;
            }
            let params = match outputs::render(&leg.params, &self.outputs) {
                Ok(p) => p,
                Err(e) => {
                    self.conclude_without_running(i, LegStatus::Failed, &format!("params: {e}"));
                    continue;
                }
            };
            // Capacity.
            let running: Vec<usize> = self.running().collect();
            if running.len() >= self.setup.prepared.parallelism {
                return;
            }
            if let Some(max) = leg.policy.as_ref().and_then(|p| p.max_parallel)
                && running
                    .iter()
                    .filter(|&&j| self.leg(j).node == leg.node)
                    .count()
                    >= max as usize
            {
                continue;
            }
            let shares = running.iter().any(|&j| {
                let other = self.leg(j);
                other.engine == leg.engine && (other.performance || leg.performance)
            });
            if shares {
                continue;
            }
            match self.engines.get(&leg.engine) {
                Some(EngineState::Up(engine)) => {
                    let engine = engine.clone();
                    self.launch(i, params, engine, tasks);
                }
                Some(EngineState::Idle) => {
                    let need = self.gpus_of(&leg.engine);
                    let fits = self.setup.gpus == 0
                        || self.gpus_in_use + need <= self.setup.gpus
                        || tasks.is_empty();
                    if fits {
                        self.start_engine(&leg.engine, need, tasks);
                    }
                }
                Some(EngineState::Failed(reason)) => {
                    let reason = format!("engine `{}` did not start: {reason}", leg.engine);
                    self.conclude_without_running(i, LegStatus::Failed, &reason);
                }
                _ => {}
            }
        }
    }

    fn start_engine(&mut self, name: &str, gpus: usize, tasks: &mut JoinSet<Event>) {
        self.gpus_in_use += gpus;
        self.engines.insert(name.to_string(), EngineState::Starting);
        let spec = self.setup.prepared.engines[name].clone();
        let registry = self.setup.registry.clone();
        let mut ctx = self.setup.start.clone();
        ctx.progress = self.progress.sink(&format!("engine {name}"));
        let name = name.to_string();
        self.progress
            .say(&format!("starting engine {name} ({})", spec.uses));
        tasks.spawn(async move {
            let started = crate::engine::initialize(&registry, &name, &spec, &ctx).await;
            Event::EngineUp(name, Box::new(started))
        });
    }

    fn launch(
        &mut self,
        i: usize,
        params: Value,
        engine: Arc<RunningEngine>,
        tasks: &mut JoinSet<Event>,
    ) {
        let leg = self.leg(i).clone();
        self.status[i] = LegStatus::Running;
        let tally = Arc::new(Tally::default());
        self.tallies.insert(i, tally.clone());
        self.progress
            .leg_started(&leg.id, &format!("{} on {}", leg.benchmark, leg.engine));
        let started = now();
        let record = self.node_record(i, &params, "running", 0, Vec::new(), json!({}), json!({}));
        if let Err(e) = self.store.put_node(
            &NodeRecord {
                started_at: Some(started),
                ..record
            },
            &[],
            &[],
            None,
        ) {
            self.store_failed(e);
        }
        let registry = self.setup.registry.clone();
        let sink = self.progress.sink(&leg.id);
        let base_dir = self.setup.base_dir.clone();
        let cache_dir = self.setup.cache_dir.clone();
        let run_dir = self.setup.start.run_dir.clone();
        tasks.spawn(async move {
            let image_digest = engine.image_digest().await;
            let ctx = BenchContext {
                engine: &engine,
                sampling: leg.sampling.clone(),
                warmup: leg.warmup.clone(),
                base_dir,
                cache_dir,
                progress: sink,
                tally,
                run_dir,
            };
            let (result, attempts) = run_with_retries(&registry, &leg, &ctx, &params).await;
            Event::LegDone(
                i,
                Box::new(LegRun {
                    result,
                    attempts,
                    started,
                    ended: now(),
                    params,
                    image_digest,
                }),
            )
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn node_record(
        &self,
        i: usize,
        params: &Value,
        status: &str,
        attempts: u32,
        errors: Vec<String>,
        outputs: Value,
        details: Value,
    ) -> NodeRecord {
        let leg = self.leg(i);
        let engine = &self.setup.prepared.engines[&leg.engine];
        NodeRecord {
            run_id: self.setup.run_id.clone(),
            leg: leg.id.clone(),
            node: leg.node.clone(),
            benchmark: leg.benchmark.clone(),
            benchmark_version: leg.benchmark_version.clone(),
            engine: leg.engine.clone(),
            engine_uses: engine.uses.clone(),
            image: engine.image.clone(),
            image_digest: None,
            model: engine.model.clone(),
            params: params.clone(),
            spec_hash: leg.spec_hash.clone(),
            status: status.to_string(),
            attempts,
            errors,
            outputs,
            details,
            started_at: None,
            ended_at: None,
            seconds: None,
        }
    }

    /// Records a leg that ends without running (skipped, or failed before it could start).
    fn conclude_without_running(&mut self, i: usize, status: LegStatus, reason: &str) {
        self.status[i] = status;
        let leg = self.leg(i).clone();
        let record = self.node_record(
            i,
            &leg.params,
            status.name(),
            0,
            vec![reason.to_string()],
            json!({}),
            json!({}),
        );
        if let Err(e) = self.store.put_node(&record, &[], &[], None) {
            self.progress.say(&format!("warning: {e:#}"));
        }
        if status == LegStatus::Failed {
            self.failures.push(format!("{}: {reason}", leg.id));
        }
        self.progress
            .leg_finished(&leg.id, status.name(), &format!(" ({reason})"));
        self.rows[i] = Some(SummaryRow {
            leg: leg.id.clone(),
            benchmark: leg.benchmark.clone(),
            engine: leg.engine.clone(),
            status: status.name().into(),
            key_metrics: reason.to_string(),
            asserts: String::new(),
            seconds: None,
        });
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::EngineUp(name, started) => match *started {
                Ok(engine) => {
                    self.progress
                        .say(&format!("engine {name} is up at {}", engine.base_url));
                    self.engines.insert(name, EngineState::Up(Arc::new(engine)));
                }
                Err(e) => {
                    self.gpus_in_use = self.gpus_in_use.saturating_sub(self.gpus_of(&name));
                    self.progress
                        .say(&format!("engine {name} did not start: {e}"));
                    self.engines
                        .insert(name, EngineState::Failed(e.to_string()));
                }
            },
            Event::EngineDown(name) => {
                self.gpus_in_use = self.gpus_in_use.saturating_sub(self.gpus_of(&name));
                self.progress.say(&format!("engine {name} stopped"));
                self.engines.insert(name, EngineState::Down);
            }
            Event::LegDone(i, run) => self.leg_done(i, *run),
        }
    }

    fn baseline(&mut self, which: &str) -> Option<String> {
        if let Some(b) = self.baselines.get(which) {
            return b.clone();
        }
        let found = if which == "last-success" {
            self.store
                .last_success(&self.setup.suite, Some(&self.setup.run_id))
                .ok()
                .flatten()
                .map(|r| r.id)
        } else {
            self.store.find_run(which).ok().map(|r| r.id)
        };
        self.baselines.insert(which.to_string(), found.clone());
        found
    }

    fn leg_done(&mut self, i: usize, run: LegRun) {
        self.tallies.remove(&i);
        let leg = self.leg(i).clone();
        let (status, metrics, assert_records, errors, outputs, details, samples) = match run.result
        {
            Err(error) => (
                LegStatus::Failed,
                Vec::new(),
                Vec::new(),
                vec![self.with_location(&leg.node, &error)],
                Map::new(),
                Map::new(),
                None,
            ),
            Ok(result) => {
                let metrics: Vec<MetricRecord> = result
                    .metrics
                    .iter()
                    .map(|m| MetricRecord {
                        name: m.name.clone(),
                        value: m.value,
                        unit: m.unit.clone(),
                        direction: match m.direction {
                            Direction::Higher => "higher".into(),
                            Direction::Lower => "lower".into(),
                        },
                    })
                    .collect();
                let baseline_name = leg
                    .asserts
                    .values()
                    .find_map(|b| b.baseline.clone())
                    .unwrap_or_else(|| "last-success".into());
                let baseline = if leg
                    .asserts
                    .values()
                    .any(|b| b.min_ratio.is_some() || b.max_ratio.is_some())
                {
                    self.baseline(&baseline_name)
                        .and_then(|id| self.store.metrics(&id, &leg.id).ok().map(|m| (id, m)))
                } else {
                    None
                };
                let records = asserts::evaluate(
                    &leg.asserts,
                    &metrics,
                    baseline.as_ref().map(|(id, m)| (id.as_str(), m.as_slice())),
                );
                let mut errors = result.errors.clone();
                for a in records.iter().filter(|a| !a.passed) {
                    self.breaches.push(format!("{}: {}", leg.id, a.message));
                    errors.push(format!("assert: {}", a.message));
                }
                let ok = result.passed && records.iter().all(|a| a.passed);
                let samples = result.samples.as_ref().map(|r| r.sorted());
                (
                    if ok {
                        LegStatus::Succeeded
                    } else {
                        LegStatus::Failed
                    },
                    metrics,
                    records,
                    errors,
                    result.outputs.clone(),
                    {
                        let mut d = result.details.clone();
                        d.insert(
                            "warmup".into(),
                            serde_json::to_value(&result.warmup).unwrap_or_default(),
                        );
                        d
                    },
                    samples,
                )
            }
        };
        self.status[i] = status;
        if status == LegStatus::Succeeded {
            self.outputs.insert(leg.node.clone(), outputs.clone());
        } else if let Some(first) = errors.first() {
            self.failures.push(format!("{}: {first}", leg.id));
        }
        let seconds = run.ended - run.started;
        let record = NodeRecord {
            image_digest: run.image_digest,
            started_at: Some(run.started),
            ended_at: Some(run.ended),
            seconds: Some(seconds),
            ..self.node_record(
                i,
                &run.params,
                status.name(),
                run.attempts,
                errors.clone(),
                Value::Object(outputs.clone()),
                Value::Object(details),
            )
        };
        let encoded = samples.as_ref().map(|s| bench::samples::encode(s));
        let sample_arg = encoded
            .as_ref()
            .zip(samples.as_ref())
            .map(|(bytes, s)| (bench::samples::FORMAT, s.len() as u64, bytes.as_slice()));
        if let Err(e) = self
            .store
            .put_node(&record, &metrics, &assert_records, sample_arg)
        {
            self.store_failed(e);
        }
        let key = key_metrics(&outputs, &metrics);
        let asserts_text = if assert_records.is_empty() {
            String::new()
        } else {
            let held = assert_records.iter().filter(|a| a.passed).count();
            format!("{held}/{} held", assert_records.len())
        };
        let detail = if status == LegStatus::Succeeded {
            format!("  {key}")
        } else {
            format!("  {}", errors.first().map_or("", String::as_str))
        };
        self.progress.leg_finished(&leg.id, status.name(), &detail);
        self.rows[i] = Some(SummaryRow {
            leg: leg.id.clone(),
            benchmark: leg.benchmark.clone(),
            engine: leg.engine.clone(),
            status: status.name().into(),
            key_metrics: key,
            asserts: asserts_text,
            seconds: Some(seconds),
        });
    }

    /// A params error that points into the node's params gets the suite's `file:line:col`
    /// of that place.
    fn with_location(&self, node: &str, error: &BenchError) -> String {
        let located = match error {
            BenchError::Params {
                pointer: Some(pointer),
                ..
            } => (self.setup.locate)(node, pointer),
            _ => None,
        };
        match located {
            Some(at) => format!("{error} ({at})"),
            None => error.to_string(),
        }
    }

    /// Stops each engine whose legs have all ended.
    fn stop_finished_engines(&mut self, tasks: &mut JoinSet<Event>) {
        let names: Vec<String> = self.engines.keys().cloned().collect();
        for name in names {
            if !matches!(self.engines.get(&name), Some(EngineState::Up(_))) {
                continue;
            }
            let done = self
                .setup
                .prepared
                .legs
                .iter()
                .enumerate()
                .filter(|(_, l)| l.engine == name)
                .all(|(i, _)| self.status[i].terminal());
            if !done {
                continue;
            }
            if let Some(EngineState::Up(engine)) =
                self.engines.insert(name.clone(), EngineState::Stopping)
            {
                self.progress.say(&format!("stopping engine {name}"));
                tasks.spawn(async move {
                    if let Ok(engine) = Arc::try_unwrap(engine) {
                        engine.cleanup().await;
                    }
                    Event::EngineDown(name)
                });
            }
        }
    }

    /// Legs still pending when nothing runs can never start (e.g. an engine that never came
    /// up); they fail with the reason.
    fn give_up_on_stuck_legs(&mut self) {
        for i in 0..self.status.len() {
            if self.status[i] == LegStatus::Pending {
                self.conclude_without_running(i, LegStatus::Failed, "could not be scheduled");
            }
        }
    }

    fn tick(&mut self) {
        if self.last_heartbeat.elapsed() >= crate::process::owner::HEARTBEAT_EVERY {
            self.last_heartbeat = std::time::Instant::now();
            if let Err(e) = self.store.heartbeat(&self.setup.run_id) {
                self.progress.say(&format!("warning: {e:#}"));
            }
        }
        let tallies: Vec<(usize, (u64, u64))> =
            self.tallies.iter().map(|(i, t)| (*i, t.get())).collect();
        for (i, t) in tallies {
            let id = self.leg(i).id.clone();
            self.progress.tick(&id, t);
        }
    }

    fn cancel_rest(&mut self) {
        for i in 0..self.status.len() {
            match self.status[i] {
                LegStatus::Running | LegStatus::Pending => {
                    let was_running = self.status[i] == LegStatus::Running;
                    self.status[i] = LegStatus::Cancelled;
                    let leg = self.leg(i).clone();
                    let reason = if was_running {
                        "cancelled by Ctrl-C/SIGTERM while running"
                    } else {
                        "not run: the run was interrupted"
                    };
                    let record = self.node_record(
                        i,
                        &leg.params,
                        "cancelled",
                        0,
                        vec![reason.into()],
                        json!({}),
                        json!({}),
                    );
                    if let Err(e) = self.store.put_node(&record, &[], &[], None) {
                        self.store_failed(e);
                    }
                    self.rows[i] = Some(SummaryRow {
                        leg: leg.id.clone(),
                        benchmark: leg.benchmark.clone(),
                        engine: leg.engine.clone(),
                        status: "cancelled".into(),
                        key_metrics: reason.into(),
                        asserts: String::new(),
                        seconds: None,
                    });
                }
                _ => {}
            }
        }
    }

    async fn stop_all_engines(&mut self) {
        let names: Vec<String> = self.engines.keys().cloned().collect();
        for name in names {
            if let Some(EngineState::Up(engine)) =
                self.engines.insert(name.clone(), EngineState::Down)
            {
                self.progress.say(&format!("stopping engine {name}"));
                match Arc::try_unwrap(engine) {
                    Ok(engine) => engine.cleanup().await,
                    Err(engine) => drop(engine),
                }
            }
        }
    }

    /// A result that could not be stored: said at once, and the run cannot succeed.
    fn store_failed(&mut self, e: anyhow::Error) {
        let message = format!("{e:#}");
        self.progress.say(&format!("error: {message}"));
        self.store_errors.push(message);
    }

    fn finish(mut self, interrupted: bool) -> Finished {
        let failed = self.status.iter().any(|s| s.failed()) || !self.store_errors.is_empty();
        let status = if interrupted {
            RunStatus::Interrupted
        } else if failed {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        if let Err(e) = self
            .store
            .set_run_status(&self.setup.run_id, status, Some(now()))
        {
            self.store_failed(e);
        }
        let status = if interrupted || self.store_errors.is_empty() {
            status
        } else {
            RunStatus::Failed
        };
        Finished {
            run_id: self.setup.run_id.clone(),
            status,
            store_errors: self.store_errors,
            rows: self.rows.into_iter().flatten().collect(),
            breaches: self.breaches,
            failures: self.failures,
        }
    }
}

/// Runs a leg's benchmark, retrying transient engine failures with doubling backoff, each
/// attempt within the node's timeout.
async fn run_with_retries(
    registry: &Registry,
    leg: &PreparedLeg,
    ctx: &BenchContext<'_>,
    params: &Value,
) -> (Result<BenchResult, BenchError>, u32) {
    let Some(entry) = registry.benchmarks.get(&leg.benchmark) else {
        return (
            Err(BenchError::Failed(format!(
                "benchmark `{}` is not registered",
                leg.benchmark
            ))),
            0,
        );
    };
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let outcome = match leg.timeout {
            Some(limit) => {
                match tokio::time::timeout(limit, bench::run(entry, ctx, params)).await {
                    Ok(r) => r,
                    Err(_) => {
                        return (
                            Err(BenchError::TimedOut(crate::suite::model::Duration(limit))),
                            attempt,
                        );
                    }
                }
            }
            None => bench::run(entry, ctx, params).await,
        };
        match outcome {
            Ok(result) => return (Ok(result), attempt),
            Err(BenchError::Engine(e)) if e.is_transient() && attempt < leg.attempts => {
                let wait = leg.backoff * 2u32.saturating_pow(attempt - 1);
                (ctx.progress)(&format!(
                    "attempt {attempt} failed ({e}); retrying in {}",
                    crate::suite::model::Duration(wait)
                ));
                tokio::time::sleep(wait).await;
            }
            Err(e) => return (Err(e), attempt),
        }
    }
}

/// The numbers a person looks at first: the benchmark's numeric outputs, else accuracy or
/// throughput.
fn key_metrics(outputs: &Map<String, Value>, metrics: &[MetricRecord]) -> String {
    let mut parts: Vec<String> = outputs
        .iter()
        .filter_map(|(k, v)| v.as_f64().map(|n| format!("{k} {}", short(n))))
        .take(3)
        .collect();
    if parts.is_empty() {
        parts = metrics
            .iter()
            .filter(|m| ["accuracy", "requests_per_s", "ttft_p50_ms"].contains(&m.name.as_str()))
            .map(|m| format!("{} {}", m.name, short(m.value)))
            .collect();
    }
    parts.join(", ")
}

fn short(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
