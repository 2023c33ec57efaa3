//! A leg's telemetry summed up: gauges as mean/p50/p99/max over the samples, counters as
//! their increase between the window's two scrapes, histograms as the window's mean and
//! quantiles from bucket differences, and the figures that hold the server's account against
//! the client's.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::samples::{Gauge, Samples, total};
use super::{Figure, LegTelemetry, Series};
use crate::engine::prometheus::Kind;
use crate::engine::prometheus::Page;
use crate::engine::running::MetricsPage;
use crate::engine::server_metrics::{MetricNames, PrefixCache};
use crate::engine::tally::Totals;
use crate::engine::window::{Buckets, counter_increase, gauge_stats, histogram_window};
use crate::registry::Direction;
use crate::suite::model::ScrapeTarget;

/// Reads one histogram family's name from an engine's names.
pub type FamilyOf = fn(&MetricNames) -> Option<&'static str>;

/// Server histograms (statistics and `_ms` appended: `server_ttft_p99_ms`).
pub const HISTOGRAMS: [(&str, FamilyOf); 4] = [
    ("server_ttft", |n| n.ttft),
    ("server_tpot", |n| n.tpot),
    ("server_e2e", |n| n.e2e),
    ("server_queue_time", |n| n.queue_time),
];

/// Single figures over the window.
pub const SCALARS: [(&str, &str, bool); 11] = [
    ("server_preemptions", "count", false),
    ("server_prompt_tokens", "tokens", true),
    ("server_generation_tokens", "tokens", true),
    ("prefix_cache_hit_tokens", "tokens", true),
    ("prefix_cache_hit_rate", "ratio", true),
    ("client_generation_tokens", "tokens", true),
    ("client_prompt_tokens", "tokens", true),
    ("generation_tokens_server_minus_client", "tokens", false),
    ("ttft_client_minus_server_mean_ms", "ms", false),
    ("telemetry_scrapes", "count", true),
    ("telemetry_scrape_failures", "count", false),
];

/// Everything a session saw of one window.
pub struct Window<'a> {
    pub seconds: f64,
    pub interval: Duration,
    pub page: Option<&'a MetricsPage>,
    pub why_no_server: Option<&'a str>,
    pub start: Option<&'a Page>,
    pub start_error: Option<&'a str>,
    pub end: Option<&'a Page>,
    /// What the client saw over the window.
    pub client: Totals,
    pub samples: Samples,
    /// The extra pages, and each one's scrapes at the window's two ends.
    pub extras: &'a [ScrapeTarget],
    pub extra_start: &'a [Option<Page>],
    pub extra_end: &'a [Option<Page>],
}

struct Figures(Vec<Figure>);

impl Figures {
    fn set(&mut self, name: &str, value: f64, unit: &'static str, higher: bool) {
        if value.is_finite() {
            self.0.push(Figure {
                name: name.to_string(),
                value,
                unit,
                direction: if higher {
                    Direction::Higher
                } else {
                    Direction::Lower
                },
            });
        }
    }

    fn scalar(&mut self, name: &str, value: f64) {
        let (_, unit, higher) = SCALARS
            .iter()
            .find(|(n, _, _)| *n == name)
            .copied()
            .unwrap_or((name, "count", true));
        self.set(name, value, unit, higher);
    }
}

