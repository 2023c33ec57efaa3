//! `custom`: an evaluation written in YAML — items inline or from a dataset, a minijinja
//! prompt template over each item's fields, a scorer and a pass threshold.

use minijinja::{Environment, UndefinedBehavior};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::scorers::{Scorer, letter};
use super::{Asking, Item, SelectionParams, ask_all, report};
use crate::bench::dataset::{self, Dataset, DatasetSpec};
use crate::bench::workload::EndpointParam;
use crate::bench::{BenchContext, BenchError, Outcome, params};

/// Params of `custom`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CustomParams {
    /// Items written inline: objects holding the fields the prompt uses and the answer.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub items: Option<Vec<Map<String, Value>>>,
    /// Items from a file or a Hugging Face dataset instead.
    #[serde(default)]
    pub dataset: Option<DatasetSpec>,
    /// The prompt: a minijinja template over the item's fields, e.g. `Q: {{ question }}`;
    /// `{{ options }}` lists the choices as `A. …` lines.
    #[schemars(length(min = 1))]
    pub prompt: String,
    /// How the response is scored.
    pub scorer: Scorer,
    /// The item field holding the expected answer.
    #[serde(default = "default_answer_field")]
    pub answer_field: String,
    /// The item field holding the options (for `choice`).
    #[serde(default = "default_choices_field")]
    pub choices_field: String,
    /// The benchmark passes when accuracy reaches this.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub threshold: Option<f64>,
    #[serde(flatten)]
    pub selection: SelectionParams,
    /// Tokens a response may take.
    #[serde(default = "default_max_tokens")]
    #[schemars(range(min = 1))]
    pub max_tokens: u32,
    #[serde(default)]
    pub endpoint: EndpointParam,
}

fn default_answer_field() -> String {
    "answer".into()
}
fn default_choices_field() -> String {
    "choices".into()
}
fn default_max_tokens() -> u32 {
    64
}

/// Renders the prompt of every row; a missing field names the row and the field.
fn build_items(p: &CustomParams, ds: &Dataset) -> Result<Vec<Item>, BenchError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template("prompt", &p.prompt)
        .map_err(|e| BenchError::params(format!("`prompt` is not a valid template: {e}")))?;
    let template = env
        .get_template("prompt")
        .map_err(|e| BenchError::params(e.to_string()))?;
    let mut items = Vec::with_capacity(ds.rows.len());
    for row in &ds.rows {
        let expected = ds.text(row, &p.answer_field)?;
        let choices = if dataset::lookup(&row.value, ds.field_name(&p.choices_field)).is_some() {
            ds.list(row, &p.choices_field)?
        } else if p.scorer == Scorer::Choice {
            // Raises the "row has no field" error with the fix.
            ds.list(row, &p.choices_field)?
        } else {
            Vec::new()
        };
        p.scorer
            .check_expected(&expected, &choices)
            .map_err(|why| {
                BenchError::Dataset(dataset::DatasetError {
                    name: ds.name.clone(),
                    message: format!("row {}: {why}", row.line),
                })
            })?;
        let mut context = row.value.clone();
        if let Value::Object(map) = &mut context
            && !choices.is_empty()
        {
            let options: Vec<String> = choices
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{}. {c}", letter(i)))
                .collect();
            map.entry("options")
                .or_insert_with(|| Value::String(options.join("\n")));
        }
        let prompt = template
            .render(minijinja::value::Serde(&context))
            .map_err(|e| {
                BenchError::params(format!(
                    "{}: row {}: the prompt template failed: {e}",
                    ds.name, row.line
                ))
            })?;
        items.push(Item {
            line: row.line,
            prompt,
            expected,
            choices,
            loglik: None,
        });
    }
    Ok(items)
}

pub async fn execute(ctx: &BenchContext<'_>, params: &Value) -> Result<Outcome, BenchError> {
    let p: CustomParams = params::parse(params)?;
    p.scorer.check().map_err(BenchError::params)?;
    let mut ds = match (&p.items, &p.dataset) {
        (Some(items), None) => Dataset::inline(
            "inline items",
            items.iter().cloned().map(Value::Object).collect(),
        ),
        (None, Some(spec)) => dataset::load(spec, &ctx.base_dir, &ctx.cache_dir).await?,
        (Some(_), Some(_)) => {
            return Err(BenchError::params("give `items` or `dataset`, not both"));
        }
        (None, None) => {
            return Err(BenchError::params(
                "give the items to ask: `items` inline or a `dataset`",
            ));
        }
    };
    p.selection.select(&mut ds);
    let items = build_items(&p, &ds)?;
    ctx.say(&format!("custom: {} items from {}", items.len(), ds.name));
    let asking = Asking {
        concurrency: p.selection.concurrency as usize,
        max_tokens: p.max_tokens,
        endpoint: p.endpoint,
        stop: Vec::new(),
    };
    let records = ask_all(ctx, &items, &p.scorer, &asking).await;
    let mut outcome = Outcome::default();
    report(&mut outcome, records, "generative", p.threshold);
    Ok(outcome)
}
