//! `validate`: a suite file through every check — YAML, schema, composition, types,
//! references, the DAG, templates and each node's params — into a [`CheckedSuite`].

use std::path::Path;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::compose::{compose, load_text, read_source};
use super::dag::NodeGraph;
use super::diagnostics::{Diagnostic, Location};
use super::expr::{self, Reference};
use super::load::Limits;
use super::matrix::{LegPolicy, MAX_LEGS_PER_NODE, leg_id};
use super::model::{EngineSpec, RunIf, RuntimeMode, Suite};
use super::model_format::detect_format;
use super::params::{self, Override};
use super::pointer;
use super::render::{ParamValues, render_string, render_value};
use super::schema_check::{self, display_path};
use super::workspace::{Origins, Workspace};
use crate::registry::{ModelFormat, Registry};

/// Most legs a whole suite may expand to.
pub const MAX_LEGS_PER_SUITE: usize = 10_000;

/// One run of one benchmark on one engine: a node, or one leg of a node's matrix.
#[derive(Debug, Clone)]
pub struct Leg {
    /// `node` or `node[axis=value,...]`.
    pub id: String,
    pub node: String,
    pub node_index: usize,
    pub benchmark: String,
    pub engine: String,
    pub matrix: Map<String, Value>,
    /// Params with suite params and matrix values rendered; outputs of earlier nodes stay `${{ }}`.
    pub params: Map<String, Value>,
    /// Ids of the nodes (not legs) this leg needs.
    pub needs: Vec<String>,
    pub run_if: RunIf,
    pub policy: Option<LegPolicy>,
}

/// An engine instance with its templates rendered and defaults applied.
#[derive(Debug, Clone)]
pub struct ResolvedEngine {
    pub name: String,
    pub uses: String,
    pub mode: RuntimeMode,
    pub model: Option<String>,
    pub image: Option<String>,
    pub url: Option<String>,
}

/// A suite that passed every check.
#[derive(Debug)]
pub struct CheckedSuite {
    pub suite: Suite,
    pub params: IndexMap<String, Value>,
    pub engines: IndexMap<String, ResolvedEngine>,
    pub legs: Vec<Leg>,
    /// The stage of each node (index as in `suite.nodes`).
    pub stages: Vec<usize>,
    /// Which file and pointer each part of the composed suite came from.
    pub origins: Origins,
}

/// The outcome of validating one file.
pub struct Validation {
    pub workspace: Workspace,
    pub diagnostics: Vec<Diagnostic>,
    pub suite: Option<CheckedSuite>,
}

impl Validation {
    /// Whether the file has any error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Whether suite params without a value are errors (plan) or unknowns (validate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    Allowed,
    Error,
}

/// Validates the suite at `path`.
pub fn validate_file(
    path: &Path,
    registry: &Registry,
    overrides: &[Override],
    unset: Unset,
) -> Validation {
    let mut workspace = Workspace::default();
    match read_source(&mut workspace, path, &Limits::default(), None) {
        Ok(text) => validate_source(path, text, registry, overrides, unset),
        Err(diagnostics) => Validation {
            workspace,
            diagnostics,
            suite: None,
        },
    }
}

/// Validates suite text as if read from `path` (includes resolve relative to it).
pub fn validate_source(
    path: &Path,
    text: String,
    registry: &Registry,
    overrides: &[Override],
    unset: Unset,
) -> Validation {
    let mut workspace = Workspace::default();
    let limits = Limits::default();
    let outcome = run(
        &mut workspace,
        path,
        text,
        registry,
        overrides,
        unset,
        &limits,
    );
    let (mut diagnostics, suite) = match outcome {
        Ok((diagnostics, suite)) => (diagnostics, suite),
        Err(diagnostics) => (diagnostics, None),
    };
    diagnostics.sort_by_key(|d| d.location.map(|l| (l.file, l.span.line, l.span.col)));
    Validation {
        workspace,
        diagnostics,
        suite,
    }
}

type Outcome = Result<(Vec<Diagnostic>, Option<CheckedSuite>), Vec<Diagnostic>>;

