//! The standard quality benchmarks — `gsm8k`, `mmlu`, `hellaswag`, `truthfulqa` (mc1) —
//! their datasets, prompt formats and answer extraction.
//!
//! Prompts (few-shot examples first, each followed by its answer):
//! - gsm8k: `Question: …\nAnswer:`; the answer is the number after `####`, else the last
//!   number in the response. Calculator annotations `<<…>>` are removed from examples.
//! - mmlu: the question, options `A. …`, `Answer:`; the answer is a letter.
//! - hellaswag: `activity: context`, the endings as options; the answer is a letter.
//! - truthfulqa: `Q: …`, the mc1 options shuffled with the seed (the true one is first in
//!   the data); the answer is a letter.
//!
//! Few-shot examples are drawn with the seed from the same dataset, never the item itself.

use std::sync::LazyLock;

use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::scorers::{Scorer, letter, parse_number};
use super::{Asking, Item, LoglikItem, Scoring, SelectionParams, ask_all, loglik, report};
use crate::bench::dataset::{self, Dataset, DatasetSource, DatasetSpec, Row};
use crate::bench::workload::EndpointParam;
use crate::bench::{BenchContext, BenchError, Outcome, params};
use crate::seed::mix;

/// Which standard benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standard {
    Gsm8k,
    Mmlu,
    Hellaswag,
    TruthfulQa,
}

/// Params of the standard quality benchmarks.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct StandardParams {
    #[serde(flatten)]
    pub selection: SelectionParams,
    /// Examples before each question (default: 5 for gsm8k, 0 for the others).
    #[serde(default)]
    #[schemars(range(max = 25))]
    pub few_shot: Option<u32>,
    /// Items from a local file or another Hugging Face dataset instead of the published set
    /// (an empty path means the published set).
    #[serde(default)]
    pub dataset: Option<DatasetSpec>,
    /// How answers are scored.
    #[serde(default)]
    pub scoring: Scoring,
    /// Tokens a generated answer may take (default: 256 for gsm8k, 32 for the others).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u32>,
    /// The API generative requests go to.
    #[serde(default)]
    pub endpoint: EndpointParam,
    /// mmlu only: keep these subjects.
    #[serde(default)]
    pub subjects: Option<Vec<String>>,
}

impl Standard {
    pub fn name(self) -> &'static str {
        match self {
            Standard::Gsm8k => "gsm8k",
            Standard::Mmlu => "mmlu",
            Standard::Hellaswag => "hellaswag",
            Standard::TruthfulQa => "truthfulqa",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Standard::Gsm8k => "Grade-school math word problems, scored on the final number",
            Standard::Mmlu => "Massive multitask multiple choice, scored on the answer letter",
            Standard::Hellaswag => "Commonsense sentence completion, four endings",
            Standard::TruthfulQa => "TruthfulQA mc1: the one true answer among misconceptions",
        }
    }

    /// The published set on Hugging Face.
    fn default_dataset(self) -> DatasetSource {
        let (hf, config, split) = match self {
            Standard::Gsm8k => ("openai/gsm8k", "main", "test"),
            Standard::Mmlu => ("cais/mmlu", "all", "test"),
            Standard::Hellaswag => ("Rowan/hellaswag", "default", "validation"),
            Standard::TruthfulQa => ("truthfulqa/truthful_qa", "multiple_choice", "validation"),
        };
        DatasetSource {
            hf: Some(hf.into()),
            config: Some(config.into()),
            split: Some(split.into()),
            ..DatasetSource::default()
        }
    }

    /// Field mappings that hold unless the dataset says otherwise.
    fn default_fields(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Standard::TruthfulQa => &[
                ("choices", "mc1_targets.choices"),
                ("labels", "mc1_targets.labels"),
            ],
            _ => &[],
        }
    }

    fn default_few_shot(self) -> u32 {
        match self {
            Standard::Gsm8k => 5,
            _ => 0,
        }
    }

    fn default_max_tokens(self) -> u32 {
        match self {
            Standard::Gsm8k => 256,
            _ => 32,
        }
    }

    fn scorer(self) -> Scorer {
        match self {
            Standard::Gsm8k => Scorer::Numeric {
                tolerance: 1e-6,
                relative: false,
            },
            _ => Scorer::Choice,
        }
    }

    /// The instruction that heads a generative prompt.
    fn instruction(self, subject: &str) -> String {
        match self {
            Standard::Gsm8k => "Solve the last question step by step. End with the final number after '####', like '#### 42'.".into(),
            Standard::Mmlu => {
                let about = if subject.is_empty() {
                    String::new()
                } else {
                    format!(" about {}", subject.replace('_', " "))
                };
                format!(
                    "The following are multiple choice questions{about}. Answer the last one with the letter of the correct option."
                )
            }
            Standard::Hellaswag => {
                "Pick the most plausible ending. Answer with the letter of the ending.".into()
            }
            Standard::TruthfulQa => {
                "Pick the one true answer. Answer with the letter of the option.".into()
            }
        }
    }
}

