//! A server's metrics over a measured window, from its Prometheus pages: a counter's increase
//! (robust to a reset), a gauge's statistics, a histogram's mean and quantiles from the
//! difference of its buckets at the window's two ends.

use super::prometheus::Page;

/// How much a counter rose over readings taken in order. A reading below the one before
/// means the server started counting again (a restart): the count goes on from zero, as
/// Prometheus' `increase()` does.
pub fn counter_increase(readings: &[f64]) -> f64 {
    readings
        .windows(2)
        .map(|w| if w[1] >= w[0] { w[1] - w[0] } else { w[1] })
        .sum()
}

/// A gauge's readings over a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaugeStats {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// Mean, nearest-rank p50 and p99 and maximum of the finite readings; `None` when none is.
pub fn gauge_stats(readings: &[f64]) -> Option<GaugeStats> {
    let mut sorted: Vec<f64> = readings.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank =
        |q: f64| sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    Some(GaugeStats {
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        p50: rank(0.5),
        p99: rank(0.99),
        max: sorted[sorted.len() - 1],
    })
}

/// One histogram family at one scrape, its label sets added together: cumulative counts per
/// upper bound (ascending, `+Inf` last), the sum and the count.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    pub bounds: Vec<f64>,
    pub cumulative: Vec<f64>,
    pub sum: f64,
    pub count: f64,
}

impl Buckets {
    /// The family `name` (without `_bucket`) on `page`; `None` when the page lacks it.
    pub fn read(page: &Page, name: &str) -> Option<Buckets> {
        let mut by_bound: Vec<(f64, f64)> = Vec::new();
        for s in page.series(&format!("{name}_bucket")) {
            let Some(bound) = s.label("le").and_then(|le| match le {
                "+Inf" | "Inf" => Some(f64::INFINITY),
                other => other.parse::<f64>().ok(),
            }) else {
                continue;
            };
            match by_bound.iter_mut().find(|(b, _)| *b == bound) {
                Some((_, n)) => *n += s.value,
                None => by_bound.push((bound, s.value)),
            }
        }
        if by_bound.is_empty() {
            return None;
        }
        by_bound.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = |suffix: &str| -> f64 {
            page.series(&format!("{name}{suffix}"))
                .map(|s| s.value)
                .sum()
        };
        Some(Buckets {
            bounds: by_bound.iter().map(|(b, _)| *b).collect(),
            cumulative: by_bound.iter().map(|(_, n)| *n).collect(),
            sum: total("_sum"),
            count: total("_count"),
        })
    }
}

/// What a histogram observed within a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramWindow {
    pub count: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// The observations between two scrapes of one histogram (`end` minus `start`; a `start` the
