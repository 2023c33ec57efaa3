//! Progress of a run: a bar per running leg (done/total and rate) on a terminal, plain
//! timestamped lines otherwise (CI logs).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::runtime::docker::Progress as Sink;
use crate::store::time::{format_utc, now};

/// How often plain-line mode reports a running leg's count (`--verbose`: every 5 s).
const LINE_EVERY: Duration = Duration::from_secs(30);
const LINE_EVERY_VERBOSE: Duration = Duration::from_secs(5);

/// The run's progress display.
pub struct Progress {
    bars: Option<MultiProgress>,
    /// `--quiet`: nothing but errors and warnings.
    quiet: bool,
    line_every: Duration,
    legs: HashMap<String, LegView>,
}

struct LegView {
    bar: Option<ProgressBar>,
    last_line: Instant,
    last: (u64, u64),
}

fn stamp() -> String {
    format_utc(now())[11..].to_string()
}

impl Progress {
    /// Bars when stderr is a terminal and `plain` is not asked for, lines otherwise.
    /// Nothing at all with `--quiet`.
    pub fn new(plain: bool) -> Progress {
        use crate::output::{Verbosity, verbosity};
        let quiet = verbosity() == Verbosity::Quiet;
        let bars = (!plain && !quiet && crate::output::stderr_is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            bars,
            quiet,
            line_every: if verbosity() == Verbosity::Verbose {
                LINE_EVERY_VERBOSE
            } else {
                LINE_EVERY
            },
            legs: HashMap::new(),
        }
    }

    /// A line about the run (not one leg); left out with `--quiet`.
    pub fn say(&self, text: &str) {
        if !self.quiet {
            self.alert(text);
        }
    }

    /// An error or warning about the run: shown even with `--quiet`.
    pub fn alert(&self, text: &str) {
        // indicatif draws on stderr itself, so its text is masked here, at its edge.
        let text = crate::redact::text(text);
        match &self.bars {
            Some(m) => {
                let _ = m.println(text);
            }
            None => crate::errln!("[{}] {text}", stamp()),
        }
    }

    /// Where a leg's (or an engine's) own progress lines go.
    pub fn sink(&self, who: &str) -> Sink {
        if self.quiet {
            return Arc::new(|_: &str| {});
        }
        let who = who.to_string();
        match (&self.bars, self.legs.get(&who).and_then(|l| l.bar.clone())) {
            (Some(_), Some(bar)) => Arc::new(move |line: &str| {
                bar.set_message(crate::redact::text(line.trim()).into_owned())
            }),
            (Some(m), None) => {
                let m = m.clone();
                Arc::new(move |line: &str| {
                    let _ = m.println(crate::redact::text(&format!("  {who}: {}", line.trim())));
                })
            }
            (None, _) => Arc::new(move |line: &str| {
                crate::errln!("[{}]   {who}: {}", stamp(), line.trim());
            }),
        }
    }

    pub fn leg_started(&mut self, id: &str, what: &str) {
        let bar = self.bars.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:<28} {elapsed:>4} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(id.to_string());
            bar.set_message(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        if bar.is_none() {
            self.say(&format!("start {id}: {what}"));
        }
        self.legs.insert(
            id.to_string(),
            LegView {
                bar,
                last_line: Instant::now(),
                last: (0, 0),
            },
        );
    }

    /// Shows a running leg's count of done and total work.
    pub fn tick(&mut self, id: &str, (done, total): (u64, u64)) {
        let Some(view) = self.legs.get_mut(id) else {
            return;
        };
        if view.last == (done, total) {
            return;
        }
        view.last = (done, total);
        match &view.bar {
            Some(bar) => {
                if total > 0 && bar.length().is_none() {
                    bar.set_length(total);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} {prefix:<28} [{bar:24}] {pos}/{len} {per_sec:>10} {wide_msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                }
                bar.set_position(done);
            }
            None => {
                if !self.quiet && view.last_line.elapsed() >= self.line_every {
                    view.last_line = Instant::now();
                    let of = if total > 0 {
                        format!("/{total}")
                    } else {
                        String::new()
                    };
                    crate::errln!("[{}]   {id}: {done}{of} done", stamp());
                }
            }
        }
    }

    pub fn leg_finished(&mut self, id: &str, status: &str, detail: &str) {
        if let Some(view) = self.legs.remove(id)
            && let Some(bar) = view.bar
        {
            bar.finish_and_clear();
        }
        self.say(&format!("{status:<9} {id}{detail}"));
    }
}
