//! `kitt apply`: validate, plan, choose the legs (all, `--only`, `--only-changed`,
//! `--resume`), record the run, dispatch it, print the summary, decide the exit code.

pub mod asserts;
pub mod dispatch;
pub mod outputs;
pub mod prepare;
pub mod progress;
pub mod provenance;
pub mod selection;
pub mod summary;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use crate::exit;
use crate::fingerprint::Fingerprint;
use crate::registry::Registry;
use crate::store::{RunRecord, RunStatus, Store};
use crate::suite::diagnostics;
use crate::suite::params::Override;
use crate::suite::validate::{Unset, validate_source};

/// Finds `file:line:col` of a pointer into a node's params (for plugin errors that point).
pub type Locator = Arc<dyn Fn(&str, &str) -> Option<String> + Send + Sync>;

fn locator(
    checked: &crate::suite::validate::CheckedSuite,
    workspace: crate::suite::workspace::Workspace,
) -> Locator {
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

/// Applies a suite; returns the exit code (0 held, 1 invalid/failed/breached, 130
/// interrupted). `cancel` resolving interrupts the run.
pub async fn apply(
    req: &ApplyRequest,
    registry: Arc<Registry>,
    cancel: impl Future<Output = ()>,
) -> anyhow::Result<u8> {
    let text = match &req.suite_text {
        Some(t) => t.clone(),
        None => {
            let mut workspace = crate::suite::workspace::Workspace::default();
            let limits = crate::suite::load::Limits::default();
            match crate::suite::compose::read_source(&mut workspace, &req.suite_path, &limits, None)
            {
                Ok(text) => text,
                Err(diagnostics) => {
                    let rendered = diagnostics::render_human(&diagnostics, &workspace.sources);
                    crate::output::stderr().write_all(rendered.as_bytes())?;
                    return Ok(exit::FAILED);
                }
            }
        }
    };
    let validation = validate_source(
        &req.suite_path,
        text.clone(),
        &registry,
        &req.overrides,
        Unset::Error,
    );
    let rendered =
        diagnostics::render_human(&validation.diagnostics, &validation.workspace.sources);
    crate::output::stderr().write_all(rendered.as_bytes())?;
    let crate::suite::validate::Validation {
        workspace, suite, ..
    } = validation;
    let Some(checked) = suite else {
        return Ok(exit::FAILED);
    };
    let checked = &checked;
    crate::engine::start::register_secrets(checked.suite.engines.values());
    let suite_files: Vec<PathBuf> = (0..)
        .map_while(|i| workspace.sources.try_get(i).map(|f| f.path.clone()))
        .collect();
    let locate = locator(checked, workspace);
    let prepared = prepare::prepare(checked, &registry)?;
    let mut store = Store::open(&req.store)?;
    let suite_name = checked.suite.metadata.name.clone();
    let choice = selection::choose(req, &prepared, &store, &suite_name)?;
    if req.dry_run {
        let plan = crate::suite::plan::plan(checked);
        let mut out = crate::output::stdout();
        out.write_all(plan.render_text().as_bytes())?;
        writeln!(out, "\n{}", choice.describe(&prepared))?;
        writeln!(out, "dry run: nothing was started")?;
        return Ok(exit::OK);
    }
    let fingerprint = Fingerprint::detect();
    let run_id = match &choice.resume {
        Some(id) => {
            store.take_over(id)?;
            id.clone()
        }
        None => {
            let origin = provenance::of(&req.suite_path, &text);
            let id = crate::engine::runtime::new_run_id();
            store.insert_run(&RunRecord {
                id: id.clone(),
                suite: suite_name.clone(),
                suite_version: checked.suite.metadata.version.clone(),
                suite_path: req.suite_path.display().to_string(),
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
            })?;
            selection::copy_carried(&mut store, &choice, &prepared, &id)?;
            id
        }
    };
    let progress = progress::Progress::new(req.plain);
    progress.say(&format!(
        "run {run_id}: suite {} {}, {} legs ({} to run), store {}",
        suite_name,
        checked.suite.metadata.version,
        prepared.legs.len(),
        prepared.legs.len() - choice.carried.len(),
        req.store.display()
    ));
    let base_dir = req
        .suite_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let mut start = crate::engine::runtime::StartContext::new_run();
    // Logs go beside the store the run is written to (a test's or CI's own directory).
    let store_dir = req
        .store
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    start.run_dir = crate::paths::child(
        &store_dir.join("runs"),
        crate::paths::NameKind::Run,
        &run_id,
    )?;
    start.run_id = run_id.clone();
    start.gpus = Some(fingerprint.gpus.len());
    let setup = dispatch::Setup {
        run_id: run_id.clone(),
        suite: suite_name,
        prepared,
        registry: registry.clone(),
        base_dir,
        cache_dir: crate::bench::dataset::cache_dir(),
        start,
        carried: choice.carried,
        gpus: fingerprint.gpus.len(),
        locate,
    };
    let reports = checked.suite.reports.clone();
    let finished = dispatch::run(setup, &mut store, progress, cancel).await;
    let mut out = crate::output::stdout();
    out.write_all(summary::render(&finished, &req.store).as_bytes())?;
    drop(out);
    // The suite's reports, also when nodes failed or the run was interrupted.
    let guard = suite_files.iter().fold(
        crate::paths::Guard::for_kitt().with_store(&req.store),
        |g, f| g.protect(f, "a file of the suite"),
    );
    let reports_ok = if reports.is_empty() || finished.status == RunStatus::Interrupted {
        true
    } else {
        render_reports(
            req,
            &registry,
            &reports,
            &mut store,
            &finished.run_id,
            &guard,
        )
        .await?
    };
    if !finished.store_errors.is_empty() {
        crate::errln!(
            "error: {} results could not be stored in {}; the run is not complete (is the disk full?)",
            finished.store_errors.len(),
            req.store.display()
        );
    }
    Ok(match finished.status {
        _ if crate::process::interrupt::seen() => exit::INTERRUPTED,
        RunStatus::Interrupted => exit::INTERRUPTED,
        RunStatus::Succeeded if reports_ok => exit::OK,
        _ => exit::FAILED,
    })
}

/// Renders and writes the suite's reports; false when one of them failed. Stops at Ctrl-C.
async fn render_reports(
    req: &ApplyRequest,
    registry: &Registry,
    reports: &[crate::suite::model::ReportSpec],
    store: &mut Store,
    run_id: &str,
    guard: &crate::paths::Guard,
) -> anyhow::Result<bool> {
    use crate::process::interrupt;
    let report = crate::report::context::Report::from_results(&store.run_results(run_id)?);
    let dirs = crate::report::render::override_dirs(Some(&req.suite_path));
    let mut ok = true;
    for spec in reports {
        if interrupt::seen() {
            crate::errln!("interrupted: the remaining reports were not written");
            return Ok(false);
        }
        let Some(entry) = registry.reporters.get(&spec.reporter) else {
            ok = false;
            crate::errln!("error: reporter `{}` is not registered", spec.reporter);
            continue;
        };
        let rendered =
            crate::report::sandbox::render(&entry.info, &report, &dirs, interrupt::interrupted())
                .await;
        let rules = crate::report::write::Rules {
            guard: guard.clone(),
            force: req.force,
            store: Some(&*store),
        };
        let written = rendered.map_err(anyhow::Error::from).and_then(|text| {
            crate::report::deliver(
                &entry.info,
                &spec.output,
                &report,
                std::path::Path::new("."),
                &text,
                &rules,
            )
        });
        match written {
            Ok(path) => crate::outln!("report {}: {}", spec.reporter, path.display()),
            Err(e) => {
                ok = false;
                crate::errln!("error: {e:#}");
            }
        }
    }
    Ok(ok)
}
