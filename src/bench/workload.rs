//! What the load-generating benchmarks send: synthetic prompts of drawn lengths (no tokenizer
//! needed) or prompts from a dataset, each request fixed by the seed and its index.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::dataset::{self, DatasetSpec};
use super::{BenchContext, BenchError};
use crate::engine::generation::{Endpoint, GenerationRequest};
use crate::seed::{mix, unit};
use crate::suite::model::Sampling;

/// Params every load-generating benchmark shares.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
pub struct WorkloadParams {
    /// Mean synthetic prompt length in tokens (one common English word is about one token;
    /// the server's own count is reported as `prompt_tokens_mean`).
    #[serde(default = "default_input")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub input_tokens: u32,
    /// Mean output length in tokens; requests ask for exactly this many (`ignore_eos`).
    #[serde(default = "default_output")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub output_tokens: u32,
    /// Lengths are drawn uniformly from mean × (1 ± spread); 0 keeps them fixed.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub length_spread: f64,
    /// Prompts from a dataset (field `prompt`) instead of synthetic ones.
    #[serde(default)]
    pub dataset: Option<DatasetSpec>,
    /// Seed of lengths, prompts and arrivals: the same seed sends the same requests.
    #[serde(default)]
    pub seed: u64,
    /// The API the requests go to.
    #[serde(default)]
    pub endpoint: EndpointParam,
    /// Prompts that share prefixes on purpose (a system prompt, a document): each prompt is
    /// its group's prefix, then its own `input_tokens`.
    #[serde(default)]
    pub shared_prefix: Option<SharedPrefix>,
}

/// `groups` prefixes of `prefix_tokens` words; request `i` starts with prefix `i % groups`.
/// The prefixes are the leg's own (salted like every prompt), shared by its sweep points.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedPrefix {
    /// Distinct prefixes.
    #[schemars(range(min = 1, max = 1024))]
    pub groups: u32,
    /// Words in each prefix (one common word is about one token).
    #[schemars(range(min = 1, max = 1_000_000))]
    pub prefix_tokens: u32,
    /// Send each prefix alone once before the first load, so every measured request finds
    /// its prefix cached (default true).
    #[serde(default = "primed_by_default")]
    pub prime: bool,
}

fn primed_by_default() -> bool {
    true
}

fn default_input() -> u32 {
    256
}
fn default_output() -> u32 {
    128
}

/// `chat` or `completions`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndpointParam {
    #[default]
    Chat,
    Completions,
}

impl From<EndpointParam> for Endpoint {
    fn from(e: EndpointParam) -> Self {
        match e {
            EndpointParam::Chat => Endpoint::Chat,
            EndpointParam::Completions => Endpoint::Completions,
        }
    }
}

/// Distinct prompt bodies kept; request `i` uses body `i % POOL` behind a unique prefix.
const POOL: usize = 256;

/// Common words, each one token in the usual tokenizers.
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by",
    "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an",
    "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "time", "up", "out", "about",
    "into", "them", "some", "could", "him", "two", "then", "its", "first", "new", "now", "may",
    "only", "over", "very", "people", "year", "good", "work", "day", "world", "life", "long",
    "way", "water", "place", "house", "city", "light", "number", "story", "game", "line", "music",
    "river", "road", "tree", "paper", "table", "window", "garden", "bird", "cloud", "stone",
];

/// The requests of one run: the same for the same params, whatever the engine.
#[derive(Debug, Clone)]
pub struct Workload {
    bodies: Arc<Vec<String>>,
    params: WorkloadParams,
    sampling: Sampling,
    /// The leg's salt (of its run and id), in every prompt's prefix.
    salt: u64,
    /// The leg's salt again, for the shared prefixes: `salted` parts keep them.
    prefix_salt: u64,
    /// Whether the shared prefixes were primed (once for all parts).
    primed: Arc<std::sync::atomic::AtomicBool>,
}

/// `mean` × (1 ± spread), drawn from `x`, at least 1.
pub fn draw(mean: u32, spread: f64, x: u64) -> u32 {
    if spread <= 0.0 {
        return mean.max(1);
    }
    let factor = 1.0 + spread * (2.0 * unit(x) - 1.0);
    ((mean as f64 * factor).round() as u32).max(1)
}

