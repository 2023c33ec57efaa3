//! Quality benchmarks: items are asked (generatively, or scored by log-likelihood where the
//! engine supports it), answers extracted and scored, and accuracy reported with its
//! standard error and a record per item. Zero scored items is a failure, never a pass.

pub mod custom;
pub mod loglik;
pub mod scorers;
pub mod standard;

use futures_util::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use self::scorers::{Scorer, Verdict};
use super::stats::proportion;
use super::workload::EndpointParam;
use super::{BenchContext, Outcome};
use crate::engine::generation::GenerationRequest;

pub use standard::Standard;

/// One question, ready to ask.
#[derive(Debug, Clone)]
pub struct Item {
    /// Where it came from in the dataset (line or item number).
    pub line: usize,
    /// The full prompt for generative scoring.
    pub prompt: String,
    /// The expected answer (a number, a letter, a text).
    pub expected: String,
    /// Options, for choice scoring.
    pub choices: Vec<String>,
    /// The same item as context + candidate continuations, for log-likelihood scoring.
    pub loglik: Option<LoglikItem>,
}

/// A multiple-choice item for log-likelihood scoring.
#[derive(Debug, Clone)]
pub struct LoglikItem {
    pub context: String,
    pub continuations: Vec<String>,
    pub answer: usize,
    /// Compare log-likelihoods per character of continuation (`acc_norm`) instead of summed.
    pub per_char: bool,
}

/// How the items were scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// Log-likelihood where the engine supports it (probed), else generative.
    #[default]
    Auto,
    /// Generate an answer and extract it.
    Generative,
    /// Compare the log-likelihood of each option (`/v1/completions` with echo and logprobs).
    Loglikelihood,
}

/// The outcome of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Correct,
    Wrong,
    /// No answer could be extracted (counted as wrong).
    Unparsable,
    /// The engine failed on it (not scored).
    Errored,
}

/// One item's record: what was asked, answered, extracted and expected.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub line: usize,
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extracted: Option<String>,
    pub expected: String,
    pub correct: bool,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Which items are asked, and how many at once: shared by every quality benchmark.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SelectionParams {
    /// Score at most this many items (the first ones, or a sample with `sample`).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub limit: Option<u64>,
    /// Take a seeded random sample of `limit` items instead of the first ones.
    #[serde(default)]
    pub sample: bool,
    /// Seed of the sample (and of few-shot examples and option shuffling).
    #[serde(default)]
    pub seed: u64,
    /// Items asked at once.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: u32,
}

fn default_concurrency() -> u32 {
    4
}

impl SelectionParams {
    /// Applies `limit` and `sample` to a dataset.
    pub fn select(&self, ds: &mut super::dataset::Dataset) {
        ds.select(self.limit.map(|l| l as usize), self.sample, self.seed);
    }
}

/// How generative requests are sent.
#[derive(Debug, Clone)]
pub struct Asking {
    pub concurrency: usize,
    pub max_tokens: u32,
    pub endpoint: EndpointParam,
    /// Stop sequences used when the node's sampling sets none (e.g. `Question:` for gsm8k,
    /// so a model does not go on to invent the next question).
    pub stop: Vec<String>,
}

