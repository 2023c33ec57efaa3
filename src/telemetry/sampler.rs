//! A leg's telemetry session: a scrape of the engine's metrics page as the measured window
//! opens, gauges (the server's and the client's in-flight count) sampled at an interval by a
//! task of its own, a scrape as the window closes. A scrape that fails is a gap in the series
//! and a counted failure, never a failed or hung leg: each is bounded in time and size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::power::{Meter, PowerLog, Reading};
use super::samples::Samples;
use super::summary::{self, Window};
use super::{LegTelemetry, Settings};
use crate::engine::RunningEngine;
use crate::engine::prometheus::{Limits, Page};
use crate::engine::running::MetricsPage;
use crate::engine::scrape::scrape;
use crate::engine::tally::ClientTally;

/// Longest wait for the scrapes that open and close the window.
const EDGE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for one sampling scrape (less when the interval is shorter).
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Aborts a sampling task if the session is dropped before `finish` (a cancelled leg).
struct AbortOnDrop<T>(Option<JoinHandle<T>>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// A leg's telemetry while it runs.
pub struct Session {
    started: Instant,
    http: Option<reqwest::Client>,
    page: Option<MetricsPage>,
    why_no_server: Option<String>,
    start_page: Option<Page>,
    start_error: Option<String>,
    /// Each extra page's opening scrape, in the settings' order.
    extra_start: Vec<Option<Page>>,
    tally: Arc<ClientTally>,
    client_start: crate::engine::tally::Totals,
    stop: watch::Sender<bool>,
    task: AbortOnDrop<Samples>,
    settings: Settings,
    /// The power meter and its opening reading, or why there is none.
    power: Result<(Arc<Meter>, Option<Reading>), String>,
    power_task: AbortOnDrop<PowerLog>,
}

impl Session {
    /// Opens the window: scrapes the engine's page once and starts sampling.
    pub async fn start(engine: &RunningEngine, settings: &Settings) -> Session {
        let settings = Settings {
            interval: settings.interval.max(super::MIN_INTERVAL),
            ..settings.clone()
        };
        let (page, why_no_server) = match (settings.server, engine.metrics_page()) {
            (false, _) => (None, Some("telemetry `server: false`".to_string())),
            (true, Ok(page)) => (Some(page.clone()), None),
            (true, Err(why)) => (None, Some(why.to_string())),
        };
        let http = match page.is_some() || !settings.scrape.is_empty() {
            true => match crate::engine::client::http_client(&Default::default()) {
                Ok(http) => Some(http),
                Err(e) => {
                    return Session::without_server(
                        engine,
                        settings,
                        format!("no HTTP client for scrapes: {e}"),
                    );
                }
            },
            false => None,
        };
        let tally = engine.client_tally();
        let mut samples = Samples::new();
        let (start_page, start_error) = match (&http, &page) {
            (Some(http), Some(p)) => {
                samples.scrapes += 1;
                match scrape(http, &p.url, EDGE_TIMEOUT, Limits::default()).await {
                    Ok(read) => (Some(read), None),
                    Err(e) => {
                        samples.failed(&e);
                        (None, Some(e.to_string()))
                    }
                }
            }
            _ => (None, None),
        };
        let mut extra_start = Vec::new();
        if let Some(http) = &http {
            for (i, target) in settings.scrape.iter().enumerate() {
                extra_start
                    .push(scrape_extra(http, &mut samples, 0.0, i, target, EDGE_TIMEOUT).await);
            }
        }
        // The power meter's opening reading, right where the window opens.
        let power = open_meter(engine, &settings).await;
        let started = Instant::now();
        let client_start = tally.totals();
        samples.read(
            0.0,
            start_page.as_ref(),
            page.as_ref(),
            client_start.in_flight,
        );
        let (stop, stopped) = watch::channel(false);
        let power_task = match &power {
            Ok((meter, _)) => AbortOnDrop(Some(tokio::spawn(sample_power(
                meter.clone(),
                started,
                settings.interval,
                stopped.clone(),
            )))),
            Err(_) => AbortOnDrop(None),
        };
        let task = tokio::spawn(sample(
            samples,
            started,
            settings.interval,
            http.clone(),
            page.clone(),
            settings.scrape.clone(),
            tally.clone(),
            stopped,
        ));
        Session {
            started,
            http,
            page,
            why_no_server,
            start_page,
            start_error,
            extra_start,
            tally,
            client_start,
            stop,
            task: AbortOnDrop(Some(task)),
            settings,
            power,
            power_task,
        }
    }

    fn without_server(engine: &RunningEngine, settings: Settings, why: String) -> Session {
        let tally = engine.client_tally();
        let (stop, _) = watch::channel(false);
        Session {
            started: Instant::now(),
            http: None,
            page: None,
            why_no_server: Some(why),
            start_page: None,
            start_error: None,
            extra_start: Vec::new(),
            client_start: tally.totals(),
            tally,
            stop,
            task: AbortOnDrop(None),
            settings,
            power: Err("no telemetry session".into()),
            power_task: AbortOnDrop(None),
        }
    }

    /// Closes the window: stops sampling, scrapes the page once more and sums it all up.
    pub async fn finish(mut self) -> LegTelemetry {
        let _ = self.stop.send(true);
        let mut samples = match self.task.0.take() {
            Some(task) => task.await.unwrap_or_else(|_| Samples::new()),
            None => Samples::new(),
        };
        let mut end_page = None;
        if let (Some(http), Some(p)) = (&self.http, &self.page) {
            samples.scrapes += 1;
            match scrape(http, &p.url, EDGE_TIMEOUT, Limits::default()).await {
                Ok(read) => end_page = Some(read),
                Err(e) => samples.failed(&e),
            }
        }
        let seconds_so_far = self.started.elapsed().as_secs_f64();
        let mut extra_end = Vec::new();
        if let Some(http) = &self.http {
            for (i, target) in self.settings.scrape.iter().enumerate() {
                extra_end.push(
                    scrape_extra(http, &mut samples, seconds_so_far, i, target, EDGE_TIMEOUT).await,
                );
            }
        }
        let power_log = match self.power_task.0.take() {
            Some(task) => task.await.ok(),
            None => None,
        };
        let power_end = match &self.power {
            Ok((meter, _)) => read_meter(meter.clone()).await.ok(),
            Err(_) => None,
        };
        let seconds = self.started.elapsed().as_secs_f64();
        let client_end = self.tally.totals();
        samples.read(
            seconds,
            end_page.as_ref(),
            self.page.as_ref(),
            client_end.in_flight,
        );
        let client = client_end.since(&self.client_start);
        let output_tokens = client.completion_tokens;
        let mut telemetry = summary::summarize(Window {
            seconds,
            interval: self.settings.interval,
            page: self.page.as_ref(),
            why_no_server: self.why_no_server.as_deref(),
            start: self.start_page.as_ref(),
            start_error: self.start_error.as_deref(),
            end: end_page.as_ref(),
            client,
            samples,
            extras: &self.settings.scrape,
            extra_start: &self.extra_start,
            extra_end: &extra_end,
        });
        match &self.power {
            Ok((meter, start)) => {
                let log = power_log.unwrap_or_default();
                let failures = log.failures;
                let first_error = log.first_error.clone();
                let power = super::power::summarize(
                    meter,
                    start.as_ref(),
                    power_end.as_ref(),
                    log,
                    seconds,
                    output_tokens,
                );
                let notes = &mut telemetry.notes;
                notes.insert("power".into(), meter.describe().into());
                if let Some(source) = power.energy_source {
                    notes.insert("energy_source".into(), source.into());
                } else {
                    missing(
                        notes,
                        "no energy: a reading at the window's start or end failed",
                    );
                }
                if failures > 0 {
                    notes.insert("power_read_failures".into(), failures.into());
                    if let Some(e) = first_error {
                        notes.insert("power_read_error".into(), e.into());
                    }
                }
                telemetry.figures.extend(power.figures);
                telemetry.series.extend(power.series);
            }
            Err(why) => missing(&mut telemetry.notes, &format!("no power readings: {why}")),
        }
        telemetry
    }
}

/// One scrape of an extra page, recorded at `t`.
async fn scrape_extra(
    http: &reqwest::Client,
    samples: &mut Samples,
    t: f64,
    i: usize,
    target: &crate::suite::model::ScrapeTarget,
    timeout: Duration,
) -> Option<Page> {
    let read = scrape(http, &target.url, timeout, Limits::default()).await;
    record_extra(samples, t, i, target, read)
}

/// An extra page's scrape: its recorded series go into `samples` at `t` and the page is
/// kept for counters, or the failure is counted.
fn record_extra(
    samples: &mut Samples,
    t: f64,
    i: usize,
    target: &crate::suite::model::ScrapeTarget,
    read: Result<Page, crate::engine::scrape::ScrapeError>,
) -> Option<Page> {
    samples.scrapes += 1;
    match read {
        Ok(page) => {
            samples.read_extra(t, i, &page, target);
            Some(page)
        }
        Err(e) => {
            samples.failed(&e);
            None
        }
    }
}

/// Adds a line to the notes' `missing` list.
fn missing(notes: &mut serde_json::Map<String, serde_json::Value>, line: &str) {
    let list = notes
        .entry("missing")
        .or_insert_with(|| serde_json::Value::Array(Vec::new()));
    if let Some(list) = list.as_array_mut() {
        list.push(line.into());
    }
}

/// The engine's power meter with its opening reading, or why it has none.
async fn open_meter(
    engine: &RunningEngine,
    settings: &Settings,
) -> Result<(Arc<Meter>, Option<Reading>), String> {
    if !settings.gpu {
        return Err("telemetry `gpu: false`".into());
    }
    let devices = engine.devices().clone();
    let meter = tokio::task::spawn_blocking(move || {
        Meter::open(
            &devices,
            super::gpu::open,
            std::path::Path::new(super::rapl::POWERCAP),
        )
    })
    .await
    .map_err(|e| e.to_string())??;
    let meter = Arc::new(meter);
    let start = read_meter(meter.clone()).await.ok();
    Ok((meter, start))
}

/// One reading, off the async threads (NVML calls block; `nvidia-smi` is a process).
async fn read_meter(meter: Arc<Meter>) -> Result<Reading, String> {
    tokio::task::spawn_blocking(move || meter.read())
        .await
        .map_err(|e| e.to_string())?
}

/// Reads the power meter every `interval` until told to stop.
async fn sample_power(
    meter: Arc<Meter>,
    started: Instant,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> PowerLog {
    let mut log = PowerLog::default();
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return log,
            _ = ticks.tick() => {}
        }
        let reading = read_meter(meter.clone()).await;
        log.add(&meter, started.elapsed().as_secs_f64(), reading);
    }
}

