//! Asserts: absolute bounds on a node's metrics, and bounds relative to a baseline run.

use indexmap::IndexMap;

use crate::store::{AssertRecord, MetricRecord};
use crate::suite::model::Bound;

/// Checks each bound against the measured metrics and, for ratio bounds, the baseline's.
/// `baseline` is `None` when there is no baseline run (ratio bounds then cannot be checked
/// and say so, without failing).
pub fn evaluate(
    bounds: &IndexMap<String, Bound>,
    measured: &[MetricRecord],
    baseline: Option<(&str, &[MetricRecord])>,
) -> Vec<AssertRecord> {
    let value_of =
        |list: &[MetricRecord], name: &str| list.iter().find(|m| m.name == name).map(|m| m.value);
    bounds
        .iter()
        .map(|(metric, bound)| {
            let measured_value = value_of(measured, metric);
            let bound_json = serde_json::to_value(bound).unwrap_or_default();
            let mut problems = Vec::new();
            let mut notes = Vec::new();
            let mut base_value = None;
            match measured_value {
                None => problems.push("was not measured".to_string()),
                Some(v) => {
                    if let Some(min) = bound.min
                        && v < min
                    {
                        problems.push(format!("{v:.4} < min {min}"));
                    }
                    if let Some(max) = bound.max
                        && v > max
                    {
                        problems.push(format!("{v:.4} > max {max}"));
                    }
                    if bound.min_ratio.is_some() || bound.max_ratio.is_some() {
                        match baseline {
                            None => notes.push("no baseline run yet; ratio not checked".to_string()),
                            Some((id, base)) => match value_of(base, metric) {
                                None => notes.push(format!(
                                    "baseline run {id} has no `{metric}`; ratio not checked"
                                )),
                                Some(b) => {
                                    base_value = Some(b);
                                    let ratio = if b == 0.0 { f64::INFINITY } else { v / b };
                                    if let Some(lo) = bound.min_ratio
                                        && ratio < lo
                                    {
                                        problems.push(format!(
                                            "{v:.4} is {ratio:.3}× baseline {b:.4} (run {id}), under min_ratio {lo}"
                                        ));
                                    }
                                    if let Some(hi) = bound.max_ratio
                                        && ratio > hi
                                    {
                                        problems.push(format!(
                                            "{v:.4} is {ratio:.3}× baseline {b:.4} (run {id}), over max_ratio {hi}"
                                        ));
                                    }
                                }
                            },
                        }
                    }
                }
            }
            let passed = problems.is_empty();
            let message = if passed {
                let mut m = format!(
                    "{metric} = {} holds",
                    measured_value.map_or("?".into(), |v| format!("{v:.4}"))
                );
                for n in &notes {
                    m.push_str(&format!(" ({n})"));
                }
                m
            } else {
                format!("{metric} {}", problems.join("; "))
            };
            AssertRecord {
                metric: metric.clone(),
                bound: bound_json,
                measured: measured_value,
                baseline: base_value,
                passed,
                message,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, value: f64) -> MetricRecord {
        MetricRecord {
            name: name.into(),
            value,
            unit: "ms".into(),
            direction: crate::registry::Direction::Lower,
        }
    }

    #[test]
    fn absolute_and_ratio_bounds() {
        let mut bounds = IndexMap::new();
        bounds.insert(
            "ttft_p99_ms".to_string(),
            Bound {
                max: Some(500.0),
                ..Bound::default()
            },
        );
        bounds.insert(
            "accuracy".to_string(),
            Bound {
                min_ratio: Some(0.95),
                baseline: Some("last-success".into()),
                ..Bound::default()
            },
        );
        let measured = [m("ttft_p99_ms", 620.0), m("accuracy", 0.5)];
        let base = [m("accuracy", 0.6)];
        let r = evaluate(&bounds, &measured, Some(("run1", &base)));
        assert!(!r[0].passed && r[0].message.contains("620.0000 > max 500"));
        assert!(
            !r[1].passed && r[1].message.contains("under min_ratio 0.95"),
            "{}",
            r[1].message
        );
        assert_eq!(r[1].baseline, Some(0.6));
        let none = evaluate(
            &bounds,
            &[m("ttft_p99_ms", 100.0), m("accuracy", 0.5)],
            None,
        );
        assert!(none[0].passed);
        assert!(none[1].passed && none[1].message.contains("no baseline"));
        let missing = evaluate(&bounds, &[], None);
        assert!(!missing[0].passed && missing[0].message.contains("not measured"));
    }
}
