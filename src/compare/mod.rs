//! Comparing two stored runs metric by metric, with a verdict that accounts for noise:
//! bootstrap confidence intervals from the per-request samples for latency statistics, a
//! z-test from the standard errors for accuracy. A difference inside the noise is reported
//! as such, not as a bare percentage.

pub mod history;

use serde::Serialize;

use crate::bench::samples::{self, Sample};
use crate::seed::mix;
use crate::store::{MetricRecord, Store};

/// One metric of one leg in both runs.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub leg: String,
    pub metric: String,
    pub unit: String,
    pub direction: crate::registry::Direction,
    pub a: f64,
    pub b: f64,
    /// (b − a) / |a|, when a ≠ 0.
    pub delta: Option<f64>,
    pub verdict: Verdict,
    /// How the verdict was reached.
    pub basis: String,
}

/// Whether B is better than A.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Better,
    Worse,
    /// The difference lies within the noise.
    Same,
    /// Exactly equal.
    Equal,
    /// No noise estimate: the direction is shown, significance is not known.
    Unknown,
}

impl Verdict {
    pub fn mark(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "WORSE",
            Verdict::Same => "within noise",
            Verdict::Equal => "equal",
            Verdict::Unknown => "noise unknown",
        }
    }
}

/// Resamples per bootstrap.
const RESAMPLES: u64 = 400;
/// Samples used per side at most (the rest adds little precision and costs time).
const MAX_SAMPLES: usize = 4000;

/// Reads one quantity of a sample.
type Field = fn(&Sample) -> f32;

/// The metric's statistic over per-request values, when samples can estimate it.
fn statistic(name: &str) -> Option<(Field, Stat)> {
    let (quantity, stat) = name.strip_suffix("_ms")?.rsplit_once('_')?;
    let get: Field = match quantity {
        "ttft" => |s| s.ttft_ms,
        "tpot" => |s| s.tpot_ms,
        "e2e" => |s| s.e2e_ms,
        _ => return None,
    };
    let stat = match stat {
        "mean" => Stat::Mean,
        "p50" => Stat::Quantile(0.50),
        "p90" => Stat::Quantile(0.90),
        "p95" => Stat::Quantile(0.95),
        "p99" => Stat::Quantile(0.99),
        _ => return None,
    };
    Some((get, stat))
}

#[derive(Debug, Clone, Copy)]
enum Stat {
    Mean,
    Quantile(f64),
}

fn compute(values: &mut [f64], stat: Stat) -> f64 {
    match stat {
        Stat::Mean => values.iter().sum::<f64>() / values.len() as f64,
        Stat::Quantile(q) => {
            values.sort_by(f64::total_cmp);
            let idx = ((values.len() as f64 - 1.0) * q).round() as usize;
            values[idx.min(values.len() - 1)]
        }
    }
}

/// 95 % bootstrap interval of stat(B) − stat(A).
fn bootstrap(a: &[f64], b: &[f64], stat: Stat) -> (f64, f64) {
    let mut diffs = Vec::with_capacity(RESAMPLES as usize);
    let mut buf_a = vec![0.0; a.len()];
    let mut buf_b = vec![0.0; b.len()];
    for r in 0..RESAMPLES {
        for (i, slot) in buf_a.iter_mut().enumerate() {
            *slot = a[(mix(r, i as u64) % a.len() as u64) as usize];
        }
        for (i, slot) in buf_b.iter_mut().enumerate() {
            *slot = b[(mix(r ^ 0xB, i as u64) % b.len() as u64) as usize];
        }
        diffs.push(compute(&mut buf_b, stat) - compute(&mut buf_a, stat));
    }
    diffs.sort_by(f64::total_cmp);
    let at = |q: f64| diffs[((diffs.len() - 1) as f64 * q).round() as usize];
    (at(0.025), at(0.975))
}

fn values(samples: &[Sample], get: Field) -> Vec<f64> {
    samples
        .iter()
        .filter(|s| s.ok)
        .map(|s| f64::from(get(s)))
        .filter(|v| v.is_finite())
        .take(MAX_SAMPLES)
        .collect()
}

fn verdict_from_interval(lo: f64, hi: f64, higher_is_better: bool) -> Verdict {
    if lo > 0.0 {
        if higher_is_better {
            Verdict::Better
        } else {
            Verdict::Worse
        }
    } else if hi < 0.0 {
        if higher_is_better {
            Verdict::Worse
        } else {
            Verdict::Better
        }
    } else {
        Verdict::Same
    }
}

