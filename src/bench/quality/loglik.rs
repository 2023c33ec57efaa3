//! Log-likelihood scoring (the lm-evaluation-harness method): each option's continuation is
//! sent after the context to `/v1/completions` with `echo` and `logprobs`, and the option
//! whose tokens the model finds most likely wins. Available only where a probe shows the
//! engine returns prompt log-probabilities.

use serde_json::{Value, json};

use super::{Item, Record, Status};
use crate::bench::BenchContext;
use crate::engine::client::ClientError;

/// Holds a non-ASCII character, so a server counting offsets in bytes rather than characters
/// shows it: the probe checks that the last token's offset is a character offset.
const PROBE: &str = "Zürich is a city in Switzerland";

/// Most characters a beginning-of-sequence token's text may add before the prompt
/// (`<|begin_of_text|>` has 17).
const MAX_BOS_CHARS: usize = 64;

/// Whether the engine returns per-token log-probabilities of an echoed prompt.
pub async fn supported(ctx: &BenchContext<'_>) -> Result<(), String> {
    let answer = score_request(ctx, PROBE)
        .await
        .map_err(|e| format!("the probe request failed: {e}"))?;
    let chars = PROBE.chars().count();
    let (logprobs, offsets) = token_logprobs(&answer, chars)?;
    if logprobs.len() < 2 || offsets.len() != logprobs.len() {
        return Err("the answer does not score the echoed prompt".into());
    }
    if offsets.iter().any(|&o| o > chars) || offsets.windows(2).any(|w| w[0] > w[1]) {
        return Err("its `text_offset`s are not character offsets into the prompt".into());
    }
    Ok(())
}

async fn score_request(ctx: &BenchContext<'_>, prompt: &str) -> Result<Value, ClientError> {
    let body = json!({"prompt": prompt, "max_tokens": 1, "echo": true, "logprobs": 1,
                      "temperature": 0, "stream": false});
    ctx.engine
        .client()
        .post_json("/v1/completions", &body)
        .await
}

/// The `(token_logprobs, text_offset)` of the prompt's tokens in the first choice, offsets in
/// characters of the prompt (`prompt_chars` long).
///
/// A server counts `text_offset` over the texts of its tokens. When the tokenizer adds a
/// beginning-of-sequence token (vLLM with Llama 3's `<|begin_of_text|>`, Mistral's `<s>`),
/// its text comes first, so every offset is shifted by the characters the prompt does not
/// have; the shift is the prompt's length as the server counts it (its tokens' texts) minus
/// its real length. Generated tokens after the prompt are left out.
fn token_logprobs(
    answer: &Value,
    prompt_chars: usize,
) -> Result<(Vec<Option<f64>>, Vec<usize>), String> {
    let (mut logprobs, mut offsets) = raw_logprobs(answer)?;
    let lp = answer
        .pointer("/choices/0/logprobs")
        .unwrap_or(&Value::Null);
    let texts: Option<Vec<&str>> = lp
        .get("tokens")
        .and_then(Value::as_array)
        .and_then(|t| t.iter().map(Value::as_str).collect());
    // The prompt's tokens: as many as the usage says, else all but the generated ones.
    let total = offsets.len();
    let usage = |field: &str| {
        answer
            .pointer(&format!("/usage/{field}"))
            .and_then(Value::as_u64)
    };
    let prompt_tokens = match (usage("prompt_tokens"), usage("completion_tokens")) {
        (Some(n), _) if (n as usize) <= total => n as usize,
        (_, Some(n)) => total.saturating_sub(n as usize),
        _ => total,
    };
    logprobs.truncate(prompt_tokens);
    offsets.truncate(prompt_tokens);
    if let (Some(texts), Some(&last)) = (texts, offsets.last())
        && let Some(last_text) = texts.get(prompt_tokens.saturating_sub(1))
    {
        let server_chars = last + last_text.chars().count();
        let shift = server_chars.saturating_sub(prompt_chars);
        if shift > MAX_BOS_CHARS {
            return Err(format!(
                "its prompt is {shift} characters longer than the one sent; its offsets cannot be mapped back"
            ));
        }
        for o in &mut offsets {
            *o = o.saturating_sub(shift);
        }
    }
    Ok((logprobs, offsets))
}

/// The `(token_logprobs, text_offset)` arrays of the first choice, as the server sent them.
fn raw_logprobs(answer: &Value) -> Result<(Vec<Option<f64>>, Vec<usize>), String> {
    let lp = answer
        .pointer("/choices/0/logprobs")
        .filter(|v| !v.is_null())
        .ok_or("the answer has no `logprobs`")?;
    let logprobs = lp
        .get("token_logprobs")
        .and_then(Value::as_array)
        .ok_or("`logprobs.token_logprobs` is missing")?
        .iter()
        .map(Value::as_f64)
        .collect();
    let offsets = lp
        .get("text_offset")
        .and_then(Value::as_array)
        .ok_or("`logprobs.text_offset` is missing")?
        .iter()
        .map(|v| v.as_u64().map(|n| n as usize))
        .collect::<Option<Vec<_>>>()
        .ok_or("`logprobs.text_offset` holds something that is not an offset")?;
    Ok((logprobs, offsets))
}