/// A synthetic text of `words` words from the seeded word list.
pub fn synthetic_text(words: u32, seed: u64) -> String {
    let mut text = String::with_capacity(words as usize * 6);
    for w in 0..u64::from(words) {
        if w > 0 {
            text.push(' ');
        }
        text.push_str(WORDS[(mix(seed, w) % WORDS.len() as u64) as usize]);
    }
    text
}

impl Workload {
    /// Builds the prompt pool from the params (reading the dataset, if any).
    pub async fn new(
        params: &WorkloadParams,
        ctx: &BenchContext<'_>,
    ) -> Result<Workload, BenchError> {
        let bodies = match DatasetSpec::given(&params.dataset) {
            Some(spec) => {
                let ds = dataset::load(spec, &ctx.base_dir, &ctx.cache_dir).await?;
                if ds.rows.is_empty() {
                    return Err(BenchError::params(format!(
                        "dataset {} has no rows",
                        ds.name
                    )));
                }
                ds.rows
                    .iter()
                    .map(|row| ds.text(row, "prompt"))
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => (0..POOL as u64)
                .map(|b| {
                    let words = draw(
                        params.input_tokens,
                        params.length_spread,
                        mix(params.seed, b),
                    );
                    synthetic_text(words, mix(params.seed ^ 0x5EED, b))
                })
                .collect(),
        };
        Ok(Workload {
            bodies: Arc::new(bodies),
            params: params.clone(),
            sampling: ctx.sampling.clone(),
            salt: ctx.salt,
            prefix_salt: ctx.salt,
            primed: Arc::default(),
        })
    }

    /// Shared prefix `group`'s text, when prompts share prefixes.
    fn prefix(&self, group: u64) -> Option<String> {
        let shared = self.params.shared_prefix.as_ref()?;
        Some(synthetic_text(
            shared.prefix_tokens,
            mix(self.prefix_salt ^ 0x9F1C_5EED, group),
        ))
    }

    /// The priming requests (each shared prefix alone, one token asked) when they are
    /// still to be sent; none after the first call, or without `prime`.
    pub fn priming(&self) -> Vec<GenerationRequest> {
        let Some(shared) = self.params.shared_prefix.as_ref().filter(|s| s.prime) else {
            return Vec::new();
        };
        if self.primed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Vec::new();
        }
        (0..u64::from(shared.groups))
            .filter_map(|g| self.prefix(g))
            .map(|prompt| {
                let mut sampling = self.sampling.clone();
                sampling.max_tokens = Some(1);
                GenerationRequest {
                    endpoint: self.params.endpoint.into(),
                    prompt,
                    stream: true,
                    sampling,
                    ..GenerationRequest::default()
                }
            })
            .collect()
    }

    /// The share of prompt tokens a token-exact prefix cache serves when `requests`
    /// requests follow `primes` priming requests (those count as sent, and miss): a
    /// request hits its whole prefix unless it is the first of its group and the group was
    /// not primed. `None` without shared prefixes.
    pub fn expected_prefix_hit_rate(&self, requests: u64, primes: u64) -> Option<f64> {
        let shared = self.params.shared_prefix.as_ref()?;
        let prefix = f64::from(shared.prefix_tokens);
        // The rest: the salt-and-number word and the body.
        let prompt = prefix + 1.0 + f64::from(self.params.input_tokens);
        let cold = if shared.prime || primes > 0 {
            0
        } else {
            requests.min(u64::from(shared.groups))
        };
        let sent = requests as f64 * prompt + primes as f64 * prefix;
        (sent > 0.0).then(|| (requests - cold) as f64 * prefix / sent)
    }

    /// The same requests under another salt, for each part of a leg that sends them anew
    /// (a sweep's points), so no part's prompts are in the cache from another's.
    pub fn salted(&self, part: u64) -> Workload {
        Workload {
            salt: mix(self.salt, part),
            ..self.clone()
        }
    }

    /// Requested output tokens of request `i`.
    pub fn output_tokens(&self, i: u64) -> u32 {
        draw(
            self.params.output_tokens,
            self.params.length_spread,
            mix(!self.params.seed, i),
        )
    }

