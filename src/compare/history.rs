//! A suite's metrics over its runs: per leg and metric the series of values, a noise band
//! from the runs before each point, points outside the band flagged as regressions or
//! improvements, and the changes (machine, kitt, suite file, engine image, model, spec) that
//! explain a jump.
//!
//! The band of a point: the median of up to [`WINDOW`] earlier points of the series (since
//! the machine last changed; a different machine is not a baseline) ± the widest of
//! [`SPREAD_SIGMAS`] robust standard deviations of those points (1.4826 × their median
//! absolute deviation), [`POINT_Z`] of the point's own standard error (from its per-request
//! samples, or the benchmark's standard error), and [`RELATIVE_FLOOR`] of the median. A
//! point needs [`MIN_BASELINE`] earlier points to be judged.

use schemars::JsonSchema;
use serde::Serialize;

use super::Stat;
use crate::bench::samples::{self, Sample};
use crate::registry::Direction;
use crate::store::time::format_utc;
use crate::store::{NodeRecord, RunRecord, Store};

/// The version of the history document's shape.
pub const FORMAT_VERSION: u32 = 1;
/// Earlier points that form a point's baseline, at most.
pub const WINDOW: usize = 10;
/// Earlier points a point needs before it is judged.
pub const MIN_BASELINE: usize = 4;
/// Robust standard deviations of the baseline a point may stray from its median.
pub const SPREAD_SIGMAS: f64 = 3.0;
/// Standard errors of the point itself it may stray (99 %).
pub const POINT_Z: f64 = 2.576;
/// The band's smallest half-width, relative to the median: smaller changes are never flagged.
pub const RELATIVE_FLOOR: f64 = 0.01;
/// The metrics a history shows when none are asked for, those a leg has.
pub const KEY_METRICS: &[&str] = &[
    "accuracy",
    "requests_per_s",
    "output_tokens_per_s",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "tpot_p50_ms",
    "e2e_p99_ms",
];
/// Runs a history reads when neither `last` nor `since` bounds it.
pub const DEFAULT_LAST: usize = 30;

/// Which runs and series a history covers.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub suite: String,
    /// The newest this many runs (default [`DEFAULT_LAST`], or all since `since`).
    pub last: Option<usize>,
    /// Runs started at or after this time (Unix seconds).
    pub since: Option<f64>,
    /// Only these legs (`node` matches all of a node's legs, `node[axis=v]` one).
    pub nodes: Vec<String>,
    /// Only these metrics (default: [`KEY_METRICS`], else every metric of the leg).
    pub metrics: Vec<String>,
}

/// A suite's series over its runs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct History {
    pub format_version: u32,
    pub suite: String,
    /// Oldest first.
    pub runs: Vec<HistoryRun>,
    pub series: Vec<Series>,
    /// How bands and flags are made, in words.
    pub method: String,
    /// Series whose newest point is a regression.
    pub latest_regressions: usize,
}

/// One run in a history.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistoryRun {
    pub id: String,
    /// Unix seconds.
    pub started_at: f64,
    /// UTC `YYYY-MM-DD HH:MM:SS`.
    pub started: String,
    pub status: String,
    pub kitt_version: String,
    pub fingerprint: String,
    /// What differs from the run before it (machine, kitt, suite file).
    pub changes: Vec<Change>,
}

/// One metric of one leg over the runs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Series {
    pub leg: String,
    pub metric: String,
    pub unit: String,
    pub direction: Direction,
    pub points: Vec<Point>,
    pub regressions: usize,
    pub improvements: usize,
    /// The newest point's flag.
    pub latest: Flag,
    /// The smallest and largest of the values and bands (a chart's vertical axis).
    pub low: f64,
    pub high: f64,
    /// The values as block characters, lowest ▁ to highest █ (regressions are not marked).
    pub sparkline: String,
}

