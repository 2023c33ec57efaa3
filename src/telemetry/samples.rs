//! The gauges a leg samples and the samples themselves: each gauge's value on a page, a
//! series that thins itself past a bound, and the count and examples of failed scrapes.

use crate::engine::prometheus::Page;
use crate::engine::running::MetricsPage;
use crate::engine::scrape::ScrapeError;
use crate::engine::server_metrics::{MetricNames, Scale};

/// Points kept per series; beyond, every other one is dropped and sampling keeps one in two.
pub const MAX_POINTS: usize = 20_000;
/// Distinct scrape errors kept as examples.
const ERROR_EXAMPLES: usize = 5;

/// The gauges sampled over a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gauge {
    ServerRunning,
    ServerWaiting,
    KvCacheUsage,
    ClientInFlight,
}

impl Gauge {
    pub const ALL: [Gauge; 4] = [
        Gauge::ServerRunning,
        Gauge::ServerWaiting,
        Gauge::KvCacheUsage,
        Gauge::ClientInFlight,
    ];

    /// Its metric and series name, unit, and whether higher is better.
    pub fn facts(self) -> (&'static str, &'static str, bool) {
        GAUGES[self as usize]
    }
}

/// Gauge names (statistics are appended: `kv_cache_usage_max`), units, higher-is-better.
pub const GAUGES: [(&str, &str, bool); 4] = [
    ("server_running_requests", "requests", true),
    ("server_waiting_requests", "requests", false),
    ("kv_cache_usage", "ratio", false),
    ("client_in_flight_requests", "requests", true),
];

/// A gauge's value on a page (its label sets added together; KV-cache use as a ratio).
pub fn gauge_value(page: &Page, names: &MetricNames, gauge: Gauge) -> Option<f64> {
    let (family, scale) = match gauge {
        Gauge::ServerRunning => (names.running?, Scale::Ratio),
        Gauge::ServerWaiting => (names.waiting?, Scale::Ratio),
        Gauge::KvCacheUsage => names.kv_cache_usage?,
        Gauge::ClientInFlight => return None,
    };
    let value = total(page, family)?;
    Some(match scale {
        Scale::Ratio => value,
        Scale::Percent => value / 100.0,
    })
}

/// The sum of every sample of `series` on the page; `None` when it has none.
pub fn total(page: &Page, series: &str) -> Option<f64> {
    let mut found = false;
    let sum = page
        .series(series)
        .inspect(|_| found = true)
        .map(|s| s.value)
        .sum();
    found.then_some(sum)
}

/// Gauge readings over the window and how the scrapes went.
#[derive(Debug, Default)]
pub struct Samples {
    /// One series per [`Gauge`], in its order.
    pub gauges: Vec<Thinned>,
    pub scrapes: u64,
    pub failures: u64,
    pub errors: Vec<String>,
    /// Per extra page, per recorded series (in the target's order), its samples.
    pub extra: Vec<Vec<Thinned>>,
}

impl Samples {
    pub fn new() -> Self {
        Samples {
            gauges: Gauge::ALL.iter().map(|_| Thinned::default()).collect(),
            ..Samples::default()
        }
    }

    /// The gauges of `page` (when one was read) and the client's in-flight count, at `t`.
    pub fn read(
        &mut self,
        t: f64,
        page: Option<&Page>,
        names: Option<&MetricsPage>,
        in_flight: u64,
    ) {
        for (gauge, series) in Gauge::ALL.iter().zip(&mut self.gauges) {
            let value = match gauge {
                Gauge::ClientInFlight => Some(in_flight as f64),
                server => page
                    .zip(names)
                    .and_then(|(p, n)| gauge_value(p, &n.names, *server)),
            };
            if let Some(v) = value {
                series.push(t, v);
            }
        }
    }

    /// The recorded series of extra page `i` on `page`, at `t`.
    pub fn read_extra(
        &mut self,
        t: f64,
        i: usize,
        page: &Page,
        target: &crate::suite::model::ScrapeTarget,
    ) {
        if self.extra.len() <= i {
            self.extra.resize_with(i + 1, Vec::new);
        }
        let series = &mut self.extra[i];
        series.resize_with(target.series.len(), Thinned::default);
        for (name, thinned) in target.series.keys().zip(series.iter_mut()) {
            if let Some(v) = total(page, name) {
                thinned.push(t, v);
            }
        }
    }

    pub fn failed(&mut self, error: &ScrapeError) {
        self.failures += 1;
        let message = error.to_string();
        if self.errors.len() < ERROR_EXAMPLES && !self.errors.contains(&message) {
            self.errors.push(message);
        }
    }
}

/// A series that halves itself past [`MAX_POINTS`], so a long leg stays small.
#[derive(Debug, Default, Clone)]
pub struct Thinned {
    pub points: Vec<(f64, f64)>,
    stride: u64,
    seen: u64,
}

impl Thinned {
    pub fn push(&mut self, t: f64, v: f64) {
        let stride = self.stride.max(1);
        self.seen += 1;
        if (self.seen - 1) % stride != 0 {
            return;
        }
        self.points.push((t, v));
        if self.points.len() >= MAX_POINTS {
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride = stride * 2;
        }
    }
}
