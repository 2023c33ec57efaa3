//! The engines of one run: where each stands, the running instances, and the GPUs they
//! hold; starting and stopping them as futures the dispatcher runs beside its legs.

use std::future::Future;
use std::sync::Arc;

use super::progress::Progress;
use super::schedule::EngineStatus;
use crate::engine::RunningEngine;
use crate::engine::error::{EngineError, ErrorKind};
use crate::engine::runtime::StartContext;
use crate::registry::Registry;
use crate::suite::plan::Plan;

/// The engines of a run, by index in the plan.
pub struct Engines {
    status: Vec<EngineStatus>,
    running: Vec<Option<Arc<RunningEngine>>>,
    gpus_in_use: usize,
    machine_gpus: usize,
    /// Whether an engine did not start because something it needs is unavailable (a
    /// binary, the Docker daemon, an endpoint).
    unavailable: bool,
}

impl Engines {
    /// Every engine idle; `machine_gpus` is 0 when none were seen (no GPU limit).
    pub fn new(plan: &Plan, machine_gpus: usize) -> Engines {
        Engines {
            status: vec![EngineStatus::Idle; plan.engines.len()],
            running: vec![None; plan.engines.len()],
            gpus_in_use: 0,
            machine_gpus,
            unavailable: false,
        }
    }

    pub fn status(&self) -> &[EngineStatus] {
        &self.status
    }

    pub fn gpus_in_use(&self) -> usize {
        self.gpus_in_use
    }

    /// Whether an engine failed to start for want of something it needs.
    pub fn any_unavailable(&self) -> bool {
        self.unavailable
    }

    pub fn machine_gpus(&self) -> usize {
        self.machine_gpus
    }

    /// The running instance of engine `e`, when it is up.
    pub fn instance(&self, e: usize) -> Option<Arc<RunningEngine>> {
        self.running[e].clone()
    }

    /// Marks engine `e` starting and holds its GPUs; the future starts it.
    pub fn start(
        &mut self,
        plan: &Plan,
        e: usize,
        registry: Arc<Registry>,
        mut ctx: StartContext,
        progress: &Progress,
    ) -> impl Future<Output = Result<RunningEngine, EngineError>> + use<> {
        self.gpus_in_use += plan.gpus_of(e, self.machine_gpus);
        self.status[e] = EngineStatus::Starting;
        let engine = &plan.engines[e];
        let name = engine.name.clone();
        let spec = engine.launch_spec();
        ctx.progress = progress.sink(&format!("engine {name}"));
        progress.say(&format!("starting engine {name} ({})", spec.uses));
        async move { crate::engine::initialize(&registry, &name, &spec, &ctx).await }
    }

    /// Engine `e` came up, or did not (its GPUs are free again).
    pub fn started(
        &mut self,
        plan: &Plan,
        e: usize,
        started: Result<RunningEngine, EngineError>,
        progress: &Progress,
    ) {
        let name = &plan.engines[e].name;
        match started {
            Ok(engine) => {
                progress.say(&format!("engine {name} is up at {}", engine.base_url));
                self.running[e] = Some(Arc::new(engine));
                self.status[e] = EngineStatus::Up;
            }
            Err(error) => {
                self.release(plan, e);
                self.unavailable |= error.kind == ErrorKind::Unavailable;
                progress.alert(&format!("engine {name} did not start: {error}"));
                self.status[e] = EngineStatus::Failed(error.to_string());
            }
        }
    }

    /// Marks engine `e` stopping; the future stops it once no leg holds it.
    pub fn stop(
        &mut self,
        plan: &Plan,
        e: usize,
        progress: &Progress,
    ) -> impl Future<Output = ()> + use<> {
        self.status[e] = EngineStatus::Stopping;
        let instance = self.running[e].take();
        progress.say(&format!("stopping engine {}", plan.engines[e].name));
        async move {
            if let Some(engine) = instance.and_then(|i| Arc::try_unwrap(i).ok()) {
                engine.cleanup().await;
            }
        }
    }

    /// Engine `e` has stopped; its GPUs are free.
    pub fn stopped(&mut self, plan: &Plan, e: usize, progress: &Progress) {
        self.release(plan, e);
        progress.say(&format!("engine {} stopped", plan.engines[e].name));
        self.status[e] = EngineStatus::Down;
    }

    /// Stops every engine that is up, now (Ctrl-C): an instance still shared is dropped,
    /// and its runtime's `Drop` ends it.
    pub async fn stop_all(&mut self, plan: &Plan, progress: &Progress) {
        for e in 0..self.running.len() {
            if let Some(engine) = self.running[e].take() {
                progress.say(&format!("stopping engine {}", plan.engines[e].name));
                match Arc::try_unwrap(engine) {
                    Ok(engine) => engine.cleanup().await,
                    Err(shared) => drop(shared),
                }
                self.status[e] = EngineStatus::Down;
            }
        }
    }

    fn release(&mut self, plan: &Plan, e: usize) {
        self.gpus_in_use = self
            .gpus_in_use
            .saturating_sub(plan.gpus_of(e, self.machine_gpus));
    }
}
