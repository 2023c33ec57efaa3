//! Recorded request traces for replay — Mooncake's JSONL (`timestamp` in ms, `input_length`,
//! `output_length`, `hash_ids`) and BurstGPT's CSV (`Timestamp` in s, `Request tokens`,
//! `Response tokens`) — read whole and checked before anything is sent, and the requests
//! that reproduce them: a hash id stands for one block of prompt text, so requests sharing
//! hash ids share those blocks, as in the recorded traffic.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::dataset::{self, Format, Row};
use super::loadgen::Requests;
use super::schedule::MAX_SENDS;
use super::workload::synthetic_text;
use crate::engine::generation::{Endpoint, GenerationRequest};
use crate::seed::mix;
use crate::suite::model::Sampling;

/// Longest prompt or answer one trace line may ask for, in tokens.
pub const MAX_REQUEST_TOKENS: u64 = 1_000_000;
/// Most hash ids one trace line may hold.
pub const MAX_HASH_IDS: usize = 10_000;

/// Which recording a trace is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TraceFormat {
    /// Mooncake's JSONL: `timestamp` (ms), `input_length`, `output_length`, `hash_ids`.
    Mooncake,
    /// BurstGPT's CSV: `Timestamp` (s), `Request tokens`, `Response tokens`.
    Burstgpt,
}

/// One recorded request.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEntry {
    /// Its send time after the trace's first request.
    pub at: Duration,
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// The prompt's blocks, in order (Mooncake); empty when the trace has none.
    pub hash_ids: Vec<u64>,
}

/// A trace, read and checked.
#[derive(Debug, Clone)]
pub struct Trace {
    pub name: String,
    pub entries: Vec<TraceEntry>,
    /// Rows left out: BurstGPT's failed requests (0 response tokens) and empty prompts.
    pub skipped: u64,
}

/// Why a trace cannot be replayed.
#[derive(Debug, thiserror::Error)]
#[error("trace {name}: {message}")]
pub struct TraceError {
    pub name: String,
    pub message: String,
}

impl TraceFormat {
    /// The format a file's extension says (`.jsonl` Mooncake, `.csv` BurstGPT).
    pub fn of(path: &Path) -> Option<TraceFormat> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl" | "ndjson") => Some(TraceFormat::Mooncake),
            Some("csv") => Some(TraceFormat::Burstgpt),
            _ => None,
        }
    }
}

/// Reads a whole trace (at most [`dataset::MAX_DATASET_BYTES`], [`MAX_SENDS`] requests); each
/// problem names its line.
pub fn read(
    path: &Path,
    format: TraceFormat,
    max_requests: Option<u64>,
) -> Result<Trace, TraceError> {
    let name = path.display().to_string();
    let fail = |message: String| TraceError {
        name: name.clone(),
        message,
    };
    let rows = dataset::read_file(
        path,
        Some(match format {
            TraceFormat::Mooncake => Format::Jsonl,
            TraceFormat::Burstgpt => Format::Csv,
        }),
    )
    .map_err(|e| fail(e.message))?;
    let limit = max_requests.map_or(MAX_SENDS, |n| (n as usize).min(MAX_SENDS));
    let mut entries = Vec::new();
    let mut skipped = 0u64;
    let mut first: Option<f64> = None;
    let mut previous = f64::NEG_INFINITY;
    for row in &rows {
        if entries.len() == limit {
            break;
        }
        let line = |message: String| fail(format!("line {}: {message}", row.line));
        let parsed = match format {
            TraceFormat::Mooncake => mooncake(row),
            TraceFormat::Burstgpt => burstgpt(row),
        }
        .map_err(line)?;
        let Some((seconds, input, output, hash_ids)) = parsed else {
            skipped += 1;
            continue;
        };
        if seconds < previous {
            return Err(line(format!(
                "its time {seconds} s is before the previous request's {previous} s; a trace must be in time order"
            )));
        }
        previous = seconds;
        let start = *first.get_or_insert(seconds);
        entries.push(TraceEntry {
            at: Duration::from_secs_f64(seconds - start),
            input_tokens: input,
            output_tokens: output,
            hash_ids,
        });
    }
    if entries.is_empty() {
        return Err(fail("it holds no request to replay".into()));
    }
    if rows.len() > entries.len() + skipped as usize && max_requests.is_none() {
        return Err(fail(format!(
            "it holds more than {MAX_SENDS} requests; replay a part with `max_requests`"
        )));
    }
    Ok(Trace {
        name,
        entries,
        skipped,
    })
}

