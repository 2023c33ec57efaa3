//! Which legs a run executes: all of them, `--only` some nodes, `--only-changed` (specs that
//! differ from the last successful run, and what depends on them), or `--resume` (what an
//! earlier run did not finish). Legs not run carry their results over.

use std::collections::HashMap;

use anyhow::Context;

use super::ApplyRequest;
use super::setup::Carried;
use crate::store::{NodeRecord, NodeStatus, Store};
use crate::suite::plan::Plan;

/// The legs to run and those carried over.
#[derive(Debug, Default)]
pub struct Choice {
    pub carried: HashMap<usize, Carried>,
    /// The run continued, for `--resume`.
    pub resume: Option<String>,
    /// Where carried legs come from, for copying into a new run.
    sources: HashMap<usize, NodeRecord>,
}

/// How a leg's spec compares with the last successful run of the suite.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub leg: String,
    /// new, changed or removed.
    pub kind: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// The spec changes since the last successful run of `suite` (every leg is new when there
/// is none); the run compared with.
pub fn changes(
    plan: &Plan,
    store: &Store,
    suite: &str,
) -> anyhow::Result<(Vec<Change>, Option<String>)> {
    let Some(last) = store.last_success(suite, None)? else {
        let all = plan
            .legs
            .iter()
            .map(|l| Change {
                leg: l.id.clone(),
                kind: "new".into(),
                before: None,
                after: Some(l.spec_hash.clone()),
            })
            .collect();
        return Ok((all, None));
    };
    let before: HashMap<String, String> = store
        .nodes(&last.id)?
        .into_iter()
        .map(|n| (n.leg, n.spec_hash))
        .collect();
    let mut out = Vec::new();
    for l in &plan.legs {
        match before.get(&l.id) {
            None => out.push(Change {
                leg: l.id.clone(),
                kind: "new".into(),
                before: None,
                after: Some(l.spec_hash.clone()),
            }),
            Some(h) if *h != l.spec_hash => out.push(Change {
                leg: l.id.clone(),
                kind: "changed".into(),
                before: Some(h.clone()),
                after: Some(l.spec_hash.clone()),
            }),
            _ => {}
        }
    }
    for (leg, h) in &before {
        if !plan.legs.iter().any(|l| &l.id == leg) {
            out.push(Change {
                leg: leg.clone(),
                kind: "removed".into(),
                before: Some(h.clone()),
                after: None,
            });
        }
    }
    Ok((out, Some(last.id)))
}

fn carry(choice: &mut Choice, i: usize, node: NodeRecord) {
    choice.carried.insert(
        i,
        Carried {
            outputs: node.outputs.as_object().cloned().unwrap_or_default(),
            from: node.run_id.clone(),
        },
    );
    choice.sources.insert(i, node);
}

/// Chooses the legs to run.
pub fn choose(
    req: &ApplyRequest,
    plan: &Plan,
    store: &Store,
    suite: &str,
) -> anyhow::Result<Choice> {
    let mut choice = Choice::default();
    let ok = |n: &NodeRecord| n.status.ok();
    if let Some(id) = &req.resume {
        let run = store.find_run(id)?;
        if run.suite != suite {
            return Err(crate::exit::usage(format!(
                "run {} is of suite `{}`, not `{suite}`; resume it with its own suite",
                run.id, run.suite
            )));
        }
        let done: HashMap<String, NodeRecord> = store
            .nodes(&run.id)?
            .into_iter()
            .filter(|n| ok(n))
            .map(|n| (n.leg.clone(), n))
            .collect();
        for (i, leg) in plan.legs.iter().enumerate() {
            if let Some(n) = done.get(&leg.id).filter(|n| n.spec_hash == leg.spec_hash) {
                carry(&mut choice, i, n.clone());
            }
        }
        choice.resume = Some(run.id);
        return Ok(choice);
    }
    let selected: Option<Vec<usize>> = if req.only_changed {
        let (changed, _) = changes(plan, store, suite)?;
        let idx: Vec<usize> = plan
            .legs
            .iter()
            .enumerate()
            .filter(|(_, l)| changed.iter().any(|c| c.leg == l.id))
            .map(|(i, _)| i)
            .collect();
        Some(plan.with_dependents(&idx))
    } else if !req.only.is_empty() {
        let mut idx = Vec::new();
        for node in &req.only {
            let legs: Vec<usize> = plan.legs_of(node).collect();
            if legs.is_empty() {
                let names = plan.legs.iter().map(|l| l.node.as_str());
                let hint = crate::registry::suggest(node, names)
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| "see `kitt plan`".into());
                return Err(crate::exit::usage(format!(
                    "--only {node}: the suite has no node `{node}`; {hint}"
                )));
            }
            idx.extend(legs);
        }
        Some(idx)
    } else {
        None
    };
    if let Some(selected) = selected {
        let last = store.last_success(suite, None)?;
        let previous: HashMap<String, NodeRecord> = match &last {
            Some(r) => store
                .nodes(&r.id)?
                .into_iter()
                .filter(|n| ok(n))
                .map(|n| (n.leg.clone(), n))
                .collect(),
            None => HashMap::new(),
        };
        for (i, leg) in plan.legs.iter().enumerate() {
            if selected.contains(&i) {
                continue;
            }
            match previous.get(&leg.id) {
                Some(n) => carry(&mut choice, i, n.clone()),
                None => {
                    choice.carried.insert(
                        i,
                        Carried {
                            outputs: Default::default(),
                            from: "none (not selected)".into(),
                        },
                    );
                }
            }
        }
    }
    Ok(choice)
}

impl Choice {
    /// The selection in words, for `--dry-run`.
    pub fn describe(&self, plan: &Plan) -> String {
        let mut out = String::new();
        for (i, leg) in plan.legs.iter().enumerate() {
            match self.carried.get(&i) {
                Some(c) => {
                    out.push_str(&format!("  skip {} (result from run {})\n", leg.id, c.from))
                }
                None => out.push_str(&format!("  run  {} (spec {})\n", leg.id, leg.spec_hash)),
            }
        }
        match &self.resume {
            Some(id) => format!("Resuming run {id}:\n{out}"),
            None => format!("Legs:\n{out}"),
        }
    }
}

/// Copies carried legs' rows and metrics from the runs they came from into `run_id`, marked
/// `reused`, so the new run reads complete.
pub fn copy_carried(
    store: &mut Store,
    choice: &Choice,
    plan: &Plan,
    run_id: &str,
) -> anyhow::Result<()> {
    for (i, source) in &choice.sources {
        let metrics = store.metrics(&source.run_id, &source.leg)?;
        let mut node = source.clone();
        node.run_id = run_id.to_string();
        node.status = NodeStatus::Reused;
        node.errors = vec![format!("result reused from run {}", source.run_id)];
        node.spec_hash = plan.legs[*i].spec_hash.clone();
        store
            .put_node(&node, &metrics, &[], None)
            .with_context(|| format!("cannot copy leg {}", node.leg))?;
    }
    Ok(())
}
