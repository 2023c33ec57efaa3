//! The comparison context: several stored runs side by side, metric by metric, each against
//! the first with the noise-aware verdict of `kitt results compare`.

use schemars::JsonSchema;
use serde::Serialize;

use super::context::{Report, RunInfo, SuiteInfo};
use crate::compare::compare;
use crate::store::Store;

/// Runs compared node by node and metric by metric.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Comparison {
    pub format_version: u32,
    pub runs: Vec<ComparedRun>,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ComparedRun {
    pub run: RunInfo,
    pub suite: SuiteInfo,
    pub verdict: String,
    pub fingerprint: String,
}

/// One metric of one node across the runs (`None` where a run lacks it).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Row {
    pub node: String,
    pub metric: String,
    pub unit: String,
    pub direction: crate::registry::Direction,
    pub values: Vec<Option<f64>>,
    /// Relative change against the first run.
    pub deltas: Vec<Option<f64>>,
    /// better, worse, same, equal or unknown, against the first run.
    pub verdicts: Vec<Option<String>>,
}

/// Compares `ids` (the first is the reference).
pub fn build(store: &Store, ids: &[String]) -> anyhow::Result<Comparison> {
    anyhow::ensure!(
        ids.len() >= 2,
        "give at least two runs to compare, e.g. --runs A,B"
    );
    let reports: Vec<Report> = ids
        .iter()
        .map(|id| Ok(Report::from_results(&store.run_results(id)?)))
        .collect::<anyhow::Result<_>>()?;
    let first = &reports[0];
    let mut rows: Vec<Row> = Vec::new();
    for node in &first.nodes {
        for m in &node.metrics {
            let values = reports
                .iter()
                .map(|r| {
                    r.nodes
                        .iter()
                        .find(|n| n.id == node.id)
                        .and_then(|n| n.values.get(&m.name).copied())
                })
                .collect::<Vec<_>>();
            if values.iter().skip(1).all(Option::is_none) {
                continue;
            }
            let deltas = values
                .iter()
                .map(|v| match (v, m.value) {
                    (Some(v), a) if a != 0.0 => Some((v - a) / a.abs()),
                    _ => None,
                })
                .collect();
            rows.push(Row {
                node: node.id.clone(),
                metric: m.name.clone(),
                unit: m.unit.clone(),
                direction: m.direction,
                values,
                deltas,
                verdicts: vec![None; reports.len()],
            });
        }
    }
    for (k, r) in reports.iter().enumerate().skip(1) {
        for c in compare(store, &first.run.id, &r.run.id)? {
            if let Some(row) = rows
                .iter_mut()
                .find(|row| row.node == c.leg && row.metric == c.metric)
            {
                row.verdicts[k] = Some(format!("{:?}", c.verdict).to_lowercase());
            }
        }
    }
    Ok(Comparison {
        format_version: super::context::FORMAT_VERSION,
        runs: reports
            .iter()
            .map(|r| ComparedRun {
                run: r.run.clone(),
                suite: r.suite.clone(),
                verdict: r.verdict.clone(),
                fingerprint: r.fingerprint.hash.clone(),
            })
            .collect(),
        rows,
    })
}