/// A recorded request: (send time in s, prompt tokens, answer tokens, hash ids), or `None`
/// for a row that records no request to send.
type Parsed = Option<(f64, u32, u32, Vec<u64>)>;

/// A token count of at most [`MAX_REQUEST_TOKENS`].
fn tokens(value: Option<u64>, field: &str) -> Result<u32, String> {
    match value {
        Some(n) if n <= MAX_REQUEST_TOKENS => Ok(n as u32),
        Some(n) => Err(format!(
            "`{field}` is {n}, over the {MAX_REQUEST_TOKENS} one request may ask for"
        )),
        None => Err(format!(
            "`{field}` must be a whole number of tokens, 0 or more"
        )),
    }
}

/// A time of at least 0 (and finite).
fn time(value: Option<f64>, field: &str) -> Result<f64, String> {
    match value {
        Some(t) if t.is_finite() && t >= 0.0 => Ok(t),
        _ => Err(format!("`{field}` must be a time of 0 or more")),
    }
}

fn mooncake(row: &Row) -> Result<Parsed, String> {
    let v = &row.value;
    let field = |name: &str| {
        v.get(name).ok_or_else(|| {
            format!(
                "no `{name}` (a Mooncake line has timestamp, input_length, output_length, hash_ids)"
            )
        })
    };
    let ms = time(field("timestamp")?.as_f64(), "timestamp")?;
    let input = tokens(field("input_length")?.as_u64(), "input_length")?;
    let output = tokens(field("output_length")?.as_u64(), "output_length")?;
    let hash_ids = match v.get("hash_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) if ids.len() <= MAX_HASH_IDS => ids
            .iter()
            .map(|id| {
                id.as_u64()
                    .ok_or_else(|| format!("`hash_ids` holds {id}, not a whole number"))
            })
            .collect::<Result<_, _>>()?,
        Some(Value::Array(ids)) => {
            return Err(format!(
                "`hash_ids` holds {} ids, over the {MAX_HASH_IDS} one line may",
                ids.len()
            ));
        }
        Some(other) => return Err(format!("`hash_ids` must be a list, not {other}")),
    };
    if input == 0 {
        return Err("`input_length` is 0: a request needs a prompt".into());
    }
    Ok(Some((ms / 1000.0, input, output.max(1), hash_ids)))
}

fn burstgpt(row: &Row) -> Result<Parsed, String> {
    let v = &row.value;
    let text = |name: &str| {
        v.get(name).and_then(Value::as_str).ok_or_else(|| {
            format!("no `{name}` column (BurstGPT's are Timestamp, Model, Request tokens, Response tokens, Total tokens, Log Type)")
        })
    };
    let seconds = time(text("Timestamp")?.trim().parse().ok(), "Timestamp")?;
    let input = tokens(
        text("Request tokens")?.trim().parse().ok(),
        "Request tokens",
    )?;
    let output = tokens(
        text("Response tokens")?.trim().parse().ok(),
        "Response tokens",
    )?;
    // BurstGPT records a failed request with no response tokens: nothing to replay.
    if input == 0 || output == 0 {
        return Ok(None);
    }
    Ok(Some((seconds, input, output, Vec::new())))
}

/// The requests that replay a trace.
pub struct TraceRequests<'a> {
    pub trace: &'a Trace,
    /// Words of prompt text each hash id stands for.
    pub block_tokens: u32,
    /// The leg's salt: block texts and unique tails differ across legs and runs.
    pub salt: u64,
    pub endpoint: Endpoint,
    pub sampling: Sampling,
}

