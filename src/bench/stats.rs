//! Latency statistics over HDR histograms: constant memory however many samples arrive.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// A histogram of durations in microseconds, 3 significant digits, up to one hour.
#[derive(Debug, Clone)]
pub struct Latencies {
    hist: Histogram<u64>,
    sum_us: u128,
}

/// The statistics kitt reports for one quantity, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

const MAX_US: u64 = 3_600_000_000;

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            hist: Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds"),
            sum_us: 0,
        }
    }
}

impl Latencies {
    /// Records one duration (clamped to 1 µs … 1 h).
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros())
            .unwrap_or(MAX_US)
            .clamp(1, MAX_US);
        self.hist.saturating_record(us);
        self.sum_us += u128::from(us);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.sum_us += other.sum_us;
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The value at quantile `q` (0–1) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1e3
    }

    /// Count, mean, p50/p90/p95/p99 and max in milliseconds; `None` when empty.
    pub fn summary(&self) -> Option<Summary> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        Some(Summary {
            count,
            mean: self.sum_us as f64 / count as f64 / 1e3,
            p50: self.quantile_ms(0.50),
            p90: self.quantile_ms(0.90),
            p95: self.quantile_ms(0.95),
            p99: self.quantile_ms(0.99),
            max: self.hist.max() as f64 / 1e3,
        })
    }
}

/// Mean and standard error of a proportion `correct / n`.
pub fn proportion(correct: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let p = correct as f64 / n as f64;
    let stderr = if n > 1 {
        (p * (1.0 - p) / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    (p, stderr)
}

/// The median of `values` (sorted copy); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// Least-squares slope of `y` over `x`; `None` with fewer than two distinct x.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    Some(sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_samples() {
        let mut l = Latencies::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary().unwrap();
        assert_eq!(s.count, 100);
        assert!((s.mean - 50.5).abs() < 0.01, "{s:?}");
        assert!((s.p50 - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.p99 - 99.0).abs() < 0.1, "{s:?}");
        assert!((s.max - 100.0).abs() < 0.1, "{s:?}");
        assert!(Latencies::default().summary().is_none());
    }

    #[test]
    fn memory_is_flat_over_a_million_samples() {
        let mut l = Latencies::default();
        let before = l.hist.distinct_values();
        for i in 0..1_000_000u64 {
            l.record(Duration::from_micros(i % 5_000_000 + 1));
        }
        assert_eq!(l.hist.distinct_values(), before);
        assert_eq!(l.count(), 1_000_000);
    }

    #[test]
    fn proportion_and_stderr() {
        let (p, se) = proportion(30, 50);
        assert!((p - 0.6).abs() < 1e-12);
        assert!((se - (0.6 * 0.4 / 49.0f64).sqrt()).abs() < 1e-12);
        assert_eq!(proportion(0, 0), (0.0, 0.0));
    }

    #[test]
    fn median_and_slope() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        let s = slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]).unwrap();
        assert!((s - 2.0).abs() < 1e-12);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0)]), None);
    }
}
