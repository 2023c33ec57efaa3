//! Carries out a plan: asks the scheduler what to do, starts and stops engines, runs legs as
//! tasks side by side, writes every finished leg to the store at once, and on Ctrl-C/SIGTERM
//! cancels what runs, stops every engine and keeps what was measured.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinSet;

use super::engines::Engines;
use super::outputs::{self, Outputs};
use super::progress::Progress;
use super::record::{Ending, SummaryRow, carried_row, located};
use super::retry::run_with_retries;
use super::schedule::{Decision, LegStatus, Situation, decide};
use super::setup::{Finished, Setup};
use crate::bench::{BenchContext, BenchError, BenchResult, Tally};
use crate::engine::RunningEngine;
use crate::engine::error::EngineError;
use crate::store::time::now;
use crate::store::{NodeStatus, RunStatus, Store};
use crate::suite::plan::Plan;

enum Event {
    EngineUp(usize, Box<Result<RunningEngine, EngineError>>),
    EngineDown(usize),
    LegDone(usize, Box<LegRun>),
}

struct LegRun {
    result: Result<BenchResult, BenchError>,
    attempts: u32,
    started: f64,
    ended: f64,
    params: Value,
    image_digest: Option<String>,
}

struct Dispatcher<'a> {
    plan: &'a Plan,
    setup: Setup,
    store: &'a mut Store,
    progress: Progress,
    legs: Vec<LegStatus>,
    engines: Engines,
    tallies: HashMap<usize, Arc<Tally>>,
    outputs: Outputs,
    baselines: HashMap<String, Option<String>>,
    rows: Vec<Option<SummaryRow>>,
    breaches: Vec<String>,
    failures: Vec<String>,
    store_errors: Vec<String>,
    results: Vec<(String, Result<BenchResult, String>)>,
    timeline: Vec<(String, f64, f64)>,
    last_heartbeat: std::time::Instant,
}

/// Runs the legs of `plan`, writing to `store`, until done or `cancel` resolves.
pub async fn run(
    plan: &Plan,
    setup: Setup,
    store: &mut Store,
    progress: Progress,
    cancel: impl Future<Output = ()>,
) -> Finished {
    let mut legs = vec![LegStatus::Pending; plan.legs.len()];
    let mut outputs = Outputs::new();
    let mut rows = vec![None; plan.legs.len()];
    for (&i, carried) in &setup.carried {
        legs[i] = LegStatus::Ended(NodeStatus::Reused);
        outputs.insert(plan.legs[i].node.clone(), carried.outputs.clone());
        rows[i] = Some(carried_row(&plan.legs[i], &carried.from));
    }
    let engines = Engines::new(plan, setup.gpus);
    let mut d = Dispatcher {
        plan,
        setup,
        store,
        progress,
        legs,
        engines,
        tallies: HashMap::new(),
        outputs,
        baselines: HashMap::new(),
        rows,
        breaches: Vec::new(),
        failures: Vec::new(),
        store_errors: Vec::new(),
        results: Vec::new(),
        timeline: Vec::new(),
        last_heartbeat: std::time::Instant::now(),
    };
    let mut tasks: JoinSet<Event> = JoinSet::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    tokio::pin!(cancel);
    let interrupted = loop {
        let decisions = decide(
            plan,
            &Situation {
                legs: &d.legs,
                engines: d.engines.status(),
                gpus_in_use: d.engines.gpus_in_use(),
                machine_gpus: d.engines.machine_gpus(),
            },
        );
        for decision in decisions {
            d.carry_out(decision, &mut tasks);
        }
        if tasks.is_empty() {
            break false;
        }
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(event)) => d.handle(event),
                Some(Err(e)) => d.progress.alert(&format!("internal: a task ended abnormally: {e}")),
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
        d.engines.stop_all(plan, &d.progress).await;
    }
    d.finish(interrupted)
}

