//! `long_context`: time to first token as the prompt grows towards the engine's context.
//! Prompt lengths are hit without a tokenizer: two probes measure how the server counts the
//! synthetic words (its `usage.prompt_tokens`), and the word counts are scaled to match.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bench::stats::{median, slope};
use crate::bench::workload::{EndpointParam, synthetic_text};
use crate::bench::{BenchContext, BenchError, Outcome, params};
use crate::engine::generation::GenerationRequest;
use crate::registry::Direction;

/// Params of `long_context`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct LongContextParams {
    /// Prompt lengths in tokens; by default powers of two from 128 up to the context.
    #[serde(default)]
    #[schemars(length(min = 1, max = 64))]
    pub lengths: Option<Vec<u32>>,
    /// The engine's context in tokens; asked from the server (`/props`, `/v1/models`) when
    /// not given.
    #[serde(default)]
    #[schemars(range(min = 64))]
    pub context: Option<u32>,
    /// Requests per length (the median counts).
    #[serde(default = "default_repeats")]
    #[schemars(range(min = 1, max = 100))]
    pub requests_per_length: u32,
    /// Output tokens per request.
    #[serde(default = "default_output")]
    #[schemars(range(min = 1))]
    pub output_tokens: u32,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub endpoint: EndpointParam,
}

fn default_repeats() -> u32 {
    3
}
fn default_output() -> u32 {
    16
}

#[derive(Debug, Serialize)]
struct LengthPoint {
    target_tokens: u32,
    prompt_tokens: Option<u64>,
    ttft_ms: f64,
}