impl TraceRequests<'_> {
    /// Request `i`'s prompt: its hash ids' blocks, cut to its length, then (when they fall
    /// short) a head of the salt and its number and words of its own.
    pub fn prompt(&self, i: u64) -> String {
        let entry = &self.trace.entries[i as usize];
        let want = entry.input_tokens;
        let mut words = 0u32;
        let mut text = String::new();
        for id in &entry.hash_ids {
            if words == want {
                break;
            }
            let n = self.block_tokens.min(want - words);
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&synthetic_text(n, mix(self.salt ^ 0xB10C, *id)));
            words += n;
        }
        if words < want {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&format!("{:08x}-{i}:", self.salt as u32));
            if want - words > 1 {
                text.push(' ');
                text.push_str(&synthetic_text(
                    want - words - 1,
                    mix(self.salt ^ 0x7ACE, i),
                ));
            }
        }
        text
    }

    /// The share of prompt tokens a prefix cache of `block_tokens` blocks serves: a block
    /// hits when an earlier request had the same hash ids up to it as whole blocks. `None`
    /// when the trace has no hash ids.
    pub fn expected_prefix_hit_rate(&self) -> Option<f64> {
        if self.trace.entries.iter().all(|e| e.hash_ids.is_empty()) {
            return None;
        }
        let block = u64::from(self.block_tokens);
        let mut seen: HashSet<u64> = HashSet::new();
        let (mut hit, mut sent) = (0u64, 0u64);
        for e in &self.trace.entries {
            sent += u64::from(e.input_tokens);
            let whole = (u64::from(e.input_tokens) / block) as usize;
            let mut chain = 0u64;
            let mut leading = true;
            for (j, id) in e.hash_ids.iter().take(whole).enumerate() {
                chain = mix(chain, *id ^ (j as u64).rotate_left(32));
                if leading && seen.contains(&chain) {
                    hit += block;
                } else {
                    leading = false;
                }
                seen.insert(chain);
            }
        }
        (sent > 0).then(|| hit as f64 / sent as f64)
    }

    /// A digest of what the replay sends (lengths, blocks, times, block size): equal digests
    /// mean the same load.
    pub fn digest(&self, time_scale: f64) -> String {
        let mut h = Sha256::new();
        h.update(b"kitt-trace-v1");
        h.update(self.block_tokens.to_le_bytes());
        h.update(time_scale.to_le_bytes());
        for e in &self.trace.entries {
            h.update((e.at.as_nanos() as u64).to_le_bytes());
            h.update(e.input_tokens.to_le_bytes());
            h.update(e.output_tokens.to_le_bytes());
            h.update((e.hash_ids.len() as u64).to_le_bytes());
            for id in &e.hash_ids {
                h.update(id.to_le_bytes());
            }
        }
        h.finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl Requests for TraceRequests<'_> {
    fn request(&self, i: u64) -> GenerationRequest {
        let mut sampling = self.sampling.clone();
        sampling.max_tokens = Some(self.trace.entries[i as usize].output_tokens);
        sampling.ignore_eos = Some(true);
        GenerationRequest {
            endpoint: self.endpoint,
            prompt: self.prompt(i),
            stream: true,
            sampling,
            ..GenerationRequest::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str, ext: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("trace.{ext}"));
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn requests(trace: &Trace, block_tokens: u32) -> TraceRequests<'_> {
        TraceRequests {
            trace,
            block_tokens,
            salt: 7,
            endpoint: Endpoint::Completions,
            sampling: Sampling::default(),
        }
    }

    #[test]
    fn mooncake_lines_become_timed_requests_whose_shared_hash_ids_share_text() {
        let (_d, path) = write(
            "{\"timestamp\": 1000, \"input_length\": 10, \"output_length\": 3, \"hash_ids\": [1, 2, 3]}\n\
             {\"timestamp\": 1500, \"input_length\": 6, \"output_length\": 2, \"hash_ids\": [1, 9]}\n\
             {\"timestamp\": 1500, \"input_length\": 5, \"output_length\": 1}\n",
            "jsonl",
        );
        let trace = read(&path, TraceFormat::Mooncake, None).unwrap();
        let at: Vec<_> = trace.entries.iter().map(|e| e.at).collect();
        assert_eq!(
            at,
            [
                Duration::ZERO,
                Duration::from_millis(500),
                Duration::from_millis(500)
            ]
        );
        let r = requests(&trace, 4);
        let prompts: Vec<String> = (0..3).map(|i| r.prompt(i)).collect();
        for (p, e) in prompts.iter().zip(&trace.entries) {
            assert_eq!(p.split_whitespace().count(), e.input_tokens as usize, "{p}");
        }
        // Hash id 1's block is the same text in both; the rest differs.
        let words = |p: &str| p.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(words(&prompts[0])[..4], words(&prompts[1])[..4]);
        assert_ne!(words(&prompts[0])[4..6], words(&prompts[1])[4..6]);
        // No hash ids: the salted head and words of its own.
        assert!(prompts[2].starts_with("00000007-2:"), "{}", prompts[2]);
        // Of 21 prompt tokens, the second request's first block (4) comes from the cache.
        assert_eq!(r.expected_prefix_hit_rate(), Some(4.0 / 21.0));
        assert_eq!(r.request(0).sampling.max_tokens, Some(3));
        assert_eq!(r.digest(1.0), requests(&trace, 4).digest(1.0));
        assert_ne!(r.digest(1.0), r.digest(0.5));
    }

    #[test]
    fn burstgpt_rows_skip_failed_requests() {
        let (_d, path) = write(
            "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
             5,ChatGPT,472,18,490,Conversation log\n\
             6.5,ChatGPT,1087,0,1087,Conversation log\n\
             8,GPT-4,20,30,50,API log\n",
            "csv",
        );
        assert_eq!(TraceFormat::of(&path), Some(TraceFormat::Burstgpt));
        let trace = read(&path, TraceFormat::Burstgpt, None).unwrap();
        assert_eq!(trace.skipped, 1);
        assert_eq!(trace.entries.len(), 2);
        assert_eq!(trace.entries[1].at, Duration::from_secs(3));
        assert_eq!(trace.entries[1].input_tokens, 20);
        assert_eq!(requests(&trace, 512).expected_prefix_hit_rate(), None);
    }

    #[test]
    fn bad_traces_are_refused_at_their_line() {
        let cases = [
            (
                "{\"timestamp\": 5, \"input_length\": 3}\n",
                "line 1: no `output_length`",
            ),
            (
                "{\"timestamp\": 5, \"input_length\": 3, \"output_length\": 1}\n{\"timestamp\": 4, \"input_length\": 3, \"output_length\": 1}\n",
                "line 2: its time 0.004 s is before",
            ),
            (
                "{\"timestamp\": -1, \"input_length\": 3, \"output_length\": 1}\n",
                "`timestamp` must be",
            ),
            (
                "{\"timestamp\": 1, \"input_length\": 3.5, \"output_length\": 1}\n",
                "`input_length` must be",
            ),
            (
                "{\"timestamp\": 1, \"input_length\": 3, \"output_length\": 1, \"hash_ids\": [\"a\"]}\n",
                "not a whole number",
            ),
            (
                "{\"timestamp\": 1, \"input_length\": 9000000, \"output_length\": 1}\n",
                "over the 1000000",
            ),
            ("not json\n", "line 1: not JSON"),
            ("", "no request to replay"),
        ];
        for (text, want) in cases {
            let (_d, path) = write(text, "jsonl");
            let e = read(&path, TraceFormat::Mooncake, None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(e.starts_with("trace "), "{e}");
        }
    }

    #[test]
    fn max_requests_replays_the_start_of_a_trace() {
        let line = "{\"timestamp\": 1, \"input_length\": 3, \"output_length\": 1}\n";
        let (_d, path) = write(&line.repeat(10), "jsonl");
        let trace = read(&path, TraceFormat::Mooncake, Some(4)).unwrap();
        assert_eq!(trace.entries.len(), 4);
    }
}