/// The figures, series and notes of a window.
pub fn summarize(w: Window<'_>) -> LegTelemetry {
    let mut figures = Figures(Vec::new());
    let mut notes = Map::new();
    let mut missing: Vec<String> = Vec::new();
    notes.insert("interval_s".into(), json!(w.interval.as_secs_f64()));
    notes.insert("window_s".into(), json!(w.seconds));
    match (w.page, w.why_no_server) {
        (Some(p), _) => {
            notes.insert("server_metrics".into(), json!(p.url));
        }
        (None, Some(why)) => {
            notes.insert("server_metrics".into(), Value::Null);
            missing.push(format!("no server metrics: {why}"));
        }
        (None, None) => {}
    }
    // Gauges, from every sample.
    let mut series = Vec::new();
    for (gauge, thinned) in Gauge::ALL.iter().zip(&w.samples.gauges) {
        let (name, unit, higher) = gauge.facts();
        let values: Vec<f64> = thinned.points.iter().map(|(_, v)| *v).collect();
        if let Some(stats) = gauge_stats(&values) {
            for (stat, v) in [
                ("mean", stats.mean),
                ("p50", stats.p50),
                ("p99", stats.p99),
                ("max", stats.max),
            ] {
                figures.set(&format!("{name}_{stat}"), v, unit, higher);
            }
            series.push(Series {
                name: name.to_string(),
                unit,
                points: thinned.points.clone(),
            });
        } else if w.page.is_some() {
            missing.push(format!("{name}: the engine reports no such gauge"));
        }
    }
    // Counters and histograms, from the two ends.
    let client = &w.client;
    figures.scalar("client_generation_tokens", client.completion_tokens as f64);
    figures.scalar("client_prompt_tokens", client.prompt_tokens as f64);
    if let (Some(p), Some(start), Some(end)) = (w.page, w.start, w.end) {
        let names = &p.names;
        let increase = |family: Option<&str>| -> Option<f64> {
            let family = family?;
            Some(counter_increase(&[
                total(start, family)?,
                total(end, family)?,
            ]))
        };
        if let Some(n) = increase(names.preemptions) {
            figures.scalar("server_preemptions", n);
        }
        let generated = increase(names.generation_tokens);
        if let Some(n) = generated {
            figures.scalar("server_generation_tokens", n);
            figures.scalar(
                "generation_tokens_server_minus_client",
                n - client.completion_tokens as f64,
            );
        }
        let (queried, hit) = match names.prefix_cache {
            Some(PrefixCache::QueriesAndHits { queries, hits }) => {
                (increase(Some(queries)), increase(Some(hits)))
            }
            Some(PrefixCache::ComputedAndCached { computed, cached }) => {
                let cached = increase(Some(cached));
                (
                    increase(Some(computed)).zip(cached).map(|(a, b)| a + b),
                    cached,
                )
            }
            None => (None, None),
        };
        // Prompt tokens the server read: with a separate cached counter, both parts.
        let prompt = match names.prefix_cache {
            Some(PrefixCache::ComputedAndCached { .. }) => queried,
            _ => increase(names.prompt_tokens),
        };
        if let Some(n) = prompt {
            figures.scalar("server_prompt_tokens", n);
        }
        if let (Some(q), Some(h)) = (queried, hit) {
            figures.scalar("prefix_cache_hit_tokens", h);
            if q > 0.0 {
                figures.scalar("prefix_cache_hit_rate", h / q);
            }
        }
        for (name, family) in HISTOGRAMS {
            let Some(family) = family(names) else {
                continue;
            };
            let window = Buckets::read(start, family)
                .zip(Buckets::read(end, family))
                .and_then(|(a, b)| histogram_window(&a, &b));
            if let Some(h) = window {
                for (stat, v) in [
                    ("mean", h.mean),
                    ("p50", h.p50),
                    ("p90", h.p90),
                    ("p99", h.p99),
                ] {
                    figures.set(&format!("{name}_{stat}_ms"), v * 1e3, "ms", false);
                }
                if name == "server_ttft"
                    && let Some(client_ttft) = client.ttft_mean_ms()
                {
                    figures.scalar(
                        "ttft_client_minus_server_mean_ms",
                        client_ttft - h.mean * 1e3,
                    );
                }
            }
        }
    } else if w.page.is_some() {
        missing.push(match (w.start_error, w.start, w.end) {
            (Some(e), _, _) => {
                format!("no counters or histograms: the opening scrape failed ({e})")
            }
            (_, _, None) => "no counters or histograms: the closing scrape failed".to_string(),
            _ => "no counters or histograms".to_string(),
        });
    }
    extra_pages(&w, &mut figures, &mut series, &mut missing);
    figures.scalar("telemetry_scrapes", w.samples.scrapes as f64);
    figures.scalar("telemetry_scrape_failures", w.samples.failures as f64);
    if !w.samples.errors.is_empty() {
        notes.insert("scrape_errors".into(), json!(w.samples.errors));
    }
    if !missing.is_empty() {
        notes.insert("missing".into(), json!(missing));
    }
    LegTelemetry {
        figures: figures.0,
        series,
        notes,
    }
}

/// The recorded series of the extra pages: a counter's increase over the window
/// (`scrape_<name>_increase`), anything else's mean and max over the samples
/// (`scrape_<name>_mean`, `_max`), and each sampled series for the store.
fn extra_pages(
    w: &Window<'_>,
    figures: &mut Figures,
    series: &mut Vec<Series>,
    missing: &mut Vec<String>,
) {
    for (i, target) in w.extras.iter().enumerate() {
        let start = w.extra_start.get(i).and_then(Option::as_ref);
        let end = w.extra_end.get(i).and_then(Option::as_ref);
        for (j, (name, direction)) in target.series.iter().enumerate() {
            let base = format!(
                "{}{}",
                super::SCRAPE_PREFIX,
                ScrapeTarget::figure_base(name)
            );
            let higher = *direction == Direction::Higher;
            let thinned = w.samples.extra.get(i).and_then(|s| s.get(j));
            let counter = start
                .or(end)
                .is_some_and(|p| p.kind_of(name) == Kind::Counter);
            if counter {
                let increase = start
                    .zip(end)
                    .and_then(|(a, b)| Some(counter_increase(&[total(a, name)?, total(b, name)?])));
                match increase {
                    Some(v) => figures.set(&format!("{base}_increase"), v, "count", higher),
                    None => missing.push(format!(
                        "{}: `{name}` is not on both the opening and the closing scrape",
                        target.url
                    )),
                }
                continue;
            }
            let values: Vec<f64> = thinned
                .map(|t| t.points.iter().map(|p| p.1).collect())
                .unwrap_or_default();
            match gauge_stats(&values) {
                Some(stats) => {
                    figures.set(&format!("{base}_mean"), stats.mean, "value", higher);
                    figures.set(&format!("{base}_max"), stats.max, "value", higher);
                }
                None => missing.push(format!("{}: no sample has `{name}`", target.url)),
            }
            if let Some(t) = thinned.filter(|t| !t.points.is_empty()) {
                series.push(Series {
                    name: base,
                    unit: "value",
                    points: t.points.clone(),
                });
            }
        }
    }
}