/// The context one request may use, as the server reports it: llama.cpp's `/props` n_ctx
/// (per slot), vLLM's and SGLang's `max_model_len` in `/v1/models`, TGI's `/info`
/// `max_total_tokens`, or the context Ollama loaded the model with (`/api/ps`).
async fn probe_context(ctx: &BenchContext<'_>) -> Option<u32> {
    let client = ctx.engine.client();
    let number = |v: Option<&Value>| {
        v.and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    if let Ok(props) = client.get_json("/props").await
        && let Some(n) = number(
            props
                .pointer("/default_generation_settings/n_ctx")
                .or_else(|| props.get("n_ctx")),
        )
    {
        return Some(n);
    }
    if let Ok(models) = client.get_json("/v1/models").await
        && let Some(n) = number(models.pointer("/data/0/max_model_len"))
    {
        return Some(n);
    }
    if let Ok(info) = client.get_json("/info").await
        && let Some(n) = number(info.get("max_total_tokens"))
    {
        return Some(n);
    }
    let running = client.get_json("/api/ps").await.ok()?;
    number(running.pointer("/models/0/context_length"))
}

/// Prompt tokens ≈ `per_word` × words + `overhead`, from the server's own counts.
#[derive(Debug, Clone, Copy, Serialize)]
struct Calibration {
    per_word: f64,
    overhead: f64,
    /// False when the server gave no prompt counts and one word is taken as one token.
    measured: bool,
}

impl Calibration {
    fn words_for(&self, tokens: u32) -> u32 {
        (((f64::from(tokens) - self.overhead) / self.per_word).floor() as u32).max(1)
    }
}

pub async fn execute(ctx: &BenchContext<'_>, params: &Value) -> Result<Outcome, BenchError> {
    let p: LongContextParams = params::parse(params)?;
    let request = |words: u32, salt: u64, max_tokens: u32| {
        let mut sampling = ctx.sampling.clone();
        sampling.max_tokens = Some(max_tokens);
        sampling.ignore_eos = Some(true);
        GenerationRequest {
            endpoint: p.endpoint.into(),
            prompt: synthetic_text(words, p.seed ^ salt ^ ctx.salt),
            stream: true,
            sampling,
            ..GenerationRequest::default()
        }
    };
    // Calibrate on two probe prompts.
    let mut counts = Vec::new();
    for (i, words) in [64u32, 192].into_iter().enumerate() {
        let r = ctx
            .engine
            .generate(&request(words, 0xCA1 + i as u64, 1))
            .await?;
        if let Some(n) = r.prompt_tokens {
            counts.push((f64::from(words), n as f64));
        }
    }
    let calibration = match (counts.len(), slope(&counts)) {
        (2, Some(per_word)) if per_word > 0.0 => Calibration {
            per_word,
            overhead: counts[0].1 - per_word * counts[0].0,
            measured: true,
        },
        _ => Calibration {
            per_word: 1.0,
            overhead: 0.0,
            measured: false,
        },
    };
    let context = match p.context {
        Some(c) => Some(c),
        None => probe_context(ctx).await,
    };
    let mut lengths = match (&p.lengths, context) {
        (Some(l), _) => l.clone(),
        (None, Some(c)) => {
            let limit = c.saturating_sub(p.output_tokens.saturating_add(8));
            let mut l: Vec<u32> = (7..=24)
                .map(|k| 1u32 << k)
                .take_while(|&n| n <= limit)
                .collect();
            if l.last().is_some_and(|&last| limit > last) {
                l.push(limit);
            }
            l
        }
        (None, None) => {
            return Err(BenchError::params(
                "the server did not say its context length; set `context` or `lengths`",
            ));
        }
    };
    lengths.sort_unstable();
    lengths.dedup();
    if lengths.is_empty() {
        return Err(BenchError::params(format!(
            "a context of {} tokens leaves no room for prompts",
            context.unwrap_or(0)
        )));
    }
    ctx.say(&format!("prompt lengths {lengths:?} tokens"));
    let mut outcome = Outcome::default();
    let mut points = Vec::new();
    for &target in &lengths {
        let words = calibration.words_for(target);
        let mut ttfts = Vec::new();
        let mut prompt_tokens = None;
        for rep in 0..p.requests_per_length {
            let salt = u64::from(target) << 8 | u64::from(rep);
            match ctx
                .engine
                .generate(&request(words, salt, p.output_tokens))
                .await
            {
                Ok(r) => {
                    prompt_tokens = r.prompt_tokens.or(prompt_tokens);
                    if let Some(t) = r.ttft {
                        ttfts.push(t.as_secs_f64() * 1e3);
                    }
                }
                Err(e) => outcome.errors.push(format!("{target} tokens: {e}")),
            }
        }
        if ttfts.is_empty() {
            outcome.errors.push(format!(
                "{target} tokens: no request succeeded, so it was not measured"
            ));
        }
        if let Some(ttft) = median(&ttfts) {
            outcome.set_dynamic(format!("ttft_ms_at_{target}"), ttft, "ms", Direction::Lower);
            points.push(LengthPoint {
                target_tokens: target,
                prompt_tokens,
                ttft_ms: ttft,
            });
        }
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        outcome.set("ttft_shortest_ms", first.ttft_ms);
        outcome.set("ttft_longest_ms", last.ttft_ms);
        outcome.set(
            "longest_prompt_tokens",
            last.prompt_tokens.unwrap_or(u64::from(last.target_tokens)) as f64,
        );
        let xy: Vec<(f64, f64)> = points
            .iter()
            .map(|pt| {
                let tokens = pt.prompt_tokens.unwrap_or(u64::from(pt.target_tokens));
                (tokens as f64 / 1000.0, pt.ttft_ms)
            })
            .collect();
        if let Some(s) = slope(&xy) {
            outcome.set("ttft_growth_ms_per_1k_tokens", s);
        }
    }
    if let Some(c) = context {
        outcome.outputs.insert("context".into(), c.into());
    }
    outcome.detail("calibration", calibration);
    outcome.detail("points", &points);
    outcome.passed = !points.is_empty();
    if points.is_empty() {
        outcome
            .errors
            .insert(0, "no prompt length was measured".into());
    }
    Ok(outcome)
}
