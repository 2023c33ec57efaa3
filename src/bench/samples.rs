//! Per-request samples: a bounded, seeded uniform reservoir (memory stays flat however long
//! the run) and the compact binary form the results store keeps.

use serde::Serialize;

use crate::seed::mix;

/// Requests kept per run at most.
pub const CAPACITY: usize = 10_000;
/// The encoding version of `encode`.
pub const FORMAT: u32 = 1;
/// Bytes per encoded sample.
const SIZE: usize = 4 * 5 + 1;

/// One request: when it was scheduled and how it went, in milliseconds (NaN when absent).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    pub at_ms: f32,
    pub ttft_ms: f32,
    pub tpot_ms: f32,
    pub e2e_ms: f32,
    pub tokens: u32,
    pub ok: bool,
}

/// A uniform sample of at most `CAPACITY` requests (Algorithm R, seeded).
#[derive(Debug, Clone, Default)]
pub struct Reservoir {
    pub kept: Vec<Sample>,
    /// Requests offered, kept or not.
    pub seen: u64,
}

impl Reservoir {
    pub fn offer(&mut self, s: Sample) {
        self.seen += 1;
        if self.kept.len() < CAPACITY {
            self.kept.push(s);
            return;
        }
        let j = mix(0x5A3B, self.seen) % self.seen;
        if (j as usize) < CAPACITY {
            self.kept[j as usize] = s;
        }
    }

    /// The kept samples in order of their scheduled time.
    pub fn sorted(&self) -> Vec<Sample> {
        let mut v = self.kept.clone();
        v.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        v
    }
}

/// Little-endian fixed-width records, 21 bytes per request.
pub fn encode(samples: &[Sample]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * SIZE);
    for s in samples {
        for f in [s.at_ms, s.ttft_ms, s.tpot_ms, s.e2e_ms] {
            out.extend_from_slice(&f.to_le_bytes());
        }
        out.extend_from_slice(&s.tokens.to_le_bytes());
        out.push(u8::from(s.ok));
    }
    out
}

/// Reads `encode`'s bytes back; a torn tail is ignored.
pub fn decode(bytes: &[u8]) -> Vec<Sample> {
    bytes
        .chunks_exact(SIZE)
        .map(|c| {
            let f = |i: usize| f32::from_le_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
            Sample {
                at_ms: f(0),
                ttft_ms: f(4),
                tpot_ms: f(8),
                e2e_ms: f(12),
                tokens: u32::from_le_bytes([c[16], c[17], c[18], c[19]]),
                ok: c[20] != 0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(i: u32) -> Sample {
        Sample {
            at_ms: i as f32,
            ttft_ms: 1.5,
            tpot_ms: f32::NAN,
            e2e_ms: 9.0,
            tokens: i,
            ok: i % 2 == 0,
        }
    }

    #[test]
    fn encoding_round_trips() {
        let s: Vec<Sample> = (0..3).map(sample).collect();
        let back = decode(&encode(&s));
        assert_eq!(back.len(), 3);
        assert_eq!(back[2].tokens, 2);
        assert!(back[1].tpot_ms.is_nan());
        assert!(!back[1].ok);
    }

    #[test]
    fn the_reservoir_stays_bounded_and_uniform() {
        let mut r = Reservoir::default();
        for i in 0..100_000 {
            r.offer(sample(i));
        }
        assert_eq!(r.kept.len(), CAPACITY);
        assert_eq!(r.seen, 100_000);
        // A uniform sample of 0..100000 has a mean near 50000.
        let mean = r.kept.iter().map(|s| f64::from(s.tokens)).sum::<f64>() / CAPACITY as f64;
        assert!((mean - 50_000.0).abs() < 2_000.0, "{mean}");
    }
}
