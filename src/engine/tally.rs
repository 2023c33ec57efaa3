//! What the measuring client saw of one engine, counted as requests end: requests in flight,
//! finished and failed, tokens, and time to first token — read at the two ends of a window
//! to compare with the server's own counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Running totals, updated by every request sent through [`super::RunningEngine::generate`].
#[derive(Debug, Default)]
pub struct ClientTally {
    in_flight: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    completion_tokens: AtomicU64,
    prompt_tokens: AtomicU64,
    ttft_ns: AtomicU64,
    ttft_count: AtomicU64,
}

/// The totals at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub in_flight: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub completion_tokens: u64,
    pub prompt_tokens: u64,
    /// Sum of the time to first token of the requests that had one, from their send.
    pub ttft_ns: u64,
    pub ttft_count: u64,
}

impl Totals {
    /// What happened between `earlier` and `self` (in flight as of `self`).
    pub fn since(&self, earlier: &Totals) -> Totals {
        Totals {
            in_flight: self.in_flight,
            succeeded: self.succeeded - earlier.succeeded,
            failed: self.failed - earlier.failed,
            completion_tokens: self.completion_tokens - earlier.completion_tokens,
            prompt_tokens: self.prompt_tokens - earlier.prompt_tokens,
            ttft_ns: self.ttft_ns - earlier.ttft_ns,
            ttft_count: self.ttft_count - earlier.ttft_count,
        }
    }

    /// Mean time to first token in ms, when any request had one.
    pub fn ttft_mean_ms(&self) -> Option<f64> {
        (self.ttft_count > 0).then(|| self.ttft_ns as f64 / self.ttft_count as f64 / 1e6)
    }
}

/// A request in flight; `end` counts it, and dropping it without (a cancelled request)
/// only takes it out of the in-flight count.
pub struct InFlight<'a> {
    tally: &'a ClientTally,
}

impl ClientTally {
    /// A request is sent.
    pub fn begin(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { tally: self }
    }

    pub fn totals(&self) -> Totals {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Totals {
            in_flight: get(&self.in_flight),
            succeeded: get(&self.succeeded),
            failed: get(&self.failed),
            completion_tokens: get(&self.completion_tokens),
            prompt_tokens: get(&self.prompt_tokens),
            ttft_ns: get(&self.ttft_ns),
            ttft_count: get(&self.ttft_count),
        }
    }
}

impl InFlight<'_> {
    /// It ended: with its token counts and time to first token, or failed (`None`).
    pub fn end(self, outcome: Option<(u64, Option<u64>, Option<Duration>)>) {
        let t = self.tally;
        match outcome {
            Some((completion, prompt, ttft)) => {
                t.succeeded.fetch_add(1, Ordering::Relaxed);
                t.completion_tokens.fetch_add(completion, Ordering::Relaxed);
                t.prompt_tokens
                    .fetch_add(prompt.unwrap_or(0), Ordering::Relaxed);
                if let Some(d) = ttft {
                    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                    t.ttft_ns.fetch_add(ns, Ordering::Relaxed);
                    t.ttft_count.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                t.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.tally.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_as_they_end_and_cancelled_ones_leave_no_trace() {
        let tally = ClientTally::default();
        let start = tally.totals();
        let a = tally.begin();
        let b = tally.begin();
        let c = tally.begin();
        assert_eq!(tally.totals().in_flight, 3);
        a.end(Some((12, Some(5), Some(Duration::from_millis(40)))));
        b.end(Some((8, None, Some(Duration::from_millis(60)))));
        drop(c);
        tally.begin().end(None);
        let d = tally.totals().since(&start);
        assert_eq!(
            (
                d.in_flight,
                d.succeeded,
                d.failed,
                d.completion_tokens,
                d.prompt_tokens
            ),
            (0, 2, 1, 20, 5)
        );
        assert_eq!(d.ttft_mean_ms(), Some(50.0));
    }
}