/// One dataset row, read into the parts every prompt format needs.
#[derive(Debug, Clone)]
struct Parsed {
    line: usize,
    subject: String,
    /// Question text without options.
    question: String,
    /// Options in presentation order (empty for gsm8k).
    choices: Vec<String>,
    /// gsm8k: the worked solution for examples.
    solution: String,
    /// The expected answer: a number (gsm8k) or a letter.
    expected: String,
    /// Index of the correct option in `choices`.
    answer_index: usize,
    /// Log-likelihood context and continuations.
    loglik: Option<LoglikItem>,
}

static CALC: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<<[^>]*>>").expect("static regex"));
static BRACKETS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[[^\]]*\]").expect("static regex"));

/// lm-evaluation-harness's HellaSwag text clean-up.
fn clean_hellaswag(text: &str) -> String {
    let t = text.trim().replace(" [title]", ". ");
    let t = BRACKETS.replace_all(&t, "");
    t.replace("  ", " ").trim().to_string()
}

fn bad_answer(ds: &Dataset, row: &Row, what: String) -> BenchError {
    BenchError::Dataset(dataset::DatasetError {
        name: ds.name.clone(),
        message: format!("row {}: {what}", row.line),
    })
}

/// The index of a correct option written as an index, a letter or a numeric string.
fn answer_index(ds: &Dataset, row: &Row, value: &Value, n: usize) -> Result<usize, BenchError> {
    let index = match value {
        Value::Number(x) => x.as_u64().map(|i| i as usize),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<usize>().ok().or_else(|| {
                (s.len() == 1)
                    .then(|| s.chars().next())
                    .flatten()
                    .filter(char::is_ascii_uppercase)
                    .map(|c| (c as u8 - b'A') as usize)
            })
        }
        _ => None,
    };
    index.filter(|i| *i < n).ok_or_else(|| {
        bad_answer(
            ds,
            row,
            format!("the answer {value} is not an option index or letter among {n} options"),
        )
    })
}

