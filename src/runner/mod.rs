//! `kitt apply` as a library: validate the suite, plan it, choose the legs (all, `--only`,
//! `--only-changed`, `--resume`), record the run, dispatch the plan, render the suite's
//! reports — and return what happened. Printing it and choosing the exit code is the CLI's.

pub mod asserts;
pub mod dispatch;
pub mod engines;
pub mod outputs;
pub mod progress;
pub mod provenance;
pub mod record;
pub mod retry;
pub mod schedule;
pub mod selection;
pub mod setup;
pub mod slurm;
pub mod slurm_run;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fingerprint::Fingerprint;
use crate::registry::Registry;
use crate::store::{RunRecord, RunStatus, Store};
use crate::suite::diagnostics::Diagnostic;
use crate::suite::params::Override;
use crate::suite::plan::Plan;
use crate::suite::source::Sources;
use crate::suite::validate::{CheckedSuite, Unset, validate_file, validate_source};

pub use setup::{Carried, Finished, Setup};

/// Finds `file:line:col` of a pointer into a node's params (for params errors that point).
pub type Locator = Arc<dyn Fn(&str, &str) -> Option<String> + Send + Sync>;

fn locator(checked: &CheckedSuite, workspace: crate::suite::workspace::Workspace) -> Locator {
    let origins = checked.origins.clone();
    let nodes: Vec<String> = checked.suite.nodes.iter().map(|n| n.id.clone()).collect();
    Arc::new(move |node: &str, pointer: &str| {
        let i = nodes.iter().position(|n| n == node)?;
        let at = origins.locate(&workspace, &format!("/nodes/{i}/params{pointer}"), false);
        let file = workspace.sources.get(at.file);
        Some(format!(
            "{}:{}:{}",
            file.path.display(),
            at.span.line,
            at.span.col
        ))
    })
}

/// What to apply and how.
#[derive(Debug, Clone, Default)]
pub struct ApplyRequest {
    pub suite_path: PathBuf,
    /// The suite's text when it is not read from `suite_path` (`kitt run` builds one).
    pub suite_text: Option<String>,
    pub overrides: Vec<Override>,
    pub only: Vec<String>,
    pub only_changed: bool,
    pub resume: Option<String>,
    pub dry_run: bool,
    pub store: PathBuf,
    /// Plain progress lines even on a terminal.
    pub plain: bool,
    /// Let reports replace files kitt did not write.
    pub force: bool,
}

/// What applying a suite came to, with the suite's diagnostics (warnings, or why it is
/// invalid) and the files they point into.
pub struct Applied {
    pub diagnostics: Vec<Diagnostic>,
    pub sources: Sources,
    pub outcome: Outcome,
}

/// How far applying got.
pub enum Outcome {
    /// The suite is not valid; nothing ran.
    Invalid,
    /// `--dry-run`: the plan and the legs it would run.
    DryRun { plan: Box<Plan>, selection: String },
    /// The run happened (or was interrupted), and its reports were written as far as they
    /// could be.
    Ran(Box<Ran>),
}

/// A run and its reports.
pub struct Ran {
    pub finished: Finished,
    pub reports: Vec<ReportOutcome>,
    /// The reports not written because of Ctrl-C.
    pub reports_skipped: usize,
}

/// One report of the suite: the file written, or why not.
pub struct ReportOutcome {
    pub reporter: String,
    pub written: Result<PathBuf, String>,
}

impl Ran {
    /// Whether every report was written.
    pub fn reports_ok(&self) -> bool {
        self.reports_skipped == 0 && self.reports.iter().all(|r| r.written.is_ok())
    }
}

/// Validates and plans a suite from `req` (its file, or the text `kitt run` built).
fn checked(
    req: &ApplyRequest,
    registry: &Registry,
) -> (crate::suite::validate::Validation, Option<String>) {
    match &req.suite_text {
        Some(text) => (
            validate_source(
                &req.suite_path,
                text.clone(),
                registry,
                &req.overrides,
                Unset::Error,
            ),
            Some(text.clone()),
        ),
        None => {
            let validation = validate_file(&req.suite_path, registry, &req.overrides, Unset::Error);
            let text = validation
                .workspace
                .sources
                .try_get(0)
                .map(|f| f.text.clone());
            (validation, text)
        }
    }
}