fn run(
    workspace: &mut Workspace,
    path: &Path,
    text: String,
    registry: &Registry,
    overrides: &[Override],
    unset: Unset,
    limits: &Limits,
) -> Outcome {
    let (main, mut value) = load_text(workspace, path, text, limits)?;
    if value.is_null() {
        return Err(vec![
            Diagnostic::error(
                "yaml",
                "the file holds no YAML document (it is empty or only comments)",
            )
            .at(workspace.locate(main, "", false))
            .hint("start from `kitt init`, or see suites/demo.yaml"),
        ]);
    }
    let errors = schema_check::check(super::schema::suite(), &value, &|p, k| {
        workspace.locate(main, p, k)
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    let origins = compose(workspace, main, &mut value, limits)?;
    let suite: Suite = serde_path_to_error::deserialize(&value).map_err(|e| {
        let pointer = path_to_pointer(&e.path().to_string());
        vec![
            Diagnostic::error("type", e.inner().to_string())
                .at(origins.locate(workspace, &pointer, false)),
        ]
    })?;
    let mut checker = Checker {
        workspace,
        origins: &origins,
        registry,
        suite: &suite,
        value: &value,
        diagnostics: Vec::new(),
    };
    let params = checker.params(overrides, unset);
    let index = checker.node_index();
    let needs = checker.needs(&index);
    let graph = NodeGraph::new(&needs);
    let acyclic = checker.cycles(&graph);
    let engines = checker.engines(&params);
    checker.nodes();
    checker.reports();
    checker.templates(&params, &index, &graph, acyclic);
    let legs = checker.legs(&params);
    let diagnostics = checker.diagnostics;
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Ok((diagnostics, None));
    }
    let params = params
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let stages = graph.stages();
    Ok((
        diagnostics,
        Some(CheckedSuite {
            suite,
            params,
            engines,
            legs,
            stages,
            origins: origins.clone(),
        }),
    ))
}

/// `nodes[2].timeout` → `/nodes/2/timeout`.
fn path_to_pointer(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        if part == "?" || part.is_empty() {
            continue;
        }
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        if !name.is_empty() {
            out.push('/');
            out.push_str(&pointer::escape(name));
        }
        for index in rest.split('[') {
            let index = index.trim_end_matches(']');
            if !index.is_empty() {
                out.push('/');
                out.push_str(index);
            }
        }
    }
    out
}

