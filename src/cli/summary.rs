//! The table printed when a run ends: each leg's status, key metrics and asserts, then the
//! breached asserts (measured vs bound) and failures, then where the run is stored.

use std::path::Path;

use crate::runner::Finished;

/// The summary as text.
pub fn render(f: &Finished, store: &Path) -> String {
    let w = |get: &dyn Fn(&crate::runner::record::SummaryRow) -> usize, min: usize| {
        f.rows.iter().map(get).max().unwrap_or(0).max(min)
    };
    let leg_w = w(&|r| r.leg.chars().count(), 4);
    let bench_w = w(&|r| r.benchmark.len(), 9);
    let status_w = w(&|r| r.status.as_str().len(), 6);
    let mut out = format!(
        "\n{:<leg_w$}  {:<bench_w$}  {:<status_w$}  {:>7}  {:<10}  KEY METRICS\n",
        "NODE", "BENCHMARK", "STATUS", "SECONDS", "ASSERTS"
    );
    for r in &f.rows {
        out.push_str(&format!(
            "{:<leg_w$}  {:<bench_w$}  {:<status_w$}  {:>7}  {:<10}  {}\n",
            r.leg,
            r.benchmark,
            r.status.as_str(),
            r.seconds.map_or("-".into(), |s| format!("{s:.1}")),
            if r.asserts.is_empty() {
                "-"
            } else {
                &r.asserts
            },
            r.key_metrics
        ));
    }
    if !f.breaches.is_empty() {
        out.push_str("\nBreached asserts:\n");
        for b in &f.breaches {
            out.push_str(&format!("  {b}\n"));
        }
    }
    let other: Vec<&String> = f
        .failures
        .iter()
        .filter(|e| !e.contains("assert:"))
        .collect();
    if !other.is_empty() {
        out.push_str("\nFailures:\n");
        for e in other {
            out.push_str(&format!("  {e}\n"));
        }
    }
    if !f.store_errors.is_empty() {
        out.push_str(&format!(
            "\nNot stored ({} writes to {} failed; the run is incomplete):\n",
            f.store_errors.len(),
            store.display()
        ));
        for e in f.store_errors.iter().take(5) {
            out.push_str(&format!("  {e}\n"));
        }
    }
    out.push_str(&format!(
        "\nrun {} {}; stored in {} (`kitt results show {}`)\n",
        f.run_id,
        f.status,
        store.display(),
        f.run_id
    ));
    out
}