/// Applies a suite. `cancel` resolving interrupts the run.
pub async fn apply(
    req: &ApplyRequest,
    registry: Arc<Registry>,
    progress: progress::Progress,
    cancel: impl Future<Output = ()>,
) -> anyhow::Result<Applied> {
    let (validation, text) = checked(req, &registry);
    let crate::suite::validate::Validation {
        workspace,
        suite,
        diagnostics,
    } = validation;
    let sources = workspace.sources.clone();
    let applied = |outcome| Applied {
        diagnostics: diagnostics.clone(),
        sources: sources.clone(),
        outcome,
    };
    let (Some(checked), Some(text)) = (suite, text) else {
        return Ok(applied(Outcome::Invalid));
    };
    crate::engine::start::register_secrets(checked.suite.engines.values());
    let suite_files: Vec<PathBuf> = (0..)
        .map_while(|i| workspace.sources.try_get(i).map(|f| f.path.clone()))
        .collect();
    let fingerprint = Fingerprint::detect();
    let plan = crate::suite::plan::plan(&checked, &registry, Some(fingerprint.gpus.len()))?;
    let locate = locator(&checked, workspace);
    let mut store = Store::open(&req.store)?;
    let suite_name = checked.suite.metadata.name.clone();
    let choice = selection::choose(req, &plan, &store, &suite_name)?;
    if req.dry_run {
        let selection = choice.describe(&plan);
        return Ok(applied(Outcome::DryRun {
            plan: Box::new(plan),
            selection,
        }));
    }
    let run_id = match &choice.resume {
        Some(id) => {
            store.take_over(id)?;
            id.clone()
        }
        None => {
            let record = new_run(&checked, &req.suite_path, &text, &fingerprint)?;
            let id = record.id.clone();
            store.insert_run(&record)?;
            selection::copy_carried(&mut store, &choice, &plan, &id)?;
            id
        }
    };
    progress.say(&format!(
        "run {run_id}: suite {} {}, {} legs ({} to run), store {}",
        suite_name,
        checked.suite.metadata.version,
        plan.legs.len(),
        plan.legs.len() - choice.carried.len(),
        req.store.display()
    ));
    let mut start = crate::engine::runtime::StartContext::new_run();
    // Logs go beside the store the run is written to (a test's or CI's own directory).
    start.run_dir = crate::paths::child(
        &parent_or_here(&req.store).join("runs"),
        crate::paths::NameKind::Run,
        &run_id,
    )?;
    start.run_id = run_id.clone();
    start.gpus = Some(fingerprint.gpus.len());
    let setup = Setup {
        run_id: run_id.clone(),
        suite: suite_name,
        registry: registry.clone(),
        base_dir: parent_or_here(&req.suite_path),
        cache_dir: crate::bench::dataset::cache_dir(),
        start,
        carried: choice.carried,
        gpus: fingerprint.gpus.len(),
        locate,
        keep_results: false,
    };
    let finished = dispatch::run(&plan, setup, &mut store, progress, cancel).await;
    // The suite's reports, also when nodes failed (not when the run was interrupted).
    let guard = suite_files.iter().fold(
        crate::paths::Guard::for_kitt().with_store(&req.store),
        |g, f| g.protect(f, "a file of the suite"),
    );
    let (reports, reports_skipped) = if finished.status == RunStatus::Interrupted {
        (Vec::new(), 0)
    } else {
        render_reports(
            &req.suite_path,
            req.force,
            &registry,
            &checked.suite.reports,
            &mut store,
            &finished.run_id,
            &guard,
        )
        .await?
    };
    Ok(applied(Outcome::Ran(Box::new(Ran {
        finished,
        reports,
        reports_skipped,
    }))))
}

/// The directory of `path`, `.` when it has none.
fn parent_or_here(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
}