impl Dispatcher<'_> {
    fn carry_out(&mut self, decision: Decision, tasks: &mut JoinSet<Event>) {
        match decision {
            Decision::Skip { leg, reason } => self.end_unrun(leg, NodeStatus::Skipped, &reason),
            Decision::Fail { leg, reason } => self.end_unrun(leg, NodeStatus::Failed, &reason),
            Decision::Run { leg } => self.launch(leg, tasks),
            Decision::StartEngine { engine } => {
                let start = self.engines.start(
                    self.plan,
                    engine,
                    self.setup.registry.clone(),
                    self.setup.start.clone(),
                    &self.progress,
                );
                tasks.spawn(async move { Event::EngineUp(engine, Box::new(start.await)) });
            }
            Decision::StopEngine { engine } => {
                let stop = self.engines.stop(self.plan, engine, &self.progress);
                tasks.spawn(async move {
                    stop.await;
                    Event::EngineDown(engine)
                });
            }
        }
    }

    /// Renders the leg's params with the outputs it needs, records it as running and runs it
    /// as a task.
    fn launch(&mut self, i: usize, tasks: &mut JoinSet<Event>) {
        let plan = self.plan;
        let leg = &plan.legs[i];
        let params = match outputs::render(&leg.params, &self.outputs) {
            Ok(p) => p,
            Err(e) => return self.end_unrun(i, NodeStatus::Failed, &format!("params: {e}")),
        };
        let Some(engine) = self.engines.instance(leg.engine_index) else {
            return self.end_unrun(i, NodeStatus::Failed, "its engine is not up");
        };
        self.legs[i] = LegStatus::Running;
        let tally = Arc::new(Tally::default());
        self.tallies.insert(i, tally.clone());
        self.progress
            .leg_started(&leg.id, &format!("{} on {}", leg.benchmark, leg.engine));
        let started = now();
        let running = Ending {
            started: Some(started),
            params: params.clone(),
            ..Ending::without_result(NodeStatus::Running, leg, None)
        };
        self.put(&running, i);
        let registry = self.setup.registry.clone();
        let sink = self.progress.sink(&leg.id);
        let base_dir = self.setup.base_dir.clone();
        let cache_dir = self.setup.cache_dir.clone();
        let run_dir = self.setup.start.run_dir.clone();
        let run_id = self.setup.run_id.clone();
        let leg = leg.clone();
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
                telemetry: telemetry_settings(&leg.telemetry),
                salt: crate::seed::of_text(&format!("{run_id}/{}", leg.id)),
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

    fn handle(&mut self, event: Event) {
        match event {
            Event::EngineUp(e, started) => {
                self.engines.started(self.plan, e, *started, &self.progress)
            }
            Event::EngineDown(e) => self.engines.stopped(self.plan, e, &self.progress),
            Event::LegDone(i, run) => self.leg_done(i, *run),
        }
    }

    /// The run whose metrics ratio asserts compare with (`last-success` or a run id).
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
        let plan = self.plan;
        let leg = &plan.legs[i];
        let mut ending = match &run.result {
            Err(error) => Ending {
                params: run.params.clone(),
                ..Ending::without_result(
                    NodeStatus::Failed,
                    leg,
                    Some(&located(error, &leg.node, &self.setup.locate)),
                )
            },
            Ok(result) => {
                let ratios = leg
                    .asserts
                    .values()
                    .any(|b| b.min_ratio.is_some() || b.max_ratio.is_some());
                let baseline = if ratios {
                    let which = leg
                        .asserts
                        .values()
                        .find_map(|b| b.baseline.clone())
                        .unwrap_or_else(|| "last-success".into());
                    self.baseline(&which)
                        .and_then(|id| self.store.metrics(&id, &leg.id).ok().map(|m| (id, m)))
                } else {
                    None
                };
                let base = baseline.as_ref().map(|(id, m)| (id.as_str(), m.as_slice()));
                Ending::from_result(leg, run.params.clone(), result, base)
            }
        };
        ending.attempts = run.attempts;
        ending.started = Some(run.started);
        ending.ended = Some(run.ended);
        ending.image_digest = run.image_digest;
        self.timeline.push((leg.id.clone(), run.started, run.ended));
        if self.setup.keep_results {
            let kept = run
                .result
                .as_ref()
                .map_err(|_| ending.errors.first().cloned().unwrap_or_default());
            self.results.push((leg.id.clone(), kept.cloned()));
        }
        let samples = run
            .result
            .as_ref()
            .ok()
            .and_then(|r| r.samples.as_ref())
            .map(|r| r.sorted());
        self.breaches.extend(ending.breaches(leg));
        if ending.status == NodeStatus::Succeeded {
            self.outputs
                .insert(leg.node.clone(), ending.outputs.clone());
        } else if let Some(first) = ending.errors.first() {
            self.failures.push(format!("{}: {first}", leg.id));
        }
        let encoded = samples.as_ref().map(|s| crate::bench::samples::encode(s));
        let sample_arg = encoded.as_ref().zip(samples.as_ref()).map(|(bytes, s)| {
            (
                crate::bench::samples::FORMAT,
                s.len() as u64,
                bytes.as_slice(),
            )
        });
        let record = ending.record(&self.setup.run_id, leg, &plan.engines[leg.engine_index]);
        if let Err(e) = self
            .store
            .put_node(&record, &ending.metrics, &ending.asserts, sample_arg)
        {
            self.store_failed(e);
        } else if let Some(series) = run.result.as_ref().ok().map(|r| &r.telemetry_series)
            && !series.is_empty()
        {
            let records: Vec<crate::store::SeriesRecord> = series
                .iter()
                .map(|s| crate::store::SeriesRecord {
                    name: s.name.to_string(),
                    unit: s.unit.to_string(),
                    points: s.points.clone(),
                })
                .collect();
            if let Err(e) = self.store.put_series(&self.setup.run_id, &leg.id, &records) {
                self.store_failed(e);
            }
        }
        self.legs[i] = LegStatus::Ended(ending.status);
        let row = ending.summary_row(leg);
        self.progress.leg_finished(
            &leg.id,
            ending.status.as_str(),
            &format!("  {}", row.key_metrics),
        );
        self.rows[i] = Some(row);
    }

    /// Records a leg that ends without running: skipped, failed before it could start, or
    /// cancelled.
    fn end_unrun(&mut self, i: usize, status: NodeStatus, reason: &str) {
        let plan = self.plan;
        let leg = &plan.legs[i];
        self.legs[i] = LegStatus::Ended(status);
        let ending = Ending::without_result(status, leg, Some(reason));
        self.put(&ending, i);
        if status == NodeStatus::Failed {
            self.failures.push(format!("{}: {reason}", leg.id));
        }
        self.progress
            .leg_finished(&leg.id, status.as_str(), &format!(" ({reason})"));
        self.rows[i] = Some(ending.summary_row(leg));
    }

    /// Writes a leg's row without metrics.
    fn put(&mut self, ending: &Ending, i: usize) {
        let plan = self.plan;
        let leg = &plan.legs[i];
        let record = ending.record(&self.setup.run_id, leg, &plan.engines[leg.engine_index]);
        if let Err(e) = self.store.put_node(&record, &[], &[], None) {
            self.store_failed(e);
        }
    }

    fn tick(&mut self) {
        if self.last_heartbeat.elapsed() >= crate::process::owner::HEARTBEAT_EVERY {
            self.last_heartbeat = std::time::Instant::now();
            if let Err(e) = self.store.heartbeat(&self.setup.run_id) {
                self.progress.alert(&format!("warning: {e:#}"));
            }
        }
        let tallies: Vec<(usize, (u64, u64))> =
            self.tallies.iter().map(|(i, t)| (*i, t.get())).collect();
        for (i, t) in tallies {
            let id = self.plan.legs[i].id.clone();
            self.progress.tick(&id, t);
        }
    }

    /// Every leg still running or pending at Ctrl-C is recorded as cancelled.
    fn cancel_rest(&mut self) {
        for i in 0..self.legs.len() {
            let reason = match self.legs[i] {
                LegStatus::Running => "cancelled by Ctrl-C/SIGTERM while running",
                LegStatus::Pending => "not run: the run was interrupted",
                LegStatus::Ended(_) => continue,
            };
            let plan = self.plan;
            let leg = &plan.legs[i];
            self.legs[i] = LegStatus::Ended(NodeStatus::Cancelled);
            let ending = Ending::without_result(NodeStatus::Cancelled, leg, Some(reason));
            self.put(&ending, i);
            self.rows[i] = Some(ending.summary_row(leg));
        }
    }

    /// A result that could not be stored: said at once, and the run cannot succeed.
    fn store_failed(&mut self, e: anyhow::Error) {
        let message = format!("{e:#}");
        self.progress.alert(&format!("error: {message}"));
        self.store_errors.push(message);
    }

    fn finish(mut self, interrupted: bool) -> Finished {
        let failed = self.legs.iter().any(|s| s.failed()) || !self.store_errors.is_empty();
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
            results: self.results,
            timeline: self.timeline,
            engines_unavailable: self.engines.any_unavailable(),
        }
    }
}

/// A leg's telemetry settings, defaults filled in.
fn telemetry_settings(t: &crate::suite::model::Telemetry) -> crate::telemetry::Settings {
    let defaults = crate::telemetry::Settings::default();
    crate::telemetry::Settings {
        interval: t.interval.map_or(defaults.interval, |d| d.0),
        server: t.server.unwrap_or(defaults.server),
        gpu: t.gpu.unwrap_or(defaults.gpu),
        scrape: t.scrape.clone(),
    }
}
