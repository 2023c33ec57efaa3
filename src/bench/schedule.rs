//! Open-loop arrival schedules: seeded, precomputed send times for a target rate.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Exp, Gamma};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How inter-arrival gaps are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Exponential gaps (a Poisson process): the usual model of independent users.
    #[default]
    Poisson,
    /// Gamma gaps with shape `burstiness`: below 1 burstier than Poisson, above 1 smoother.
    Gamma,
    /// Evenly spaced sends.
    Constant,
}

/// The most sends one schedule holds (160 MB of offsets).
pub const MAX_SENDS: usize = 10_000_000;

/// Send offsets from the start of a run, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub offsets: Vec<Duration>,
}

/// Where a schedule ends.
#[derive(Debug, Clone, Copy)]
pub enum Extent {
    /// Exactly this many sends.
    Requests(u64),
    /// Every send before this offset.
    Within(Duration),
}

impl Schedule {
    /// Draws the schedule for `rate` requests per second from `seed`.
    pub fn build(
        rate: f64,
        arrival: Arrival,
        burstiness: f64,
        seed: u64,
        extent: Extent,
    ) -> Result<Schedule, String> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!("rate must be a positive number, not {rate}"));
        }
        if !(burstiness.is_finite() && burstiness > 0.0) {
            return Err(format!(
                "burstiness must be a positive number, not {burstiness}"
            ));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let exp = Exp::new(rate).map_err(|e| e.to_string())?;
        let gamma = Gamma::new(burstiness, 1.0 / (rate * burstiness)).map_err(|e| e.to_string())?;
        let mut gap = move || -> f64 {
            match arrival {
                Arrival::Poisson => exp.sample(&mut rng),
                Arrival::Gamma => gamma.sample(&mut rng),
                Arrival::Constant => 1.0 / rate,
            }
        };
        let mut offsets = Vec::new();
        // The first request goes at once; gaps separate the following ones.
        let mut t = 0.0f64;
        loop {
            let offset = Duration::try_from_secs_f64(t).map_err(|_| {
                format!("at {rate} requests/s the schedule runs past any duration kitt can keep")
            })?;
            match extent {
                Extent::Requests(n) if offsets.len() as u64 >= n => break,
                Extent::Within(limit) if offset >= limit => break,
                _ => {}
            }
            if offsets.len() >= MAX_SENDS {
                return Err(format!(
                    "the schedule would hold more than {MAX_SENDS} sends; split the run"
                ));
            }
            offsets.push(offset);
            t += gap();
        }
        Ok(Schedule { offsets })
    }

    /// The achieved rate the schedule itself implies (requests over its span).
    pub fn rate(&self) -> Option<f64> {
        let last = self.offsets.last()?.as_secs_f64();
        (last > 0.0).then(|| (self.offsets.len() - 1) as f64 / last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_schedule_other_seed_other_schedule() {
        let a = Schedule::build(50.0, Arrival::Poisson, 1.0, 7, Extent::Requests(200)).unwrap();
        let b = Schedule::build(50.0, Arrival::Poisson, 1.0, 7, Extent::Requests(200)).unwrap();
        let c = Schedule::build(50.0, Arrival::Poisson, 1.0, 8, Extent::Requests(200)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.offsets.len(), 200);
    }

    #[test]
    fn the_rate_is_what_was_asked_for() {
        for arrival in [Arrival::Poisson, Arrival::Gamma, Arrival::Constant] {
            let s = Schedule::build(
                100.0,
                arrival,
                0.5,
                1,
                Extent::Within(Duration::from_secs(200)),
            )
            .unwrap();
            let rate = s.rate().unwrap();
            assert!((rate - 100.0).abs() < 3.0, "{arrival:?}: {rate}");
            assert!(s.offsets.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn burstiness_below_one_spreads_the_gaps() {
        let cv = |b: f64| {
            let s = Schedule::build(10.0, Arrival::Gamma, b, 3, Extent::Requests(20_000)).unwrap();
            let gaps: Vec<f64> = s
                .offsets
                .windows(2)
                .map(|w| (w[1] - w[0]).as_secs_f64())
                .collect();
            let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
            let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
            var.sqrt() / mean
        };
        // The coefficient of variation of gamma gaps is 1/sqrt(shape).
        assert!((cv(0.25) - 2.0).abs() < 0.15, "{}", cv(0.25));
        assert!((cv(4.0) - 0.5).abs() < 0.05, "{}", cv(4.0));
    }

    #[test]
    fn bad_rates_are_refused() {
        assert!(Schedule::build(0.0, Arrival::Poisson, 1.0, 0, Extent::Requests(1)).is_err());
        assert!(Schedule::build(1.0, Arrival::Gamma, 0.0, 0, Extent::Requests(1)).is_err());
        assert!(Schedule::build(1e-300, Arrival::Constant, 1.0, 0, Extent::Requests(2)).is_err());
        let too_many = Extent::Requests(MAX_SENDS as u64 + 1);
        assert!(Schedule::build(1e9, Arrival::Constant, 1.0, 0, too_many).is_err());
    }
}