/// Samples every `interval` until told to stop, then hands back what it read: the
/// engine's page (when it has one), the extra pages, the client's in-flight count.
#[allow(clippy::too_many_arguments)]
async fn sample(
    mut samples: Samples,
    started: Instant,
    interval: Duration,
    http: Option<reqwest::Client>,
    page: Option<MetricsPage>,
    extras: Vec<crate::suite::model::ScrapeTarget>,
    tally: Arc<ClientTally>,
    mut stop: watch::Receiver<bool>,
) -> Samples {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let timeout = interval.min(SAMPLE_TIMEOUT);
    loop {
        tokio::select! {
            _ = stop.changed() => return samples,
            _ = ticks.tick() => {}
        }
        let read = match (&http, &page) {
            (Some(http), Some(p)) => {
                samples.scrapes += 1;
                let read = tokio::select! {
                    _ = stop.changed() => {
                        samples.scrapes -= 1; // cut short by the window's end, not failed
                        return samples;
                    }
                    read = scrape(http, &p.url, timeout, Limits::default()) => read,
                };
                match read {
                    Ok(page) => Some(page),
                    Err(e) => {
                        samples.failed(&e);
                        None
                    }
                }
            }
            _ => None,
        };
        let t = started.elapsed().as_secs_f64();
        samples.read(t, read.as_ref(), page.as_ref(), tally.totals().in_flight);
        if let Some(http) = &http {
            for (i, target) in extras.iter().enumerate() {
                let read = tokio::select! {
                    _ = stop.changed() => return samples,
                    read = scrape(http, &target.url, timeout, Limits::default()) => read,
                };
                let t = started.elapsed().as_secs_f64();
                record_extra(&mut samples, t, i, target, read);
            }
        }
    }
}