/// A metric's value in one run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Point {
    /// Index into the history's runs.
    pub run: usize,
    pub run_id: String,
    pub value: f64,
    /// The value's own standard error, where samples or the benchmark give one.
    pub standard_error: Option<f64>,
    /// The noise band the earlier points give (none before [`MIN_BASELINE`] points).
    pub band: Option<Band>,
    pub flag: Flag,
    /// What differs from the series' previous point (machine, kitt, suite file, engine
    /// image, model, the leg's spec).
    pub changes: Vec<Change>,
}

/// Where a value was expected to lie.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub struct Band {
    /// The baseline's median.
    pub center: f64,
    pub low: f64,
    pub high: f64,
    /// Earlier points it was made from.
    pub points: usize,
}

/// A point against its band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Outside the band, on the worse side.
    Regression,
    /// Outside the band, on the better side.
    Improvement,
    WithinNoise,
    /// Too few earlier points to judge.
    NoBaseline,
}

impl Flag {
    pub fn word(self) -> &'static str {
        match self {
            Flag::Regression => "REGRESSION",
            Flag::Improvement => "improvement",
            Flag::WithinNoise => "within noise",
            Flag::NoBaseline => "no baseline yet",
        }
    }
}

/// Something that changed between two runs.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Change {
    pub what: ChangeKind,
    pub from: String,
    pub to: String,
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The machine's hardware fingerprint.
    Fingerprint,
    KittVersion,
    /// The suite file's bytes.
    SuiteFile,
    /// The engine image's digest (or its reference, without a digest).
    EngineImage,
    Model,
    /// The leg's resolved spec.
    Spec,
}

impl ChangeKind {
    pub fn word(self) -> &'static str {
        match self {
            ChangeKind::Fingerprint => "machine",
            ChangeKind::KittVersion => "kitt",
            ChangeKind::SuiteFile => "suite file",
            ChangeKind::EngineImage => "engine image",
            ChangeKind::Model => "model",
            ChangeKind::Spec => "spec",
        }
    }
}