/// Runs the semantic checks, collecting diagnostics.
struct Checker<'a> {
    workspace: &'a Workspace,
    origins: &'a Origins,
    registry: &'a Registry,
    suite: &'a Suite,
    value: &'a Value,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn at(&self, pointer: &str) -> Location {
        self.origins.locate(self.workspace, pointer, false)
    }

    fn at_key(&self, pointer: &str) -> Location {
        self.origins.locate(self.workspace, pointer, true)
    }

    fn push(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    fn params(&mut self, overrides: &[Override], unset: Unset) -> ParamValues {
        for (name, spec) in &self.suite.params {
            if let Some(default) = &spec.default
                && !params::has_type(default, spec.kind)
            {
                let d = Diagnostic::error(
                    "param",
                    format!(
                        "the default of parameter `{name}` is not {}",
                        spec.kind.with_article()
                    ),
                )
                .at(self.at(&format!("{}/default", pointer::push("/params", name))));
                self.push(d);
            }
        }
        let values = match params::resolve(&self.suite.params, overrides) {
            Ok(v) => v,
            Err(message) => {
                self.push(Diagnostic::error("param", message));
                self.suite
                    .params
                    .iter()
                    .map(|(k, s)| (k.clone(), s.default.clone()))
                    .collect()
            }
        };
        if unset == Unset::Error {
            for (name, value) in &values {
                if value.is_none() {
                    let d = Diagnostic::error(
                        "param",
                        format!("parameter `{name}` has no default and was not given"),
                    )
                    .at(self.at_key(&pointer::push("/params", name)))
                    .hint(format!("pass `-p {name}=VALUE` or add a `default:`"));
                    self.push(d);
                }
            }
        }
        values
    }

    /// Node id → index of its first definition, reporting duplicates.
    fn node_index(&mut self) -> IndexMap<String, usize> {
        let mut index = IndexMap::new();
        for (i, node) in self.suite.nodes.iter().enumerate() {
            if let Some(&first) = index.get(&node.id) {
                let d = Diagnostic::error(
                    "duplicate-id",
                    format!("node id `{}` is used twice", node.id),
                )
                .at(self.at(&format!("/nodes/{i}/id")))
                .related("first used here", self.at(&format!("/nodes/{first}/id")))
                .hint("node ids must be unique; rename one of them");
                self.push(d);
            } else {
                index.insert(node.id.clone(), i);
            }
        }
        index
    }

    /// Each node's needed node indices, reporting unknown and self references.
    fn needs(&mut self, index: &IndexMap<String, usize>) -> Vec<Vec<usize>> {
        let mut all = Vec::new();
        for (i, node) in self.suite.nodes.iter().enumerate() {
            let mut deps = Vec::new();
            for (j, need) in node.body.needs.iter().enumerate() {
                let at = format!("/nodes/{i}/needs/{j}");
                match index.get(need) {
                    Some(&d) if d == i => self.push(
                        Diagnostic::error("cycle", format!("node `{need}` needs itself"))
                            .at(self.at(&at))
                            .hint("remove it from its own `needs`"),
                    ),
                    Some(&d) => {
                        if deps.contains(&d) {
                            self.push(
                                Diagnostic::error(
                                    "duplicate-need",
                                    format!("`{need}` is listed twice in `needs`"),
                                )
                                .at(self.at(&at)),
                            );
                        }
                        deps.push(d);
                    }
                    None => {
                        let hint = crate::registry::suggest(need, index.keys().map(String::as_str))
                            .map(|s| format!("did you mean `{s}`?"))
                            .unwrap_or_else(|| {
                                format!(
                                    "nodes of this suite: {}",
                                    index.keys().cloned().collect::<Vec<_>>().join(", ")
                                )
                            });
                        self.push(
                            Diagnostic::error(
                                "unknown-node",
                                format!(
                                    "`needs` names `{need}`, which is not a node of this suite"
                                ),
                            )
                            .at(self.at(&at))
                            .hint(hint),
                        );
                    }
                }
            }
            all.push(deps);
        }
        all
    }

    /// Reports dependency cycles; true when there are none.
    fn cycles(&mut self, graph: &NodeGraph) -> bool {
        let cycles = graph.cycles();
        for cycle in &cycles {
            if cycle.len() == 2 {
                continue; // a node needing itself was reported already
            }
            let names: Vec<&str> = cycle
                .iter()
                .map(|&i| self.suite.nodes[i].id.as_str())
                .collect();
            // cycle[k + 1] needs cycle[k]; point at the `needs` entry closing the cycle.
            let mut d = Diagnostic::error(
                "cycle",
                format!(
                    "dependency cycle: {} (each runs after the one before it)",
                    names.join(" → ")
                ),
            )
            .hint(
                "a node cannot (even indirectly) need itself; remove one of these `needs` entries",
            );
            for pair in cycle.windows(2) {
                let (from, to) = (pair[0], pair[1]);
                let j = self.suite.nodes[to]
                    .body
                    .needs
                    .iter()
                    .position(|n| *n == self.suite.nodes[from].id)
                    .unwrap_or(0);
                let at = self.at(&format!("/nodes/{to}/needs/{j}"));
                if d.location.is_none() {
                    d = d.at(at);
                } else {
                    d = d.related(
                        format!(
                            "`{}` needs `{}`",
                            names_of(self.suite, to),
                            names_of(self.suite, from)
                        ),
                        at,
                    );
                }
            }
            self.push(d);
        }
        cycles.is_empty()
    }

    fn engines(&mut self, params: &ParamValues) -> IndexMap<String, ResolvedEngine> {
        let mut resolved = IndexMap::new();
        for (name, spec) in &self.suite.engines {
            let base = pointer::push("/engines", name);
            for (key, value) in [
                ("startup_timeout", spec.startup_timeout),
                ("request_timeout", spec.request_timeout),
            ] {
                self.positive(value, &format!("{base}/{key}"));
            }
            let Some(entry) = self.registry.engines.get(&spec.uses) else {
                let hint = self.registry.engines.unknown_hint(&spec.uses);
                let d = Diagnostic::error(
                    "unknown-engine",
                    format!("no engine named `{}` is registered", spec.uses),
                )
                .at(self.at(&format!("{base}/uses")))
                .hint(hint);
                self.push(d);
                continue;
            };
            let info = &entry.info;
            let mode = spec.mode.unwrap_or(info.modes[0]);
            if !info.modes.contains(&mode) {
                let modes: Vec<String> = info.modes.iter().map(ToString::to_string).collect();
                let d = Diagnostic::error(
                    "mode",
                    format!("engine `{}` cannot run in {mode} mode", info.name),
                )
                .at(self.at(&format!("{base}/mode")))
                .hint(format!("`{}` supports: {}", info.name, modes.join(", ")));
                self.push(d);
                continue;
            }
            let model = render_string(spec.model.as_deref(), params);
            let image =
                render_string(spec.image.as_deref(), params).or_else(|| info.default_image.clone());
            let url = render_string(spec.url.as_deref(), params);
            if mode == RuntimeMode::External && spec.url.is_none() {
                let d = Diagnostic::error(
                    "engine",
                    format!("engine `{name}` runs in external mode but has no `url`"),
                )
                .at(self.at_key(&base))
                .hint("add `url: http://HOST:PORT` of the running server");
                self.push(d);
            }
            if mode != RuntimeMode::External && spec.url.is_some() {
                let d = Diagnostic::error("engine", format!("`url` is only used in external mode, but engine `{name}` runs in {mode} mode"))
                    .at(self.at_key(&format!("{base}/url")))
                    .hint("set `mode: external`, or remove `url`");
                self.push(d);
            }
            if mode == RuntimeMode::Docker && image.is_none() {
                let d = Diagnostic::error(
                    "engine",
                    format!("engine `{name}` runs in docker mode but no image is known"),
                )
                .at(self.at_key(&base))
                .hint("add `image:`");
                self.push(d);
            }
            if info.model_required && spec.model.is_none() {
                let d = Diagnostic::error(
                    "engine",
                    format!("engine `{name}` ({}) names no model", info.name),
                )
                .at(self.at_key(&base))
                .hint("add `model:` (a path, a Hugging Face id or a tag, as the engine takes it)");
                self.push(d);
            }
            if let Some(model) = &model {
                self.check_format(name, spec, model, &info.formats);
            }
            let (config, deferred) =
                render_value(&Value::Object(spec.config.clone()), params, None);
            match entry.validator(&info.config_schema) {
                Ok(validator) => {
                    let config_base = format!("{base}/config");
                    let errors = schema_check::check_with(
                        validator,
                        &info.config_schema,
                        &config,
                        &|p, k| {
                            self.origins
                                .locate(self.workspace, &format!("{config_base}{p}"), k)
                        },
                    );
                    self.diagnostics.extend(without_deferred(
                        errors,
                        &deferred,
                        self,
                        &config_base,
                    ));
                }
                Err(e) => {
                    let d = Diagnostic::error("registry", format!("engine `{}`: {e}", info.name));
                    self.push(d);
                }
            }
            if !self
                .suite
                .nodes
                .iter()
                .any(|n| n.body.engine.as_deref() == Some(name))
            {
                let mut d = Diagnostic::error(
                    "unused-engine",
                    format!("engine `{name}` is not used by any node"),
                )
                .at(self.at_key(&base))
                .hint("remove it, or use it in a node's `engine:`");
                d.severity = super::diagnostics::Severity::Warning;
                self.push(d);
            }
            resolved.insert(
                name.clone(),
                ResolvedEngine {
                    name: name.clone(),
                    uses: info.name.clone(),
                    mode,
                    model,
                    image: if mode == RuntimeMode::Docker {
                        image
                    } else {
                        None
                    },
                    url,
                },
            );
        }
        resolved
    }

    fn check_format(
        &mut self,
        name: &str,
        spec: &EngineSpec,
        model: &str,
        formats: &[ModelFormat],
    ) {
        if formats.contains(&ModelFormat::ServerSide) {
            return;
        }
        let Some(format) = detect_format(model) else {
            return;
        };
        if formats.contains(&format) {
            return;
        }
        let takers: Vec<&str> = self
            .registry
            .engines
            .iter()
            .filter(|e| e.info.formats.contains(&format))
            .map(|e| e.info.name.as_str())
            .collect();
        let d = Diagnostic::error(
            "model-format",
            format!(
                "model `{model}` is a {format} model, which engine `{}` does not load",
                spec.uses
            ),
        )
        .at(self.at(&format!("{}/model", pointer::push("/engines", name))))
        .hint(if takers.is_empty() {
            format!(
                "`{}` loads: {}",
                spec.uses,
                formats
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!("engines that load {format} models: {}", takers.join(", "))
        });
        self.push(d);
    }

    /// A time limit of zero would fail everything at once: refused where it is written.
    fn positive(&mut self, limit: Option<super::model::Duration>, at: &str) {
        if limit.is_some_and(|d| d.0.is_zero()) {
            self.push(
                Diagnostic::error(
                    "timeout",
                    "a time limit of zero would stop everything at once",
                )
                .at(self.at(at))
                .hint(
                    "give a positive duration such as 30s or 10m, or leave it out for the default",
                ),
            );
        }
    }

    /// A telemetry interval below the shortest kitt samples at, refused where it is written.
    /// `metrics:` anywhere but under an engine, where it says nothing, is refused too.
    fn telemetry(&mut self, telemetry: Option<&super::model::Telemetry>, at: &str) {
        if telemetry.is_some_and(|t| t.metrics.is_some()) && !at.starts_with("/engines/") {
            self.push(
                Diagnostic::error(
                    "telemetry",
                    "`telemetry: metrics:` names an engine's metric vocabulary, so it belongs under that engine",
                )
                .at(self.at_key(&format!("{at}/telemetry/metrics")))
                .hint("move it to `engines: NAME: telemetry: metrics:`"),
            );
        }
        let mut recorded: Vec<String> = Vec::new();
        for (i, target) in telemetry.iter().flat_map(|t| t.scrape.iter().enumerate()) {
            for series in target.series.keys() {
                let base = super::model::ScrapeTarget::figure_base(series);
                if recorded.contains(&base) {
                    let at = format!("{at}/telemetry/scrape/{i}/series");
                    self.push(
                        Diagnostic::error(
                            "telemetry",
                            format!("`{series}` is recorded from two pages; its figures would have one name"),
                        )
                        .at(self.at_key(&pointer::push(&at, series)))
                        .hint("record each series from one page"),
                    );
                }
                recorded.push(base);
            }
        }
        let Some(interval) = telemetry.and_then(|t| t.interval) else {
            return;
        };
        let least = crate::suite::model::MIN_TELEMETRY_INTERVAL;
        if interval.0 < least {
            self.push(
                Diagnostic::error(
                    "telemetry",
                    format!(
                        "a telemetry interval of {:?} is below the shortest, {least:?}",
                        interval.0
                    ),
                )
                .at(self.at(&format!("{at}/telemetry/interval")))
                .hint("give 100ms or more (the default is 1s)"),
            );
        }
    }

    fn nodes(&mut self) {
        let suite = self.suite;
        self.telemetry(suite.telemetry.as_ref(), "");
        for (name, spec) in &suite.engines {
            self.telemetry(spec.telemetry.as_ref(), &pointer::push("/engines", name));
        }
        for (i, node) in self.suite.nodes.iter().enumerate() {
            let base = format!("/nodes/{i}");
            self.telemetry(node.body.telemetry.as_ref(), &base);
            self.positive(node.body.timeout, &format!("{base}/timeout"));
            match node.body.benchmark.as_deref() {
                None => self.push(
                    Diagnostic::error("node", format!("node `{}` names no benchmark", node.id))
                        .at(self.at_key(&base))
                        .hint("add `benchmark:` (see `kitt test list`), or `extends:` a template that sets one"),
                ),
                Some(b) if expr::is_templated(b) => {} // reported by the template check
                Some(b) => {
                    if let Some(entry) = self.registry.benchmarks.get(b) {
                        self.asserts(i, &entry.info);
                    } else {
                        let hint = self.registry.benchmarks.unknown_hint(b);
                        self.push(
                            Diagnostic::error("unknown-benchmark", format!("no benchmark named `{b}` is registered"))
                                .at(self.at(&format!("{base}/benchmark")))
                                .hint(hint),
                        );
                    }
                }
            }
            match node.body.engine.as_deref() {
                None => self.push(
                    Diagnostic::error("node", format!("node `{}` names no engine", node.id))
                        .at(self.at_key(&base))
                        .hint("add `engine:` with the name of one of the suite's `engines:`"),
                ),
                Some(e) if expr::is_templated(e) => {} // reported by the template check
                Some(e) if !self.suite.engines.contains_key(e) => {
                    let names = self.suite.engines.keys().map(String::as_str);
                    let hint = match crate::registry::suggest(e, names) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if self.registry.engines.get(e).is_some() => {
                            format!(
                                "`{e}` is a registered engine; declare an instance under `engines:` (e.g. `{e}: {{uses: {e}, model: ...}}`) and name it here"
                            )
                        }
                        None => format!(
                            "engines of this suite: {}",
                            self.suite
                                .engines
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    self.push(
                        Diagnostic::error(
                            "unknown-engine",
                            format!(
                                "node `{}` uses engine `{e}`, which the suite does not declare",
                                node.id
                            ),
                        )
                        .at(self.at(&format!("{base}/engine")))
                        .hint(hint),
                    );
                }
                Some(_) => {}
            }
        }
    }

    fn asserts(&mut self, i: usize, info: &crate::registry::BenchmarkInfo) {
        let node = &self.suite.nodes[i];
        for (metric, bound) in &node.body.assert {
            let at = pointer::push(&format!("/nodes/{i}/assert"), metric);
            let known = info.metrics.iter().any(|m| &m.name == metric)
                || info
                    .dynamic_metric_prefixes
                    .iter()
                    .any(|p| metric.starts_with(p.as_str()));
            if !known {
                let hint =
                    crate::registry::suggest(metric, info.metrics.iter().map(|m| m.name.as_str()))
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            format!("`kitt test show {}` lists its metrics", info.name)
                        });
                self.push(
                    Diagnostic::error(
                        "unknown-metric",
                        format!("benchmark `{}` reports no metric `{metric}`", info.name),
                    )
                    .at(self.at_key(&at))
                    .hint(hint),
                );
            }
            if (bound.min_ratio.is_some() || bound.max_ratio.is_some()) && bound.baseline.is_none()
            {
                self.push(
                    Diagnostic::error(
                        "assert",
                        format!("`{metric}` has a ratio bound but no `baseline`"),
                    )
                    .at(self.at_key(&at))
                    .hint("add `baseline: last-success` or a run id"),
                );
            }
            if let (Some(min), Some(max)) = (bound.min, bound.max)
                && min > max
            {
                self.push(
                    Diagnostic::error(
                        "assert",
                        format!("`{metric}`: min {min} is above max {max}; no value can pass"),
                    )
                    .at(self.at(&format!("{at}/min"))),
                );
            }
        }
    }

    fn reports(&mut self) {
        for (i, report) in self.suite.reports.iter().enumerate() {
            let base = format!("/reports/{i}");
            let Some(entry) = self.registry.reporters.get(&report.reporter) else {
                let hint = self.registry.reporters.unknown_hint(&report.reporter);
                self.push(
                    Diagnostic::error(
                        "unknown-reporter",
                        format!("no reporter named `{}` is registered", report.reporter),
                    )
                    .at(self.at(&format!("{base}/reporter")))
                    .hint(hint),
                );
                continue;
            };
            if report.output.trim().is_empty() {
                self.push(
                    Diagnostic::error("report", "a report needs an `output` path")
                        .at(self.at(&format!("{base}/output"))),
                );
            } else if let Err(why) = super::report_output::check(&report.output) {
                self.push(
                    Diagnostic::error("report-output", why).at(self.at(&format!("{base}/output"))),
                );
            }
            if let Ok(validator) = entry.validator(&entry.info.params_schema) {
                let params_base = format!("{base}/params");
                let errors = schema_check::check_with(
                    validator,
                    &entry.info.params_schema,
                    &Value::Object(report.params.clone()),
                    &|p, k| {
                        self.origins
                            .locate(self.workspace, &format!("{params_base}{p}"), k)
                    },
                );
                self.diagnostics.extend(errors);
            }
        }
    }

    /// Checks every `${{ }}`: allowed in this field, well formed, and referring to something
    /// that exists where it is used.
    fn templates(
        &mut self,
        params: &ParamValues,
        index: &IndexMap<String, usize>,
        graph: &NodeGraph,
        acyclic: bool,
    ) {
        let mut found = Vec::new();
        collect_templated(self.value, String::new(), &mut found);
        let schema = &super::schema::suite().document;
        for (ptr, text) in found {
            let segments: Vec<String> = pointer::segments(&ptr).collect();
            let at = self.at(&ptr);
            if !super::schema::is_templatable(schema, &segments) {
                self.push(
                    Diagnostic::error("template", format!("`${{{{ }}}}` is not allowed in `{}`", display_path(&ptr)))
                        .at(at)
                        .hint("expressions are allowed in engine model, image, url, args, env and config, and in node and report params"),
                );
                continue;
            }
            let pieces = match expr::parse(&text) {
                Ok(p) => p,
                Err(message) => {
                    self.push(Diagnostic::error("template", message).at(at));
                    continue;
                }
            };
            let node = (segments.first().map(String::as_str) == Some("nodes"))
                .then(|| segments.get(1).and_then(|s| s.parse::<usize>().ok()))
                .flatten();
            for piece in pieces {
                let expr::Piece::Expr(reference) = piece else {
                    continue;
                };
                if let Some(d) =
                    self.check_reference(&reference, node, params, index, graph, acyclic)
                {
                    self.push(d.at(at));
                }
            }
        }
    }

    fn check_reference(
        &self,
        reference: &Reference,
        node: Option<usize>,
        params: &ParamValues,
        index: &IndexMap<String, usize>,
        graph: &NodeGraph,
        acyclic: bool,
    ) -> Option<Diagnostic> {
        match reference {
            Reference::Param(name) => (!params.contains_key(name)).then(|| {
                Diagnostic::error("template", format!("`params.{name}` is not a parameter of this suite")).hint(
                    crate::registry::suggest(name, params.keys().map(String::as_str))
                        .map(|s| format!("did you mean `params.{s}`?"))
                        .unwrap_or_else(|| format!("declare it under `params:` (e.g. `{name}: {{type: string, default: ...}}`)")),
                )
            }),
            Reference::Matrix(key) => {
                let Some(i) = node else {
                    return Some(Diagnostic::error("template", format!("`matrix.{key}` is only available inside a node with a matrix")));
                };
                let keys = self.suite.nodes[i].body.matrix.as_ref().map(|m| m.keys()).unwrap_or_default();
                (!keys.contains(key)).then(|| {
                    Diagnostic::error("template", format!("node `{}` has no matrix value `{key}`", self.suite.nodes[i].id)).hint(
                        if keys.is_empty() {
                            "add a `matrix:` with this axis to the node".to_string()
                        } else {
                            crate::registry::suggest(key, keys.iter().map(String::as_str))
                                .map(|s| format!("did you mean `matrix.{s}`?"))
                                .unwrap_or_else(|| format!("its matrix has: {}", keys.join(", ")))
                        },
                    )
                })
            }
            Reference::NodeOutput { node: target, output } => {
                let Some(i) = node else {
                    return Some(Diagnostic::error("template", format!("`nodes.{target}.outputs.{output}` is only available in node params")));
                };
                let Some(&t) = index.get(target) else {
                    return Some(
                        Diagnostic::error("template", format!("`nodes.{target}` is not a node of this suite")).maybe_hint(
                            crate::registry::suggest(target, index.keys().map(String::as_str)).map(|s| format!("did you mean `nodes.{s}`?")),
                        ),
                    );
                };
                if acyclic && !graph.ancestors(i).contains(&t) {
                    return Some(
                        Diagnostic::error(
                            "template",
                            format!("node `{}` reads an output of `{target}` but does not need it", self.suite.nodes[i].id),
                        )
                        .hint(format!("add `{target}` to its `needs` so it runs first")),
                    );
                }
                let outputs = self.suite.nodes[t]
                    .body
                    .benchmark
                    .as_deref()
                    .and_then(|b| self.registry.benchmarks.get(b))
                    .map(|e| e.info.outputs.clone())?;
                (!outputs.contains(output)).then(|| {
                    Diagnostic::error("template", format!("node `{target}` has no output `{output}`")).hint(
                        crate::registry::suggest(output, outputs.iter().map(String::as_str))
                            .map(|s| format!("did you mean `{s}`?"))
                            .unwrap_or_else(|| format!("its outputs: {}", outputs.join(", "))),
                    )
                })
            }
        }
    }

    /// Expands every node into legs and checks each leg's params against its benchmark.
    fn legs(&mut self, params: &ParamValues) -> Vec<Leg> {
        let mut legs = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, node) in self.suite.nodes.iter().enumerate() {
            let base = format!("/nodes/{i}");
            let (combos, policy) = match &node.body.matrix {
                None => (vec![Map::new()], None),
                Some(m) => match m.expand(MAX_LEGS_PER_NODE) {
                    Ok(c) => (c, Some(m.policy())),
                    Err(e) => {
                        let d = Diagnostic::error("matrix", e.message)
                            .at(self.at(&format!("{base}/matrix{}", e.pointer)))
                            .maybe_hint(e.hint);
                        self.push(d);
                        continue;
                    }
                },
            };
            if legs.len() + combos.len() > MAX_LEGS_PER_SUITE {
                let d = Diagnostic::error(
                    "matrix",
                    format!("the suite expands to more than {MAX_LEGS_PER_SUITE} legs"),
                )
                .at(self.at_key(&base))
                .hint("split it into several suites");
                self.push(d);
                return legs;
            }
            let entry = node
                .body
                .benchmark
                .as_deref()
                .and_then(|b| self.registry.benchmarks.get(b));
            let node_params = Value::Object(node.body.params.clone());
            for combo in combos {
                let id = leg_id(&node.id, &combo);
                let (rendered, deferred) = render_value(&node_params, params, Some(&combo));
                if let Some(entry) = entry
                    && let Ok(validator) = entry.validator(&entry.info.params_schema)
                {
                    let params_base = format!("{base}/params");
                    let errors = schema_check::check_with(
                        validator,
                        &entry.info.params_schema,
                        &rendered,
                        &|p, k| {
                            self.origins
                                .locate(self.workspace, &format!("{params_base}{p}"), k)
                        },
                    );
                    for mut d in without_deferred(errors, &deferred, self, &params_base) {
                        if !combo.is_empty() {
                            d.message = format!("{}: {}", id, d.message);
                        }
                        if seen.insert((
                            d.location.map(|l| (l.file, l.span.line, l.span.col)),
                            d.message.clone(),
                        )) {
                            d.code = "params";
                            self.push(d);
                        }
                    }
                }
                legs.push(Leg {
                    id,
                    node: node.id.clone(),
                    node_index: i,
                    benchmark: node.body.benchmark.clone().unwrap_or_default(),
                    engine: node.body.engine.clone().unwrap_or_default(),
                    matrix: combo,
                    params: rendered.as_object().cloned().unwrap_or_default(),
                    needs: node.body.needs.clone(),
                    run_if: node.body.run_if.unwrap_or_default(),
                    policy,
                });
            }
        }
        legs
    }
}

