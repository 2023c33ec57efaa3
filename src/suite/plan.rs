//! `plan`: the expanded, ordered DAG of a checked suite — stages of legs that may run side
//! by side, when each engine starts and stops, and the images needed.

use serde::Serialize;
use serde_json::{Map, Value};

use super::model::{RunIf, RuntimeMode};
use super::validate::CheckedSuite;

/// The documented version of the plan's JSON shape.
pub const PLAN_FORMAT_VERSION: u32 = 1;

/// What `kitt apply` would do, in order.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub version: u32,
    pub suite: SuiteRef,
    /// Most legs that run at the same time.
    pub parallelism: u32,
    pub stages: Vec<Stage>,
    pub engines: Vec<EngineLifetime>,
    /// Container images the docker-mode engines need.
    pub images: Vec<String>,
}

/// The suite a plan is for.
#[derive(Debug, Serialize)]
pub struct SuiteRef {
    pub name: String,
    pub version: String,
}

/// Legs whose dependencies all finish in earlier stages. Legs on different engines may run
/// side by side (up to `parallelism`); legs sharing an engine run one after another.
#[derive(Debug, Serialize)]
pub struct Stage {
    pub stage: usize,
    pub legs: Vec<PlannedLeg>,
    /// Groups of legs, one group per engine; groups may run side by side.
    pub side_by_side: Vec<Vec<String>>,
}

/// One run of a benchmark on an engine.
#[derive(Debug, Serialize)]
pub struct PlannedLeg {
    pub id: String,
    pub node: String,
    pub benchmark: String,
    pub engine: String,
    pub needs: Vec<String>,
    pub run_if: RunIf,
    pub matrix: Map<String, Value>,
    pub params: Map<String, Value>,
}

/// When an engine is up: started before its first stage, stopped after its last.
#[derive(Debug, Serialize)]
pub struct EngineLifetime {
    pub name: String,
    pub uses: String,
    pub mode: RuntimeMode,
    pub model: Option<String>,
    pub image: Option<String>,
    pub start_before_stage: usize,
    pub stop_after_stage: usize,
}

/// Builds the plan of a checked suite.
pub fn plan(checked: &CheckedSuite) -> Plan {
    let stage_count = checked.stages.iter().copied().max().map_or(0, |m| m + 1);
    let mut stages: Vec<Stage> = (0..stage_count)
        .map(|s| Stage {
            stage: s + 1,
            legs: Vec::new(),
            side_by_side: Vec::new(),
        })
        .collect();
    for leg in &checked.legs {
        let stage = &mut stages[checked.stages[leg.node_index]];
        stage.legs.push(PlannedLeg {
            id: leg.id.clone(),
            node: leg.node.clone(),
            benchmark: leg.benchmark.clone(),
            engine: leg.engine.clone(),
            needs: leg.needs.clone(),
            run_if: leg.run_if,
            matrix: leg.matrix.clone(),
            params: leg.params.clone(),
        });
    }
    for stage in &mut stages {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for leg in &stage.legs {
            match groups.iter_mut().find(|(e, _)| *e == leg.engine) {
                Some((_, ids)) => ids.push(leg.id.clone()),
                None => groups.push((leg.engine.clone(), vec![leg.id.clone()])),
            }
        }
        stage.side_by_side = groups.into_iter().map(|(_, ids)| ids).collect();
    }
    let mut engines = Vec::new();
    for (name, engine) in &checked.engines {
        let used: Vec<usize> = checked
            .legs
            .iter()
            .filter(|l| &l.engine == name)
            .map(|l| checked.stages[l.node_index] + 1)
            .collect();
        let (Some(first), Some(last)) = (used.iter().min(), used.iter().max()) else {
            continue;
        };
        engines.push(EngineLifetime {
            name: name.clone(),
            uses: engine.uses.clone(),
            mode: engine.mode,
            model: engine.model.clone(),
            image: engine.image.clone(),
            start_before_stage: *first,
            stop_after_stage: *last,
        });
    }
    let mut images: Vec<String> = engines.iter().filter_map(|e| e.image.clone()).collect();
    images.sort();
    images.dedup();
    Plan {
        version: PLAN_FORMAT_VERSION,
        suite: SuiteRef {
            name: checked.suite.metadata.name.clone(),
            version: checked.suite.metadata.version.clone(),
        },
        parallelism: checked.suite.parallelism.unwrap_or(1),
        stages,
        engines,
        images,
    }
}