    /// Request `i`: a prefix unique to the leg and the request (so prefix caches serve no
    /// part of a prompt across requests, legs or runs) and a body.
    pub fn request(&self, i: u64) -> GenerationRequest {
        let body = &self.bodies[(i % self.bodies.len() as u64) as usize];
        let groups = self
            .params
            .shared_prefix
            .as_ref()
            .map_or(1, |s| u64::from(s.groups));
        let max_tokens = self.output_tokens(i);
        let mut sampling = self.sampling.clone();
        sampling.max_tokens = Some(max_tokens);
        sampling.ignore_eos = Some(true);
        GenerationRequest {
            endpoint: self.params.endpoint.into(),
            prompt: match self.prefix(i % groups) {
                Some(prefix) => format!("{prefix} {:08x}-{i}: {body}", self.salt as u32),
                None => format!("{:08x}-{i}: {body}", self.salt as u32),
            },
            stream: true,
            sampling,
            ..GenerationRequest::default()
        }
    }

    /// Hashes the load's `shape` (loop, concurrency or cap, extent, warmup/cooldown), the
    /// first `count` requests (prompt and length) and `offsets` into a short hex digest:
    /// equal digests mean the same load was sent.
    pub fn digest(
        &self,
        shape: &str,
        count: u64,
        offsets: Option<&[std::time::Duration]>,
    ) -> String {
        let mut h = Sha256::new();
        h.update(b"kitt-workload-v2");
        h.update((shape.len() as u64).to_le_bytes());
        h.update(shape.as_bytes());
        for body in self.bodies.iter() {
            h.update((body.len() as u64).to_le_bytes());
            h.update(body.as_bytes());
        }
        h.update(self.params.seed.to_le_bytes());
        for i in 0..count {
            h.update(self.output_tokens(i).to_le_bytes());
        }
        if let Some(offsets) = offsets {
            for o in offsets {
                h.update((o.as_nanos() as u64).to_le_bytes());
            }
        }
        h.update([self.params.endpoint as u8]);
        if let Some(shared) = &self.params.shared_prefix {
            h.update(b"shared-prefix");
            h.update(shared.groups.to_le_bytes());
            h.update(shared.prefix_tokens.to_le_bytes());
            h.update([u8::from(shared.prime)]);
        }
        let digest = h.finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_stay_in_the_spread_and_average_the_mean() {
        let draws: Vec<u32> = (0..10_000).map(|i| draw(100, 0.5, mix(3, i))).collect();
        assert!(draws.iter().all(|d| (50..=150).contains(d)));
        let mean = draws.iter().map(|&d| d as f64).sum::<f64>() / draws.len() as f64;
        assert!((mean - 100.0).abs() < 2.0, "{mean}");
        assert_eq!(draw(100, 0.0, 12345), 100);
    }

    fn salted(salt: u64) -> Workload {
        Workload {
            bodies: Arc::new(vec!["river road tree".into(), "paper table window".into()]),
            params: serde_json::from_value(serde_json::json!({})).unwrap(),
            sampling: Sampling::default(),
            salt,
            prefix_salt: salt,
            primed: Arc::default(),
        }
    }

    /// The first word of each of `n` prompts: where a prefix cache would match first.
    fn heads(w: &Workload, n: u64) -> std::collections::HashSet<String> {
        (0..n)
            .map(|i| w.request(i).prompt.split(' ').next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn legs_runs_and_sweep_points_share_no_prompt_prefix_but_a_salt_repeats_itself() {
        // Two legs (or runs): the same seed, so the same bodies, under different heads.
        let (a, b) = (salted(1), salted(2));
        assert!(heads(&a, 500).is_disjoint(&heads(&b, 500)));
        assert_eq!(heads(&a, 500).len(), 500, "every request's head is its own");
        let body = |w: &Workload, i| w.request(i).prompt.split_once(' ').unwrap().1.to_string();
        assert_eq!(body(&a, 7), body(&b, 7));
        // A sweep's points: each part under a salt of its own.
        let (p1, p2) = (a.salted(1), a.salted(2));
        assert!(heads(&p1, 500).is_disjoint(&heads(&p2, 500)));
        assert!(heads(&p1, 500).is_disjoint(&heads(&a, 500)));
        // The same salt sends the same prompts: a run stays reproducible.
        assert_eq!(salted(1).request(42).prompt, a.request(42).prompt);
        assert_eq!(a.salted(1).request(3).prompt, p1.request(3).prompt);
    }

    #[test]
    fn synthetic_text_has_the_asked_number_of_words() {
        let t = synthetic_text(50, 1);
        assert_eq!(t.split_whitespace().count(), 50);
        assert_eq!(t, synthetic_text(50, 1));
        assert_ne!(t, synthetic_text(50, 2));
    }
}