/// Renders and writes the suite's reports of run `run_id`; stops at Ctrl-C (the rest are
/// counted).
pub async fn render_reports(
    suite_path: &Path,
    force: bool,
    registry: &Registry,
    reports: &[crate::suite::model::ReportSpec],
    store: &mut Store,
    run_id: &str,
    guard: &crate::paths::Guard,
) -> anyhow::Result<(Vec<ReportOutcome>, usize)> {
    use crate::process::interrupt;
    let report = crate::report::context::Report::from_results(&store.run_results(run_id)?);
    let dirs = crate::report::render::override_dirs(Some(suite_path));
    let mut outcomes = Vec::new();
    for (i, spec) in reports.iter().enumerate() {
        if interrupt::seen() {
            return Ok((outcomes, reports.len() - i));
        }
        let Some(entry) = registry.reporters.get(&spec.reporter) else {
            outcomes.push(ReportOutcome {
                reporter: spec.reporter.clone(),
                written: Err(format!("reporter `{}` is not registered", spec.reporter)),
            });
            continue;
        };
        let rendered = crate::report::produce(
            &entry.info,
            &report,
            &dirs,
            &spec.params,
            interrupt::interrupted(),
        )
        .await;
        let rules = crate::report::write::Rules {
            guard: guard.clone(),
            force,
            store: Some(&*store),
        };
        let written = rendered.map_err(anyhow::Error::from).and_then(|text| {
            crate::report::deliver(
                &entry.info,
                &spec.output,
                &report,
                Path::new("."),
                &text,
                &rules,
            )
        });
        outcomes.push(ReportOutcome {
            reporter: spec.reporter.clone(),
            written: written.map_err(|e| format!("{e:#}")),
        });
    }
    Ok((outcomes, 0))
}

/// One benchmark on one engine outside a suite (`kitt test run`): a one-leg plan through the
/// same dispatcher, with a store in memory. `params` were checked before (an engine can
/// take minutes to start).
pub async fn run_one(
    registry: Arc<Registry>,
    leg: crate::suite::plan::LegInput,
    engine: crate::suite::model::EngineSpec,
    base_dir: PathBuf,
    progress: progress::Progress,
    cancel: impl Future<Output = ()>,
) -> anyhow::Result<Finished> {
    let fingerprint_gpus = Fingerprint::detect().gpus.len();
    let mut builder = crate::suite::plan::Builder::new(&registry, Some(fingerprint_gpus));
    builder.add_engine(&leg.engine.clone(), engine)?;
    let benchmark = leg.benchmark.clone();
    builder.add_leg(leg)?;
    let plan = builder.finish(
        crate::suite::plan::SuiteRef {
            name: format!("test-{benchmark}"),
            version: "0.0.0".into(),
        },
        1,
    );
    let mut store = Store::in_memory()?;
    let mut start = crate::engine::runtime::StartContext::new_run();
    start.gpus = Some(fingerprint_gpus);
    let run_id = start.run_id.clone();
    store.insert_run(&RunRecord {
        id: run_id.clone(),
        suite: plan.suite.name.clone(),
        suite_version: plan.suite.version.clone(),
        suite_path: String::new(),
        digest: String::new(),
        git_commit: None,
        git_dirty: None,
        started_at: crate::store::time::now(),
        ended_at: None,
        status: RunStatus::Running,
        kitt_version: env!("CARGO_PKG_VERSION").into(),
        fingerprint: String::new(),
        fingerprint_summary: String::new(),
        params: serde_json::json!({}),
        owner: None,
        heartbeat_at: None,
    })?;
    let setup = Setup {
        run_id,
        suite: plan.suite.name.clone(),
        registry,
        base_dir,
        cache_dir: crate::bench::dataset::cache_dir(),
        start,
        carried: Default::default(),
        gpus: fingerprint_gpus,
        locate: Arc::new(|_: &str, _: &str| None),
        keep_results: true,
    };
    Ok(dispatch::run(&plan, setup, &mut store, progress, cancel).await)
}

/// A new run of a checked suite, running, with its provenance (the suite file's digest and
/// git state) and this machine's fingerprint.
pub fn new_run(
    checked: &CheckedSuite,
    suite_path: &std::path::Path,
    text: &str,
    fingerprint: &crate::fingerprint::Fingerprint,
) -> anyhow::Result<RunRecord> {
    let origin = provenance::of(suite_path, text);
    Ok(RunRecord {
        id: crate::engine::runtime::new_run_id(),
        suite: checked.suite.metadata.name.clone(),
        suite_version: checked.suite.metadata.version.clone(),
        suite_path: suite_path.display().to_string(),
        digest: origin.digest,
        git_commit: origin.git_commit,
        git_dirty: origin.git_dirty,
        started_at: crate::store::time::now(),
        ended_at: None,
        status: RunStatus::Running,
        kitt_version: env!("CARGO_PKG_VERSION").into(),
        fingerprint: fingerprint.hash(),
        fingerprint_summary: fingerprint.summary(),
        params: serde_json::to_value(&checked.params)?,
        owner: None,
        heartbeat_at: None,
    })
}