/// Reads a suite's history from the store.
pub fn build(store: &Store, query: &Query) -> anyhow::Result<History> {
    let limit = query.last.unwrap_or(if query.since.is_some() {
        100_000
    } else {
        DEFAULT_LAST
    });
    let mut records: Vec<RunRecord> = store.runs(Some(&query.suite), limit)?;
    records.reverse();
    records.retain(|r| query.since.is_none_or(|t| r.started_at >= t));
    if records.is_empty() {
        return Err(crate::exit::usage(format!(
            "no runs of suite `{}` in {}{} (see `kitt results list`)",
            query.suite,
            store.path().display(),
            if query.since.is_some() {
                " in that time"
            } else {
                ""
            }
        )));
    }
    let mut runs = Vec::with_capacity(records.len());
    let mut series: Vec<Series> = Vec::new();
    let mut previous_leg: std::collections::BTreeMap<String, (usize, NodeRecord)> =
        Default::default();
    for (index, record) in records.iter().enumerate() {
        let changes = index
            .checked_sub(1)
            .map(|i| run_changes(&records[i], record))
            .unwrap_or_default();
        runs.push(HistoryRun {
            id: record.id.clone(),
            started_at: record.started_at,
            started: format_utc(record.started_at),
            status: record.status.to_string(),
            kitt_version: record.kitt_version.clone(),
            fingerprint: record.fingerprint.clone(),
            changes,
        });
        for node in store.nodes(&record.id)? {
            if node.status != crate::store::NodeStatus::Succeeded || !wanted_leg(query, &node) {
                continue;
            }
            let metrics = store.metrics(&record.id, &node.leg)?;
            let chosen = chosen_metrics(query, &metrics);
            if chosen.is_empty() {
                continue;
            }
            let changes = match previous_leg.get(&node.leg) {
                Some((i, before)) => {
                    let mut c = run_changes(&records[*i], record);
                    c.extend(leg_changes(before, &node));
                    c
                }
                None => Vec::new(),
            };
            let needs_samples = chosen.iter().any(|m| super::statistic(&m.name).is_some());
            let kept: Vec<Sample> = if needs_samples {
                store
                    .samples(&record.id, &node.leg)?
                    .map(|(_, _, d)| samples::decode(&d))
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            for m in chosen {
                let standard_error = standard_error(&m.name, &metrics, &kept);
                let at = match series
                    .iter()
                    .position(|s| s.leg == node.leg && s.metric == m.name)
                {
                    Some(at) => at,
                    None => {
                        series.push(Series {
                            leg: node.leg.clone(),
                            metric: m.name.clone(),
                            unit: m.unit.clone(),
                            direction: m.direction,
                            points: Vec::new(),
                            regressions: 0,
                            improvements: 0,
                            latest: Flag::NoBaseline,
                            low: m.value,
                            high: m.value,
                            sparkline: String::new(),
                        });
                        series.len() - 1
                    }
                };
                series[at].points.push(Point {
                    run: index,
                    run_id: record.id.clone(),
                    value: m.value,
                    standard_error,
                    band: None,
                    flag: Flag::NoBaseline,
                    changes: changes.clone(),
                });
            }
            previous_leg.insert(node.leg.clone(), (index, node));
        }
    }
    for s in &mut series {
        judge(s);
    }
    let latest_regressions = series
        .iter()
        .filter(|s| {
            s.latest == Flag::Regression && s.points.last().is_some_and(|p| p.run + 1 == runs.len())
        })
        .count();
    Ok(History {
        format_version: FORMAT_VERSION,
        suite: query.suite.clone(),
        runs,
        series,
        method: method(),
        latest_regressions,
    })
}

/// The band rule in words, as the reports print it.
pub fn method() -> String {
    format!(
        "Band: the median of up to {WINDOW} earlier runs (since the machine last changed) ± the \
         widest of {SPREAD_SIGMAS} robust standard deviations of those runs (1.4826 × median \
         absolute deviation), {POINT_Z} standard errors of the run itself (from its per-request \
         samples or the benchmark's standard error) and {}% of the median; a run needs \
         {MIN_BASELINE} earlier runs to be judged.",
        RELATIVE_FLOOR * 100.0
    )
}

fn wanted_leg(query: &Query, node: &NodeRecord) -> bool {
    query.nodes.is_empty()
        || query
            .nodes
            .iter()
            .any(|n| *n == node.leg || *n == node.node)
}

fn chosen_metrics<'a>(
    query: &Query,
    metrics: &'a [crate::store::MetricRecord],
) -> Vec<&'a crate::store::MetricRecord> {
    if !query.metrics.is_empty() {
        return metrics
            .iter()
            .filter(|m| query.metrics.contains(&m.name))
            .collect();
    }
    let key: Vec<_> = metrics
        .iter()
        .filter(|m| KEY_METRICS.contains(&m.name.as_str()))
        .collect();
    if key.is_empty() {
        metrics.iter().collect()
    } else {
        key
    }
}

fn run_changes(before: &RunRecord, after: &RunRecord) -> Vec<Change> {
    let mut out = Vec::new();
    let mut check = |what, a: &str, b: &str| {
        if a != b {
            out.push(Change {
                what,
                from: a.to_string(),
                to: b.to_string(),
            });
        }
    };
    check(
        ChangeKind::Fingerprint,
        &before.fingerprint,
        &after.fingerprint,
    );
    check(
        ChangeKind::KittVersion,
        &before.kitt_version,
        &after.kitt_version,
    );
    check(ChangeKind::SuiteFile, &before.digest, &after.digest);
    out
}