impl Plan {
    /// Number of legs in the plan.
    pub fn leg_count(&self) -> usize {
        self.stages.iter().map(|s| s.legs.len()).sum()
    }

    /// The plan as text for people.
    pub fn render_text(&self) -> String {
        let mut out = format!(
            "Plan for suite `{}` {}: {} run{} in {} stage{} (parallelism {})\n",
            self.suite.name,
            self.suite.version,
            self.leg_count(),
            plural(self.leg_count()),
            self.stages.len(),
            plural(self.stages.len()),
            self.parallelism
        );
        let width = self
            .stages
            .iter()
            .flat_map(|s| s.legs.iter().map(|l| l.id.chars().count()))
            .max()
            .unwrap_or(0);
        for stage in &self.stages {
            out.push_str(&format!("\nstage {}\n", stage.stage));
            for e in self
                .engines
                .iter()
                .filter(|e| e.start_before_stage == stage.stage)
            {
                out.push_str(&format!(
                    "  + start engine {} ({}, {}{})\n",
                    e.name,
                    e.uses,
                    e.mode,
                    describe_model(e)
                ));
            }
            for leg in &stage.legs {
                let needs = if leg.needs.is_empty() {
                    String::new()
                } else {
                    format!("  needs {}", leg.needs.join(", "))
                };
                let run_if = match leg.run_if {
                    RunIf::Success => String::new(),
                    RunIf::Failure => "  (runs if a needed node failed)".into(),
                    RunIf::Always => "  (runs always)".into(),
                };
                out.push_str(&format!(
                    "  - {:<width$}  {} on {}{needs}{run_if}\n",
                    leg.id, leg.benchmark, leg.engine
                ));
            }
            if stage.side_by_side.len() > 1 {
                let groups: Vec<String> =
                    stage.side_by_side.iter().map(|g| g.join(" → ")).collect();
                out.push_str(&format!("  side by side: {}\n", groups.join("  |  ")));
            }
            for e in self
                .engines
                .iter()
                .filter(|e| e.stop_after_stage == stage.stage)
            {
                out.push_str(&format!("  - stop engine {}\n", e.name));
            }
        }
        out.push_str(&format!(
            "\nImages needed: {}\n",
            if self.images.is_empty() {
                "none".to_string()
            } else {
                self.images.join(", ")
            }
        ));
        out
    }

    /// The plan as a Graphviz digraph: legs as boxes, `needs` as edges, stages as ranks.
    pub fn render_dot(&self) -> String {
        let mut out = format!(
            "digraph {} {{\n  rankdir=LR;\n  node [shape=box];\n",
            quote(&self.suite.name)
        );
        for stage in &self.stages {
            out.push_str(&format!(
                "  subgraph cluster_stage_{} {{\n    label={};\n",
                stage.stage,
                quote(&format!("stage {}", stage.stage))
            ));
            for leg in &stage.legs {
                out.push_str(&format!(
                    "    {} [label={}];\n",
                    quote(&leg.id),
                    quote(&format!("{}\n{} on {}", leg.id, leg.benchmark, leg.engine))
                ));
            }
            out.push_str("  }\n");
        }
        for stage in &self.stages {
            for leg in &stage.legs {
                for need in &leg.needs {
                    for from in self
                        .stages
                        .iter()
                        .flat_map(|s| &s.legs)
                        .filter(|l| &l.node == need)
                    {
                        out.push_str(&format!("  {} -> {};\n", quote(&from.id), quote(&leg.id)));
                    }
                }
            }
        }
        out.push_str("}\n");
        out
    }
}

fn describe_model(e: &EngineLifetime) -> String {
    let mut s = String::new();
    if let Some(m) = &e.model {
        s.push_str(&format!(", model {m}"));
    }
    if let Some(i) = &e.image {
        s.push_str(&format!(", image {i}"));
    }
    s
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A Graphviz quoted id.
fn quote(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}