/// Sums the log-probabilities of the tokens overlapping the characters `[from, to)`
/// (character offsets, as OpenAI's `text_offset`); a token straddling `from` counts.
pub fn continuation_logprob(
    logprobs: &[Option<f64>],
    offsets: &[usize],
    from: usize,
    to: usize,
) -> Option<f64> {
    let mut sum = 0.0;
    let mut any = false;
    for (i, (lp, &start)) in logprobs.iter().zip(offsets).enumerate() {
        let end = offsets.get(i + 1).copied().unwrap_or(usize::MAX);
        if start < to && end > from {
            sum += (*lp)?;
            any = true;
        }
    }
    any.then_some(sum)
}

/// Scores one item: the log-likelihood of every continuation, the best one picked.
async fn score_item(ctx: &BenchContext<'_>, item: &Item) -> Record {
    let ll = item.loglik.as_ref().expect("loglik items only");
    let mut record = Record::new(item.line, &ll.context, &item.expected);
    let mut scores = Vec::with_capacity(ll.continuations.len());
    for continuation in &ll.continuations {
        let full = format!("{}{}", ll.context, continuation);
        let answer = match score_request(ctx, &full).await {
            Ok(a) => a,
            Err(e) => {
                record.error = Some(e.to_string());
                return record;
            }
        };
        let full_chars = full.chars().count();
        let score = token_logprobs(&answer, full_chars)
            .ok()
            .and_then(|(lp, off)| {
                continuation_logprob(&lp, &off, ll.context.chars().count(), full_chars)
            });
        let Some(score) = score else {
            record.status = Status::Unparsable;
            record.error = Some("the answer did not score the continuation's tokens".into());
            return record;
        };
        scores.push(if ll.per_char {
            score / continuation.chars().count().max(1) as f64
        } else {
            score
        });
    }
    // The first of equal scores wins, as in lm-evaluation-harness's argmax.
    let best = scores
        .iter()
        .enumerate()
        .fold(None::<(usize, f64)>, |best, (i, &s)| match best {
            Some((_, b)) if b >= s => best,
            _ => Some((i, s)),
        })
        .map(|(i, _)| i);
    record.response = Some(
        scores
            .iter()
            .map(|s| format!("{s:.4}"))
            .collect::<Vec<_>>()
            .join(" "),
    );
    if let Some(best) = best {
        record.extracted = Some(super::scorers::letter(best).to_string());
        record.correct = best == ll.answer;
        record.status = if record.correct {
            Status::Correct
        } else {
            Status::Wrong
        };
    }
    record
}

/// Scores every item by log-likelihood, `concurrency` items at a time.
pub async fn score_all(ctx: &BenchContext<'_>, items: &[Item], concurrency: usize) -> Vec<Record> {
    use futures_util::StreamExt;
    type Scored<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Record> + Send + 'a>>;
    let scores: Vec<Scored<'_>> = items
        .iter()
        .map(|item| Box::pin(score_item(ctx, item)) as Scored<'_>)
        .collect();
    futures_util::stream::iter(scores)
        .buffered(concurrency.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bos_token_and_a_generated_token_do_not_shift_the_scores() {
        // vLLM with a BOS-adding tokenizer: "<s>" first (no log-probability), every offset
        // shifted by its 3 characters, and the one generated token after the prompt.
        let answer = json!({"choices": [{"logprobs": {
            "tokens": ["<s>", "Q:", " sky?", " blue", " and"],
            "token_logprobs": [null, -1.0, -2.0, -0.5, -9.0],
            "text_offset": [0, 3, 5, 10, 15]}}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 1}});
        let prompt = "Q: sky? blue";
        let (lp, off) = token_logprobs(&answer, prompt.chars().count()).unwrap();
        assert_eq!(off, vec![0, 0, 2, 7]);
        assert_eq!(continuation_logprob(&lp, &off, 7, 12), Some(-0.5));
        // Without a BOS nothing moves.
        let plain = json!({"choices": [{"logprobs": {
            "tokens": ["Q:", " sky?", " blue"], "token_logprobs": [null, -2.0, -0.5],
            "text_offset": [0, 2, 7]}}]});
        assert_eq!(token_logprobs(&plain, 12).unwrap().1, vec![0, 2, 7]);
    }

    #[test]
    fn only_tokens_of_the_continuation_count() {
        // "Q: sky? A:" + " blue" → tokens at offsets 0, 2, 7, 10(" blue")
        let lp = [None, Some(-1.0), Some(-2.0), Some(-0.5)];
        let off = [0, 2, 7, 10];
        assert_eq!(continuation_logprob(&lp, &off, 10, 15), Some(-0.5));
        assert_eq!(continuation_logprob(&lp, &off, 2, 15), Some(-3.5));
        assert_eq!(
            continuation_logprob(&lp, &off, 15, 20),
            Some(-0.5),
            "last token runs on"
        );
        // The first token has no log-probability: a span including it cannot be scored.
        assert_eq!(continuation_logprob(&lp, &off, 0, 15), None);
        // A token straddling the boundary (7..10 over from = 8) counts.
        assert_eq!(continuation_logprob(&lp, &off, 8, 15), Some(-2.5));
    }
}