fn names_of(suite: &Suite, i: usize) -> &str {
    &suite.nodes[i].id
}

/// Drops schema errors about values that stay unknown until run time.
fn without_deferred(
    errors: Vec<Diagnostic>,
    deferred: &[String],
    checker: &Checker<'_>,
    base: &str,
) -> Vec<Diagnostic> {
    if deferred.is_empty() {
        return errors;
    }
    let deferred_locations: Vec<Location> = deferred
        .iter()
        .map(|p| {
            checker
                .origins
                .locate(checker.workspace, &format!("{base}{p}"), false)
        })
        .collect();
    errors
        .into_iter()
        .filter(|d| match d.location {
            Some(l) => !deferred_locations.contains(&l),
            None => true,
        })
        .collect()
}

/// Every string under `value` that holds `${{`, with its pointer.
fn collect_templated(value: &Value, pointer: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) if expr::is_templated(s) => out.push((pointer, s.clone())),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_templated(v, pointer::push_index(&pointer, i), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                collect_templated(v, pointer::push(&pointer, k), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_paths_become_pointers() {
        assert_eq!(path_to_pointer("nodes[2].timeout"), "/nodes/2/timeout");
        assert_eq!(path_to_pointer("engines.vllm.mode"), "/engines/vllm/mode");
        assert_eq!(
            path_to_pointer("nodes[0].matrix.c[1]"),
            "/nodes/0/matrix/c/1"
        );
    }
}