/// Asks every item and scores the responses, `concurrency` at a time, in item order.
pub async fn ask_all(
    ctx: &BenchContext<'_>,
    items: &[Item],
    scorer: &Scorer,
    asking: &Asking,
) -> Vec<Record> {
    let total = items.len();
    let mut done = 0usize;
    ctx.tally.set(0, Some(total as u64));
    let mut records = Vec::with_capacity(total);
    // Boxed up front: a closure returning the future would not be `Send` for every lifetime.
    let asks: Vec<Asked<'_>> = items
        .iter()
        .map(|item| Box::pin(ask_one(ctx, item, scorer, asking)) as Asked<'_>)
        .collect();
    let mut stream = futures_util::stream::iter(asks).buffered(asking.concurrency.max(1));
    while let Some(record) = stream.next().await {
        done += 1;
        ctx.tally.set(done as u64, None);
        if done % 10 == 0 || done == total {
            ctx.say(&format!("  {done}/{total} items"));
        }
        records.push(record);
    }
    records
}

impl Record {
    /// A record of an item not scored yet (errored until scored).
    pub fn new(line: usize, prompt: &str, expected: &str) -> Record {
        Record {
            line,
            prompt: prompt.to_string(),
            response: None,
            extracted: None,
            expected: expected.to_string(),
            correct: false,
            status: Status::Errored,
            error: None,
        }
    }
}

type Asked<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Record> + Send + 'a>>;

/// Asks one item and scores the answer.
async fn ask_one(ctx: &BenchContext<'_>, item: &Item, scorer: &Scorer, asking: &Asking) -> Record {
    let mut sampling = ctx.sampling.clone();
    sampling.max_tokens = Some(asking.max_tokens);
    sampling.temperature = sampling.temperature.or(Some(0.0));
    if sampling.stop.is_empty() {
        sampling.stop = asking.stop.clone();
    }
    let request = GenerationRequest {
        endpoint: asking.endpoint.into(),
        prompt: item.prompt.clone(),
        stream: true,
        sampling,
        ..GenerationRequest::default()
    };
    let answer = ctx.engine.generate(&request).await;
    score_one(item, answer.map(|r| r.text), scorer)
}

fn score_one(
    item: &Item,
    answer: Result<String, crate::engine::client::ClientError>,
    scorer: &Scorer,
) -> Record {
    let mut record = Record::new(item.line, &item.prompt, &item.expected);
    match answer {
        Err(e) => record.error = Some(e.to_string()),
        Ok(text) => {
            match scorer.score(&text, &item.expected, &item.choices) {
                Verdict::Scored { extracted, correct } => {
                    record.extracted = Some(extracted);
                    record.correct = correct;
                    record.status = if correct {
                        Status::Correct
                    } else {
                        Status::Wrong
                    };
                }
                Verdict::Unparsable => record.status = Status::Unparsable,
            }
            record.response = Some(text);
        }
    }
    record
}

/// Sets accuracy (over scored items; unparsable ones count as wrong), its standard error and
/// the item counts; fails when nothing was scored, more than 10 % of items errored, or
/// accuracy is under `threshold`.
pub fn report(outcome: &mut Outcome, records: Vec<Record>, method: &str, threshold: Option<f64>) {
    let count = |s: Status| records.iter().filter(|r| r.status == s).count() as u64;
    let (correct, wrong, unparsable, errored) = (
        count(Status::Correct),
        count(Status::Wrong),
        count(Status::Unparsable),
        count(Status::Errored),
    );
    let scored = correct + wrong + unparsable;
    let (accuracy, stderr) = proportion(correct, scored);
    outcome.set("accuracy", accuracy);
    outcome.set("accuracy_stderr", stderr);
    outcome.set("items", records.len() as f64);
    outcome.set("scored", scored as f64);
    outcome.set("correct", correct as f64);
    outcome.set("unparsable", unparsable as f64);
    outcome.set("errored", errored as f64);
    outcome.outputs.insert("scoring".into(), method.into());
    if let Some(first) = records.iter().find_map(|r| r.error.as_ref()) {
        outcome
            .errors
            .push(format!("{errored} items errored, e.g.: {first}"));
    }
    // Accuracy over a few survivors of many failures would not compare with anything.
    let too_many_errors = errored * 10 > records.len() as u64;
    outcome.passed = scored > 0 && !too_many_errors;
    if too_many_errors && scored > 0 {
        outcome.errors.insert(
            0,
            format!(
                "{errored} of {} items errored (more than 10 %): the accuracy of the rest is not comparable",
                records.len()
            ),
        );
    }
    if scored == 0 {
        outcome.errors.insert(
            0,
            format!(
                "no item was scored ({} items, {errored} errored): a benchmark that scored nothing fails",
                records.len()
            ),
        );
    }
    if let Some(t) = threshold
        && scored > 0
        && accuracy < t
    {
        outcome.passed = false;
        outcome.errors.push(format!(
            "accuracy {accuracy:.4} is below the pass threshold {t}"
        ));
    }
    outcome.detail("items", &records);
}

/// The metrics `report` sets, for the catalog: (name, unit, higher is better).
pub const METRICS: [(&str, &str, bool); 7] = [
    ("accuracy", "ratio", true),
    ("accuracy_stderr", "ratio", false),
    ("items", "count", true),
    ("scored", "count", true),
    ("correct", "count", true),
    ("unparsable", "count", false),
    ("errored", "count", false),
];