/// Compares every metric two runs share, leg by leg.
pub fn compare(store: &Store, run_a: &str, run_b: &str) -> anyhow::Result<Vec<Row>> {
    let a_run = store.find_run(run_a)?;
    let b_run = store.find_run(run_b)?;
    let b_nodes = store.nodes(&b_run.id)?;
    let mut rows = Vec::new();
    for node in store.nodes(&a_run.id)? {
        if !b_nodes.iter().any(|n| n.leg == node.leg) {
            continue;
        }
        let ma = store.metrics(&a_run.id, &node.leg)?;
        let mb = store.metrics(&b_run.id, &node.leg)?;
        let sa = store
            .samples(&a_run.id, &node.leg)?
            .map(|(_, _, d)| samples::decode(&d))
            .unwrap_or_default();
        let sb = store
            .samples(&b_run.id, &node.leg)?
            .map(|(_, _, d)| samples::decode(&d))
            .unwrap_or_default();
        for m in &ma {
            let Some(other) = mb.iter().find(|x| x.name == m.name) else {
                continue;
            };
            rows.push(row(&node.leg, m, other, &ma, &mb, &sa, &sb));
        }
    }
    Ok(rows)
}

fn row(
    leg: &str,
    a: &MetricRecord,
    b: &MetricRecord,
    all_a: &[MetricRecord],
    all_b: &[MetricRecord],
    sa: &[Sample],
    sb: &[Sample],
) -> Row {
    let higher = a.direction == crate::registry::Direction::Higher;
    let delta = (a.value != 0.0).then(|| (b.value - a.value) / a.value.abs());
    let (verdict, basis) = if a.value == b.value {
        (Verdict::Equal, "identical values".to_string())
    } else if let Some((get, stat)) = statistic(&a.name)
        && let (va, vb) = (values(sa, get), values(sb, get))
        && va.len() >= 10
        && vb.len() >= 10
    {
        let (lo, hi) = bootstrap(&va, &vb, stat);
        (
            verdict_from_interval(lo, hi, higher),
            format!(
                "95% bootstrap interval of the difference [{lo:+.3}, {hi:+.3}] over {} / {} requests",
                va.len(),
                vb.len()
            ),
        )
    } else if a.name == "accuracy"
        && let (Some(se_a), Some(se_b)) = (
            all_a.iter().find(|m| m.name == "accuracy_stderr"),
            all_b.iter().find(|m| m.name == "accuracy_stderr"),
        )
        && (se_a.value > 0.0 || se_b.value > 0.0)
    {
        let se = (se_a.value.powi(2) + se_b.value.powi(2)).sqrt();
        let z = (b.value - a.value) / se;
        let v = if z.abs() < 1.96 {
            Verdict::Same
        } else if (z > 0.0) == higher {
            Verdict::Better
        } else {
            Verdict::Worse
        };
        (v, format!("z = {z:+.2} from the standard errors"))
    } else {
        (
            Verdict::Unknown,
            "no per-request samples or standard error for this metric".into(),
        )
    };
    Row {
        leg: leg.to_string(),
        metric: a.name.clone(),
        unit: a.unit.clone(),
        direction: a.direction,
        a: a.value,
        b: b.value,
        delta,
        verdict,
        basis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_separates_real_differences_from_noise() {
        let base: Vec<f64> = (0..500).map(|i| 100.0 + (mix(1, i) % 20) as f64).collect();
        let same: Vec<f64> = (0..500).map(|i| 100.0 + (mix(2, i) % 20) as f64).collect();
        let slower: Vec<f64> = base.iter().map(|v| v + 15.0).collect();
        let (lo, hi) = bootstrap(&base, &same, Stat::Mean);
        assert_eq!(
            verdict_from_interval(lo, hi, false),
            Verdict::Same,
            "{lo} {hi}"
        );
        let (lo, hi) = bootstrap(&base, &slower, Stat::Quantile(0.5));
        assert_eq!(
            verdict_from_interval(lo, hi, false),
            Verdict::Worse,
            "{lo} {hi}"
        );
        assert_eq!(verdict_from_interval(lo, hi, true), Verdict::Better);
    }

    #[test]
    fn latency_metric_names_map_to_sample_fields() {
        assert!(statistic("ttft_p99_ms").is_some());
        assert!(statistic("e2e_mean_ms").is_some());
        assert!(statistic("itl_p50_ms").is_none());
        assert!(statistic("ttft_max_ms").is_none());
        assert!(statistic("accuracy").is_none());
    }
}