fn leg_changes(before: &NodeRecord, after: &NodeRecord) -> Vec<Change> {
    let image = |n: &NodeRecord| {
        n.image_digest
            .clone()
            .or_else(|| n.image.clone())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    let mut check = |what, a: String, b: String| {
        if a != b {
            out.push(Change {
                what,
                from: a,
                to: b,
            });
        }
    };
    check(ChangeKind::EngineImage, image(before), image(after));
    check(
        ChangeKind::Model,
        before.model.clone().unwrap_or_default(),
        after.model.clone().unwrap_or_default(),
    );
    check(
        ChangeKind::Spec,
        before.spec_hash.clone(),
        after.spec_hash.clone(),
    );
    out
}

/// A value's standard error: from the per-request samples for latency statistics, the
/// benchmark's `<metric>_stderr` otherwise (accuracy).
fn standard_error(
    name: &str,
    metrics: &[crate::store::MetricRecord],
    kept: &[Sample],
) -> Option<f64> {
    if let Some((get, stat)) = super::statistic(name) {
        let mut values = super::values(kept, get);
        return sample_standard_error(&mut values, stat);
    }
    metrics
        .iter()
        .find(|m| m.name == format!("{name}_stderr"))
        .map(|m| m.value)
}

/// The standard error of a mean (s / √n) or a quantile (half the spread of its 95 %
/// order-statistic interval over 2 × 1.96), from at least 10 values.
fn sample_standard_error(values: &mut [f64], stat: Stat) -> Option<f64> {
    let n = values.len();
    if n < 10 {
        return None;
    }
    match stat {
        Stat::Mean => {
            let mean = values.iter().sum::<f64>() / n as f64;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            Some((var / n as f64).sqrt())
        }
        Stat::Quantile(q) => {
            values.sort_by(f64::total_cmp);
            let nf = n as f64;
            let half = 1.96 * (nf * q * (1.0 - q)).sqrt();
            let lo = ((nf * q - half).floor().max(0.0) as usize).min(n - 1);
            let hi = ((nf * q + half).ceil() as usize).min(n - 1);
            Some((values[hi] - values[lo]) / (2.0 * 1.96))
        }
    }
}

/// Bands and flags for a series' points, oldest first.
fn judge(series: &mut Series) {
    let higher = series.direction == Direction::Higher;
    let mut since_machine = 0;
    for i in 0..series.points.len() {
        if series.points[i]
            .changes
            .iter()
            .any(|c| c.what == ChangeKind::Fingerprint)
        {
            since_machine = i;
        }
        let start = i.saturating_sub(WINDOW).max(since_machine);
        let baseline: Vec<f64> = series.points[start..i].iter().map(|p| p.value).collect();
        let point = &mut series.points[i];
        if baseline.len() >= MIN_BASELINE {
            let band = band(&baseline, point.standard_error);
            point.flag = if point.value > band.high {
                if higher {
                    Flag::Improvement
                } else {
                    Flag::Regression
                }
            } else if point.value < band.low {
                if higher {
                    Flag::Regression
                } else {
                    Flag::Improvement
                }
            } else {
                Flag::WithinNoise
            };
            point.band = Some(band);
        }
        match point.flag {
            Flag::Regression => series.regressions += 1,
            Flag::Improvement => series.improvements += 1,
            _ => {}
        }
        let (lo, hi) = point
            .band
            .map_or((point.value, point.value), |b| (b.low, b.high));
        series.low = series.low.min(lo).min(point.value);
        series.high = series.high.max(hi).max(point.value);
    }
    series.latest = series.points.last().map_or(Flag::NoBaseline, |p| p.flag);
    let values: Vec<f64> = series.points.iter().map(|p| p.value).collect();
    series.sparkline = sparkline(&values);
}

/// Values as block characters scaled between their minimum and maximum.
pub fn sparkline(values: &[f64]) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .map(|v| {
            if hi > lo {
                BLOCKS[(((v - lo) / (hi - lo)) * 7.0).round() as usize]
            } else {
                BLOCKS[3]
            }
        })
        .collect()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn band(baseline: &[f64], standard_error: Option<f64>) -> Band {
    let mut values = baseline.to_vec();
    let center = median(&mut values);
    let mut deviations: Vec<f64> = baseline.iter().map(|v| (v - center).abs()).collect();
    let spread = 1.4826 * median(&mut deviations);
    let half = (SPREAD_SIGMAS * spread)
        .max(POINT_Z * standard_error.unwrap_or(0.0))
        .max(RELATIVE_FLOOR * center.abs());
    Band {
        center,
        low: center - half,
        high: center + half,
        points: baseline.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64], direction: Direction) -> Series {
        Series {
            leg: "l".into(),
            metric: "m".into(),
            unit: "ms".into(),
            direction,
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| Point {
                    run: i,
                    run_id: i.to_string(),
                    value: *v,
                    standard_error: None,
                    band: None,
                    flag: Flag::NoBaseline,
                    changes: Vec::new(),
                })
                .collect(),
            regressions: 0,
            improvements: 0,
            latest: Flag::NoBaseline,
            low: values[0],
            high: values[0],
            sparkline: String::new(),
        }
    }

    #[test]
    fn a_jump_beyond_the_spread_is_flagged_by_direction() {
        let values = [100.0, 102.0, 98.0, 101.0, 99.0, 100.5, 130.0, 70.0];
        let mut s = series(&values, Direction::Lower);
        judge(&mut s);
        let flags: Vec<Flag> = s.points.iter().map(|p| p.flag).collect();
        assert_eq!(flags[..4], [Flag::NoBaseline; 4]);
        assert_eq!(flags[4], Flag::WithinNoise);
        assert_eq!(flags[6], Flag::Regression);
        assert_eq!(flags[7], Flag::Improvement);
        let band = s.points[4].band.unwrap();
        // median of 100, 102, 98, 101 = 100.5; deviations .5 1.5 2.5 .5 → MAD 1.0.
        assert_eq!(band.center, 100.5);
        assert!((band.high - (100.5 + 3.0 * 1.4826)).abs() < 1e-9);
        let mut up = series(&values, Direction::Higher);
        judge(&mut up);
        assert_eq!(up.points[6].flag, Flag::Improvement);
        assert_eq!(up.latest, Flag::Regression);
        assert_eq!((up.regressions, up.improvements), (1, 1));
        assert_eq!((up.low, up.high), (70.0, 130.0));
        // 70 → ▁, 130 → █; 100 sits at 3.5 of 7 steps and rounds up to ▅.
        assert_eq!(up.sparkline, "▅▅▄▅▄▅█▁");
    }

    #[test]
    fn identical_runs_get_the_relative_floor_and_a_machine_change_restarts_the_baseline() {
        let mut s = series(&[50.0; 10], Direction::Lower);
        s.points[6].value = 50.4;
        s.points[7].value = 60.0;
        s.points[7].changes.push(Change {
            what: ChangeKind::Fingerprint,
            from: "a".into(),
            to: "b".into(),
        });
        judge(&mut s);
        assert_eq!(s.points[6].flag, Flag::WithinNoise, "inside 1 %");
        // The new machine's first points have no baseline: the jump is explained.
        assert_eq!(s.points[7].flag, Flag::NoBaseline);
        assert_eq!(s.points[9].flag, Flag::NoBaseline);
    }

    #[test]
    fn standard_errors_of_means_and_quantiles() {
        let mut v: Vec<f64> = (0..100).map(f64::from).collect();
        let se = sample_standard_error(&mut v, Stat::Mean).unwrap();
        // sd of 0..99 = 29.01; / 10.
        assert!((se - 2.901).abs() < 0.01, "{se}");
        let se = sample_standard_error(&mut v, Stat::Quantile(0.5)).unwrap();
        // ranks 50 ± 9.8 → 40 and 60: (60 − 40) / 3.92.
        assert!((se - 20.0 / 3.92).abs() < 1e-9, "{se}");
        assert!(sample_standard_error(&mut v[..5], Stat::Mean).is_none());
    }
}