fn parse_row(standard: Standard, ds: &Dataset, row: &Row, seed: u64) -> Result<Parsed, BenchError> {
    let mut p = Parsed {
        line: row.line,
        subject: String::new(),
        question: String::new(),
        choices: Vec::new(),
        solution: String::new(),
        expected: String::new(),
        answer_index: 0,
        loglik: None,
    };
    match standard {
        Standard::Gsm8k => {
            p.question = ds.text(row, "question")?;
            let answer = ds.text(row, "answer")?;
            let number = match answer.rsplit_once("####") {
                Some((_, n)) => parse_number(n),
                None => parse_number(&answer),
            };
            let number = number.ok_or_else(|| {
                bad_answer(
                    ds,
                    row,
                    format!("the answer `{}` has no number after `####`", answer.trim()),
                )
            })?;
            p.expected = if number.fract() == 0.0 {
                format!("{}", number as i64)
            } else {
                number.to_string()
            };
            p.solution = CALC.replace_all(&answer, "").to_string();
        }
        Standard::Mmlu => {
            p.question = ds.text(row, "question")?;
            p.choices = ds.list(row, "choices")?;
            p.subject = dataset::lookup(&row.value, ds.field_name("subject"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            p.answer_index = answer_index(ds, row, ds.field(row, "answer")?, p.choices.len())?;
            let context = format!("{}\nAnswer:", options_block(&p.question, &p.choices));
            p.loglik = Some(LoglikItem {
                context,
                continuations: (0..p.choices.len())
                    .map(|i| format!(" {}", letter(i)))
                    .collect(),
                answer: p.answer_index,
                per_char: false,
            });
        }
        Standard::Hellaswag => {
            let activity = ds.text(row, "activity_label").unwrap_or_default();
            let ctx = clean_hellaswag(&ds.text(row, "ctx")?);
            p.question = if activity.is_empty() {
                ctx
            } else {
                format!("{activity}: {ctx}")
            };
            p.choices = ds
                .list(row, "endings")?
                .iter()
                .map(|e| clean_hellaswag(e))
                .collect();
            p.answer_index = answer_index(ds, row, ds.field(row, "label")?, p.choices.len())?;
            p.loglik = Some(LoglikItem {
                context: p.question.clone(),
                continuations: p.choices.iter().map(|c| format!(" {c}")).collect(),
                answer: p.answer_index,
                per_char: true,
            });
        }
        Standard::TruthfulQa => {
            p.question = ds.text(row, "question")?;
            let choices = ds.list(row, "choices")?;
            let labels = ds.list(row, "labels")?;
            let truth = labels
                .iter()
                .position(|l| l.trim() == "1")
                .filter(|i| *i < choices.len())
                .ok_or_else(|| bad_answer(ds, row, "no label is 1 (the true answer)".into()))?;
            p.loglik = Some(LoglikItem {
                context: format!("Q: {}\nA:", p.question),
                continuations: choices.iter().map(|c| format!(" {c}")).collect(),
                answer: truth,
                per_char: false,
            });
            // The true answer comes first in the data: shuffle for the generative prompt.
            let mut order: Vec<usize> = (0..choices.len()).collect();
            let key = |i: &usize| mix(seed ^ row.line as u64, *i as u64);
            order.sort_by_key(key);
            p.answer_index = order.iter().position(|&i| i == truth).unwrap_or(0);
            p.choices = order.into_iter().map(|i| choices[i].clone()).collect();
        }
    }
    if standard != Standard::Gsm8k {
        if p.choices.len() < 2 {
            return Err(bad_answer(ds, row, "fewer than two options".into()));
        }
        p.expected = letter(p.answer_index).to_string();
    }
    Ok(p)
}

fn options_block(question: &str, choices: &[String]) -> String {
    let mut s = question.trim().to_string();
    for (i, c) in choices.iter().enumerate() {
        s.push_str(&format!("\n{}. {}", letter(i), c.trim()));
    }
    s
}

/// The question as shown, and its answer as an example would give it.
fn shown(standard: Standard, p: &Parsed) -> (String, String) {
    match standard {
        Standard::Gsm8k => (
            format!("Question: {}\nAnswer:", p.question.trim()),
            p.solution.trim().to_string(),
        ),
        Standard::TruthfulQa => (
            format!(
                "{}\nAnswer:",
                options_block(&format!("Q: {}", p.question), &p.choices)
            ),
            p.expected.clone(),
        ),
        _ => (
            format!("{}\nAnswer:", options_block(&p.question, &p.choices)),
            p.expected.clone(),
        ),
    }
}

/// Builds the prompts with `shots` examples drawn from the other items: the generative
/// prompt, and the log-likelihood context with the same examples answered in front.
fn items(
    standard: Standard,
    parsed: &[Parsed],
    pool: &[Parsed],
    shots: u32,
    seed: u64,
) -> Vec<Item> {
    parsed
        .iter()
        .map(|p| {
            let examples: Vec<&Parsed> = if shots == 0 {
                Vec::new()
            } else {
                let mut candidates: Vec<&Parsed> = pool
                    .iter()
                    .filter(|e| {
                        e.line != p.line && (p.subject.is_empty() || e.subject == p.subject)
                    })
                    .collect();
                candidates.sort_by_cached_key(|e| mix(seed ^ p.line as u64, e.line as u64));
                candidates.truncate(shots as usize);
                candidates
            };
            let mut prompt = standard.instruction(&p.subject);
            prompt.push_str("\n\n");
            for example in &examples {
                let (q, a) = shown(standard, example);
                prompt.push_str(&format!("{q} {a}\n\n"));
            }
            let (q, _) = shown(standard, p);
            prompt.push_str(&q);
            let loglik = p.loglik.clone().map(|mut ll| {
                let mut context = match standard {
                    Standard::Mmlu if !p.subject.is_empty() => format!(
                        "The following are multiple choice questions (with answers) about {}.\n\n",
                        p.subject.replace('_', " ")
                    ),
                    _ => String::new(),
                };
                for example in &examples {
                    if let Some(e) = &example.loglik {
                        context.push_str(&e.context);
                        context.push_str(&e.continuations[e.answer]);
                        context.push_str("\n\n");
                    }
                }
                context.push_str(&ll.context);
                ll.context = context;
                ll
            });
            Item {
                line: p.line,
                prompt,
                expected: p.expected.clone(),
                choices: p.choices.clone(),
                loglik,
            }
        })
        .collect()
}

pub async fn execute(
    standard: Standard,
    ctx: &BenchContext<'_>,
    params: &Value,
) -> Result<Outcome, BenchError> {
    let p: StandardParams = params::parse(params)?;
    if p.subjects.is_some() && standard != Standard::Mmlu {
        return Err(BenchError::params("`subjects` applies to mmlu only"));
    }
    let spec = DatasetSpec::given(&p.dataset)
        .cloned()
        .unwrap_or_else(|| DatasetSpec::Source(standard.default_dataset()));
    let mut ds = dataset::load(&spec, &ctx.base_dir, &ctx.cache_dir).await?;
    ds.default_fields(standard.default_fields());
    if let Some(subjects) = &p.subjects {
        let field = ds.field_name("subject").to_string();
        ds.rows.retain(|r| {
            dataset::lookup(&r.value, &field)
                .and_then(Value::as_str)
                .is_some_and(|s| subjects.iter().any(|w| w == s))
        });
    }
    // Parse every row (examples come from the whole set), then keep the scored ones.
    let all: Vec<Parsed> = ds
        .rows
        .iter()
        .map(|row| parse_row(standard, &ds, row, p.selection.seed))
        .collect::<Result<_, _>>()?;
    let mut chosen = ds.clone();
    p.selection.select(&mut chosen);
    let keep: std::collections::HashSet<usize> = chosen.rows.iter().map(|r| r.line).collect();
    let scored: Vec<Parsed> = all
        .iter()
        .filter(|x| keep.contains(&x.line))
        .cloned()
        .collect();
    let shots = p.few_shot.unwrap_or(standard.default_few_shot());
    let items = items(standard, &scored, &all, shots, p.selection.seed);
    ctx.say(&format!(
        "{}: {} items from {}, {shots}-shot",
        standard.name(),
        items.len(),
        ds.name
    ));

    let method = choose_method(standard, ctx, p.scoring).await?;
    let records = match method {
        Method::Loglik => loglik::score_all(ctx, &items, p.selection.concurrency as usize).await,
        Method::Generative(_) => {
            let asking = Asking {
                concurrency: p.selection.concurrency as usize,
                max_tokens: p.max_tokens.unwrap_or(standard.default_max_tokens()),
                endpoint: p.endpoint,
                stop: match standard {
                    Standard::Gsm8k => vec!["Question:".into()],
                    _ => Vec::new(),
                },
            };
            ask_all(ctx, &items, &standard.scorer(), &asking).await
        }
    };
    let mut outcome = Outcome::default();
    let label = match &method {
        Method::Loglik => "loglikelihood".to_string(),
        Method::Generative(None) => "generative".to_string(),
        Method::Generative(Some(why)) => {
            outcome.detail("scoring_note", format!("log-likelihood unavailable: {why}"));
            "generative".to_string()
        }
    };
    outcome.detail("dataset", &ds.name);
    outcome.detail("few_shot", shots);
    report(&mut outcome, records, &label, None);
    Ok(outcome)
}

/// Generative, with why log-likelihood was not used when it was considered.
enum Method {
    Loglik,
    Generative(Option<String>),
}

async fn choose_method(
    standard: Standard,
    ctx: &BenchContext<'_>,
    scoring: Scoring,
) -> Result<Method, BenchError> {
    match (scoring, standard) {
        (Scoring::Generative, _) => Ok(Method::Generative(None)),
        (Scoring::Loglikelihood, Standard::Gsm8k) => Err(BenchError::params(
            "gsm8k is scored generatively (its answers are free text); drop `scoring`",
        )),
        (Scoring::Auto, Standard::Gsm8k) => Ok(Method::Generative(None)),
        (Scoring::Loglikelihood, _) => loglik::supported(ctx)
            .await
            .map(|()| Method::Loglik)
            .map_err(|why| {
                BenchError::Failed(format!(
                    "`scoring: loglikelihood` needs prompt log-probabilities from /v1/completions (echo + logprobs): {why}"
                ))
            }),
        (Scoring::Auto, _) => Ok(match loglik::supported(ctx).await {
            Ok(()) => Method::Loglik,
            Err(why) => Method::Generative(Some(why)),
        }),
    }
}