/// server has since reset counts as empty). Quantiles interpolate linearly within a bucket,
/// as Prometheus' `histogram_quantile` does; one falling in the `+Inf` bucket is the highest
/// finite bound. `None` when nothing was observed or the bounds changed.
pub fn histogram_window(start: &Buckets, end: &Buckets) -> Option<HistogramWindow> {
    if start.bounds != end.bounds {
        return None;
    }
    let reset = end.count < start.count;
    let delta: Vec<f64> = if reset {
        end.cumulative.clone()
    } else {
        end.cumulative
            .iter()
            .zip(&start.cumulative)
            .map(|(e, s)| e - s)
            .collect()
    };
    let (count, sum) = if reset {
        (end.count, end.sum)
    } else {
        (end.count - start.count, end.sum - start.sum)
    };
    if count <= 0.0 {
        return None;
    }
    let quantile = |q: f64| -> f64 {
        let rank = q * count;
        let mut lower_bound = 0.0;
        let mut below = 0.0;
        for (bound, &cumulative) in end.bounds.iter().zip(&delta) {
            if cumulative >= rank {
                if bound.is_infinite() {
                    return lower_bound;
                }
                let inside = cumulative - below;
                if inside <= 0.0 {
                    return *bound;
                }
                return lower_bound + (bound - lower_bound) * (rank - below) / inside;
            }
            lower_bound = *bound;
            below = cumulative;
        }
        lower_bound
    };
    Some(HistogramWindow {
        count,
        mean: sum / count,
        p50: quantile(0.5),
        p90: quantile(0.9),
        p99: quantile(0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::prometheus::{Limits, parse};

    #[test]
    fn counters_rise_across_a_reset() {
        assert_eq!(counter_increase(&[10.0, 15.0, 15.0, 20.0]), 10.0);
        // The server restarted between 20 and 3: 3 new, then 4 more.
        assert_eq!(counter_increase(&[10.0, 20.0, 3.0, 7.0]), 17.0);
        assert_eq!(counter_increase(&[5.0]), 0.0);
    }

    #[test]
    fn gauges_have_mean_ranks_and_max() {
        let g = gauge_stats(&[1.0, f64::NAN, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!(
            g,
            GaugeStats {
                mean: 2.5,
                p50: 2.0,
                p99: 4.0,
                max: 4.0
            }
        );
        assert_eq!(gauge_stats(&[f64::NAN]), None);
    }

    fn page(observations: [f64; 4], sum: f64) -> Page {
        // Two label sets that add up: bounds 0.1, 0.5, 1, +Inf.
        let [a, b, c, inf] = observations;
        let text = format!(
            "# TYPE t histogram\n\
             t_bucket{{m=\"x\",le=\"0.1\"}} {a}\nt_bucket{{m=\"x\",le=\"0.5\"}} {b}\n\
             t_bucket{{m=\"x\",le=\"1.0\"}} {c}\nt_bucket{{m=\"x\",le=\"+Inf\"}} {inf}\n\
             t_bucket{{m=\"y\",le=\"0.1\"}} 0\nt_bucket{{m=\"y\",le=\"0.5\"}} 0\n\
             t_bucket{{m=\"y\",le=\"1.0\"}} 0\nt_bucket{{m=\"y\",le=\"+Inf\"}} 0\n\
             t_sum{{m=\"x\"}} {sum}\nt_count{{m=\"x\"}} {inf}\nt_sum{{m=\"y\"}} 0\nt_count{{m=\"y\"}} 0\n"
        );
        parse(&text, Limits::default()).unwrap()
    }

    #[test]
    fn a_windows_histogram_is_the_difference_of_its_ends() {
        let start = Buckets::read(&page([2.0, 2.0, 2.0, 2.0], 0.1), "t").unwrap();
        // Then 10 more: 0 below 0.1, 8 in (0.1, 0.5], 1 in (0.5, 1], 1 above 1.
        let end = Buckets::read(&page([2.0, 10.0, 11.0, 12.0], 4.1), "t").unwrap();
        assert_eq!(end.bounds, [0.1, 0.5, 1.0, f64::INFINITY]);
        let w = histogram_window(&start, &end).unwrap();
        assert_eq!(w.count, 10.0);
        assert!((w.mean - 0.4).abs() < 1e-12, "{}", w.mean);
        // The 5th of 10 lies 5/8 into (0.1, 0.5]; the 9th is the one in (0.5, 1]; the 9.9th
        // is in +Inf, so the highest finite bound.
        assert!((w.p50 - 0.35).abs() < 1e-12, "{}", w.p50);
        assert!((w.p90 - 1.0).abs() < 1e-12, "{}", w.p90);
        assert_eq!(w.p99, 1.0);
        // A start the server has since reset counts as empty.
        let restarted = Buckets::read(&page([1.0, 1.0, 1.0, 1.0], 0.05), "t").unwrap();
        assert_eq!(histogram_window(&end, &restarted).unwrap().count, 1.0);
        assert_eq!(histogram_window(&end, &end), None);
        assert_eq!(Buckets::read(&end_page_without_t(), "t"), None);
    }

    fn end_page_without_t() -> Page {
        parse("u 1\n", Limits::default()).unwrap()
    }
}
