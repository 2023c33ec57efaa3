//! `conversation`: multi-turn chat sessions. Each turn sends the whole history (every earlier
//! user message and the model's actual answer) and a new user message, after a think time;
//! sessions run concurrently (closed loop) or start at a rate (open loop). Metrics by turn
//! index show whether the server cached the history; per-session and overall ones follow.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bench::dataset::{self, DatasetSpec};
use crate::bench::pacer::Pacer;
use crate::bench::schedule::{Arrival, Extent, Schedule};
use crate::bench::stats::Latencies;
use crate::bench::workload::{draw, synthetic_text};
use crate::bench::{BenchContext, BenchError, Outcome, params};
use crate::engine::RunningEngine;
use crate::engine::client::ClientError;
use crate::engine::generation::{ChatMessage, ChatRole, GenerationRequest, GenerationResult};
use crate::registry::Direction;
use crate::seed::{mix, unit};
use crate::suite::model::Duration as SuiteDuration;

/// Params of `conversation`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConversationParams {
    /// Sessions (conversations) to run.
    #[serde(default = "default_sessions")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub sessions: u64,
    /// Closed loop: sessions in flight (default 4 when no `session_rate` is given).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100_000))]
    pub concurrency: Option<u32>,
    /// Open loop: sessions started per second.
    #[serde(default)]
    #[schemars(range(min = 0.001))]
    pub session_rate: Option<f64>,
    /// Open loop: how gaps between session starts are drawn.
    #[serde(default)]
    pub arrival: Arrival,
    /// Gamma arrivals: shape (1 = Poisson, below 1 burstier).
    #[serde(default = "one")]
    #[schemars(range(min = 0.01))]
    pub burstiness: f64,
    /// Turns per synthetic session (default 4); with a dataset, at most this many of each
    /// conversation's user turns (default all of them).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    pub turns: Option<u32>,
    /// Words in each synthetic user message (one common word is about one token).
    #[serde(default = "default_user_tokens")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub user_tokens: u32,
    /// Tokens each answer is asked for (exactly this many: `ignore_eos`).
    #[serde(default = "default_answer_tokens")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub answer_tokens: u32,
    /// Lengths are drawn uniformly from mean × (1 ± spread); 0 keeps them fixed.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub length_spread: f64,
    /// The pause between an answer and the next user message (default none).
    #[serde(default)]
    pub think_time: Option<SuiteDuration>,
    /// How think times are drawn around `think_time`.
    #[serde(default)]
    pub think_time_distribution: ThinkTime,
    /// Conversations from a dataset instead of synthetic ones: ShareGPT-style rows with
    /// `conversations: [{from: human|gpt|system, value}]` or `messages: [{role, content}]`.
    /// Every user turn is sent; the dataset's own answers are replaced by the model's.
    #[serde(default)]
    pub dataset: Option<DatasetSpec>,
    /// Seed of lengths, texts, think times and arrivals.
    #[serde(default)]
    pub seed: u64,
}

/// How think times are drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThinkTime {
    /// Exactly `think_time`.
    #[default]
    Fixed,
    /// Uniform over 0 to twice `think_time`.
    Uniform,
    /// Exponential with mean `think_time`.
    Exponential,
}

fn default_sessions() -> u64 {
    8
}
fn one() -> f64 {
    1.0
}
fn default_user_tokens() -> u32 {
    64
}
fn default_answer_tokens() -> u32 {
    64
}
/// Synthetic turns per session by default.
const DEFAULT_TURNS: u32 = 4;
/// Sessions in flight by default.
const DEFAULT_CONCURRENCY: u32 = 4;

/// Declared metrics of `conversation` (name, unit, whether higher is better).
pub const METRICS: [(&str, &str, bool); 25] = [
    ("requests", "count", true),
    ("errors", "count", false),
    ("error_rate", "ratio", false),
    ("sessions", "count", true),
    ("sessions_completed", "count", true),
    ("session_e2e_mean_ms", "ms", false),
    ("session_e2e_p99_ms", "ms", false),
    ("ttft_mean_ms", "ms", false),
    ("ttft_p50_ms", "ms", false),
    ("ttft_p99_ms", "ms", false),
    ("e2e_mean_ms", "ms", false),
    ("e2e_p50_ms", "ms", false),
    ("e2e_p99_ms", "ms", false),
    ("ttft_first_turn_mean_ms", "ms", false),
    ("ttft_later_turns_mean_ms", "ms", false),
    ("ttft_later_to_first_turn_ratio", "ratio", false),
    ("requests_per_s", "requests/s", true),
    ("output_tokens_per_s", "tokens/s", true),
    ("output_tokens_mean", "tokens", true),
    ("prompt_tokens_mean", "tokens", true),
    ("cached_prompt_tokens_mean", "tokens", true),
    ("cached_prompt_share", "ratio", true),
    ("think_time_mean_ms", "ms", false),
    ("session_start_lag_p99_ms", "ms", false),
    ("turns_per_session_mean", "count", true),
];

/// The prefix of the per-turn metrics (`turn_2_ttft_mean_ms`, …).
pub const TURN_PREFIX: &str = "turn_";

/// One conversation's script: an optional system message and the user turns.
#[derive(Debug, Clone)]
struct Script {
    system: Option<String>,
    users: Vec<String>,
}

/// A session in progress.
struct Session {
    index: u64,
    script: Script,
    history: Vec<ChatMessage>,
    /// The next turn to send (0-based).
    turn: usize,
    started: Instant,
}

/// What a step of a session brought: an answered (or failed) turn, or a think time over.
enum Step {
    Turn {
        slot: usize,
        sent: Instant,
        ended: Instant,
        result: Box<Result<GenerationResult, ClientError>>,
    },
    Thought {
        slot: usize,
        slept: Duration,
    },
}

type Steps<'a> = FuturesUnordered<Pin<Box<dyn Future<Output = Step> + Send + 'a>>>;

/// What was measured for one turn index.
#[derive(Debug, Default)]
struct TurnFigures {
    ttft: Latencies,
    e2e: Latencies,
    ok: u64,
    prompt_tokens: u64,
    /// Requests whose server said how much of the prompt it served from its cache.
    cached_known: u64,
    cached_tokens: u64,
}

/// Sends one turn of the session in `slot`.
fn turn(
    engine: &RunningEngine,
    slot: usize,
    request: GenerationRequest,
) -> Pin<Box<dyn Future<Output = Step> + Send + '_>> {
    Box::pin(async move {
        let sent = Instant::now();
        let result = engine.generate(&request).await;
        Step::Turn {
            slot,
            sent,
            ended: Instant::now(),
            result: Box::new(result),
        }
    })
}

/// Reads conversations from a dataset: each row's user turns (and a system message).
fn scripts_from(ds: &dataset::Dataset, max_turns: Option<u32>) -> Result<Vec<Script>, BenchError> {
    let mut scripts = Vec::new();
    for row in &ds.rows {
        let turns = dataset::lookup(&row.value, ds.field_name("conversations"))
            .or_else(|| dataset::lookup(&row.value, ds.field_name("messages")))
            .and_then(Value::as_array)
            .ok_or_else(|| {
                BenchError::params(format!(
                    "dataset {}: row {} has no `conversations` (ShareGPT: [{{from, value}}]) or `messages` ([{{role, content}}]) list",
                    ds.name, row.line
                ))
            })?;
        let mut script = Script {
            system: None,
            users: Vec::new(),
        };
        for (i, turn) in turns.iter().enumerate() {
            let role = turn.get("from").or_else(|| turn.get("role"));
            let text = turn.get("value").or_else(|| turn.get("content"));
            let (Some(role), Some(text)) =
                (role.and_then(Value::as_str), text.and_then(Value::as_str))
            else {
                return Err(BenchError::params(format!(
                    "dataset {}: row {}, turn {}: needs `from` and `value` (or `role` and `content`) as text",
                    ds.name,
                    row.line,
                    i + 1
                )));
            };
            match role {
                "human" | "user" => script.users.push(text.to_string()),
                "system" if script.users.is_empty() => script.system = Some(text.to_string()),
                _ => {} // the dataset's answers: the model gives its own
            }
        }
        if let Some(max) = max_turns {
            script.users.truncate(max as usize);
        }
        if !script.users.is_empty() {
            scripts.push(script);
        }
    }
    if scripts.is_empty() {
        return Err(BenchError::params(format!(
            "dataset {} has no conversation with a user turn",
            ds.name
        )));
    }
    Ok(scripts)
}

/// The synthetic script of session `s`.
fn synthetic_script(p: &ConversationParams, s: u64) -> Script {
    let turns = p.turns.unwrap_or(DEFAULT_TURNS);
    Script {
        system: None,
        users: (0..u64::from(turns))
            .map(|t| {
                let key = mix(mix(p.seed, s), t);
                synthetic_text(draw(p.user_tokens, p.length_spread, key), !key)
            })
            .collect(),
    }
}

/// The think time before turn `turn` (1-based, after an answer) of session `s`.
fn think_time(p: &ConversationParams, s: u64, turn: usize) -> Duration {
    let Some(mean) = p.think_time.map(|d| d.0) else {
        return Duration::ZERO;
    };
    let x = unit(mix(mix(p.seed ^ 0x7417, s), turn as u64));
    match p.think_time_distribution {
        ThinkTime::Fixed => mean,
        ThinkTime::Uniform => mean.mul_f64(2.0 * x),
        ThinkTime::Exponential => mean.mul_f64(-(1.0 - x).ln()),
    }
}

pub async fn execute(ctx: &BenchContext<'_>, params: &Value) -> Result<Outcome, BenchError> {
    let p: ConversationParams = params::parse(params)?;
    let scripts = match DatasetSpec::given(&p.dataset) {
        Some(spec) => Some(scripts_from(
            &dataset::load(spec, &ctx.base_dir, &ctx.cache_dir).await?,
            p.turns,
        )?),
        None => None,
    };
    let schedule = match (p.concurrency, p.session_rate) {
        (Some(_), Some(_)) => {
            return Err(BenchError::params(
                "give `concurrency` (closed loop: sessions in flight) or `session_rate` (open loop: sessions started per second), not both",
            ));
        }
        (_, Some(rate)) => Some(
            Schedule::build(
                rate,
                p.arrival,
                p.burstiness,
                p.seed,
                Extent::Requests(p.sessions),
            )
            .map_err(BenchError::params)?,
        ),
        _ => None,
    };
    let concurrency = p.concurrency.unwrap_or(DEFAULT_CONCURRENCY) as usize;
    ctx.say(&format!(
        "{} conversations, {}",
        p.sessions,
        match p.session_rate {
            Some(r) => format!("{r} started per second ({:?})", p.arrival),
            None => format!("{concurrency} in flight"),
        }
    ));
    let script = |s: u64| -> Script {
        let mut script = match &scripts {
            Some(all) => all[(s % all.len() as u64) as usize].clone(),
            None => synthetic_script(&p, s),
        };
        // The session's own head: no prefix cache serves one session what another sent.
        let head = format!("{:08x}-{s}:", ctx.salt as u32);
        match &mut script.system {
            Some(system) => *system = format!("{head} {system}"),
            None => script.users[0] = format!("{head} {}", script.users[0]),
        }
        script
    };
    let send = |slot: usize, session: &Session| {
        let mut sampling = ctx.sampling.clone();
        let key = mix(mix(!p.seed, session.index), session.turn as u64);
        sampling.max_tokens = Some(draw(p.answer_tokens, p.length_spread, key));
        sampling.ignore_eos = Some(true);
        let request = GenerationRequest {
            prompt: session.script.users[session.turn].clone(),
            history: session.history.clone(),
            stream: true,
            sampling,
            ..GenerationRequest::default()
        };
        turn(ctx.engine, slot, request)
    };

    let mut steps: Steps<'_> = FuturesUnordered::new();
    let mut sessions: Vec<Option<Session>> = Vec::new();
    let mut figures: Vec<TurnFigures> = Vec::new();
    let (mut errors, mut output_tokens, mut completed) = (0u64, 0u64, 0u64);
    let (mut session_e2e, mut start_lag) = (Latencies::default(), Latencies::default());
    let (mut thought, mut thoughts) = (Duration::ZERO, 0u32);
    let mut turns_done = 0u64;
    let mut error_examples: Vec<String> = Vec::new();
    let (mut first_send, mut last_end): (Option<Instant>, Option<Instant>) = (None, None);
    let mut started = 0u64;
    let mut active = 0usize;
    let pacer = Pacer::new();
    let begin = Instant::now();
    let expected_turns: u64 = (0..p.sessions)
        .map(|s| match &scripts {
            Some(all) => all[(s % all.len() as u64) as usize].users.len() as u64,
            None => u64::from(p.turns.unwrap_or(DEFAULT_TURNS)),
        })
        .sum();
    ctx.tally.set(0, Some(expected_turns));
    // Places a new session in a free slot and returns the slot.
    let open = |index: u64, sessions: &mut Vec<Option<Session>>| {
        let script = script(index);
        let history = script
            .system
            .iter()
            .map(|system| ChatMessage {
                role: ChatRole::System,
                content: system.clone(),
            })
            .collect();
        let session = Session {
            index,
            script,
            history,
            turn: 0,
            started: Instant::now(),
        };
        let slot = match sessions.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                sessions.push(None);
                sessions.len() - 1
            }
        };
        sessions[slot] = Some(session);
        slot
    };
    loop {
        if schedule.is_none() {
            while active < concurrency && started < p.sessions {
                let slot = open(started, &mut sessions);
                if let Some(session) = &sessions[slot] {
                    steps.push(send(slot, session));
                }
                started += 1;
                active += 1;
            }
        }
        let due = schedule
            .as_ref()
            .and_then(|s| s.offsets.get(started as usize))
            .map(|o| begin + *o);
        if steps.is_empty() && due.is_none() {
            break;
        }
        let step = tokio::select! {
            biased;
            Some(step) = steps.next(), if !steps.is_empty() => step,
            _ = pacer.sleep_until(due.unwrap_or(begin)), if due.is_some() => {
                if let Some(at) = due {
                    start_lag.record(Instant::now().saturating_duration_since(at));
                }
                let slot = open(started, &mut sessions);
                if let Some(session) = &sessions[slot] {
                    steps.push(send(slot, session));
                }
                started += 1;
                active += 1;
                continue;
            }
        };
        // (the session's slot, whether it has a turn left, whether it just thought)
        let (slot, go_on, thought_over) = match step {
            Step::Thought { slot, slept } => {
                thought += slept;
                thoughts += 1;
                (slot, true, true)
            }
            Step::Turn {
                slot,
                sent,
                ended,
                result,
            } => {
                first_send = Some(first_send.map_or(sent, |f| f.min(sent)));
                last_end = Some(ended);
                turns_done += 1;
                ctx.tally.set(turns_done, None);
                let Some(session) = sessions[slot].as_mut() else {
                    continue;
                };
                match *result {
                    Ok(r) => {
                        if figures.len() <= session.turn {
                            figures.resize_with(session.turn + 1, TurnFigures::default);
                        }
                        let f = &mut figures[session.turn];
                        f.ok += 1;
                        if let Some(t) = r.ttft {
                            f.ttft.record(t);
                        }
                        f.e2e.record(ended - sent);
                        f.prompt_tokens += r.prompt_tokens.unwrap_or(0);
                        if let Some(c) = r.cached_prompt_tokens {
                            f.cached_known += 1;
                            f.cached_tokens += c;
                        }
                        output_tokens += r.completion_tokens;
                        let user = session.script.users[session.turn].clone();
                        session.history.push(ChatMessage {
                            role: ChatRole::User,
                            content: user,
                        });
                        session.history.push(ChatMessage {
                            role: ChatRole::Assistant,
                            content: r.text,
                        });
                        session.turn += 1;
                        (slot, session.turn < session.script.users.len(), false)
                    }
                    Err(e) => {
                        // A failed turn ends its session: its history has a hole.
                        errors += 1;
                        let message = e.to_string();
                        if error_examples.len() < super::ERROR_EXAMPLES
                            && !error_examples.contains(&message)
                        {
                            error_examples.push(message);
                        }
                        session.turn = usize::MAX;
                        (slot, false, false)
                    }
                }
            }
        };
        let Some(session) = sessions[slot].as_mut() else {
            continue;
        };
        if go_on {
            let pause = think_time(&p, session.index, session.turn);
            if thought_over || pause.is_zero() {
                steps.push(send(slot, session));
            } else {
                let slept_from = Instant::now();
                steps.push(Box::pin(async move {
                    tokio::time::sleep(pause).await;
                    Step::Thought {
                        slot,
                        slept: slept_from.elapsed(),
                    }
                }));
            }
        } else {
            if session.turn == session.script.users.len() {
                completed += 1;
                session_e2e.record(session.started.elapsed());
            }
            sessions[slot] = None;
            active -= 1;
        }
    }
    let ok: u64 = figures.iter().map(|f| f.ok).sum();
    let mut outcome = Outcome {
        passed: ok > 0,
        errors: error_examples,
        ..Outcome::default()
    };
    if ok == 0 {
        outcome
            .errors
            .insert(0, "no turn succeeded, so nothing was measured".into());
    }
    outcome.set("requests", ok as f64);
    outcome.set("errors", errors as f64);
    outcome.set("error_rate", errors as f64 / (ok + errors).max(1) as f64);
    outcome.set("sessions", p.sessions as f64);
    outcome.set("sessions_completed", completed as f64);
    outcome.set("turns_per_session_mean", ok as f64 / p.sessions as f64);
    if let Some(s) = session_e2e.summary() {
        outcome.set("session_e2e_mean_ms", s.mean);
        outcome.set("session_e2e_p99_ms", s.p99);
    }
    let (mut ttft, mut e2e, mut later) = (
        Latencies::default(),
        Latencies::default(),
        Latencies::default(),
    );
    for (k, f) in figures.iter().enumerate() {
        ttft.merge(&f.ttft);
        e2e.merge(&f.e2e);
        if k > 0 {
            later.merge(&f.ttft);
        }
    }
    for (name, lat) in [("ttft", &ttft), ("e2e", &e2e)] {
        if let Some(s) = lat.summary() {
            outcome.set(&format!("{name}_mean_ms"), s.mean);
            outcome.set(&format!("{name}_p50_ms"), s.p50);
            outcome.set(&format!("{name}_p99_ms"), s.p99);
        }
    }
    let first = figures.first().and_then(|f| f.ttft.summary());
    if let Some(first) = &first {
        outcome.set("ttft_first_turn_mean_ms", first.mean);
    }
    if let Some(later) = later.summary() {
        outcome.set("ttft_later_turns_mean_ms", later.mean);
        if let Some(first) = first.filter(|f| f.mean > 0.0) {
            outcome.set("ttft_later_to_first_turn_ratio", later.mean / first.mean);
        }
    }
    if let (Some(a), Some(b)) = (first_send, last_end) {
        let window = b.saturating_duration_since(a).as_secs_f64();
        if window > 0.0 {
            outcome.set("requests_per_s", ok as f64 / window);
            outcome.set("output_tokens_per_s", output_tokens as f64 / window);
        }
    }
    let prompt: u64 = figures.iter().map(|f| f.prompt_tokens).sum();
    if ok > 0 {
        outcome.set("output_tokens_mean", output_tokens as f64 / ok as f64);
        outcome.set("prompt_tokens_mean", prompt as f64 / ok as f64);
    }
    let known: u64 = figures.iter().map(|f| f.cached_known).sum();
    let cached: u64 = figures.iter().map(|f| f.cached_tokens).sum();
    if known > 0 {
        outcome.set("cached_prompt_tokens_mean", cached as f64 / known as f64);
        let prompt_known: u64 = figures
            .iter()
            .filter(|f| f.cached_known > 0)
            .map(|f| f.prompt_tokens)
            .sum();
        if prompt_known > 0 {
            outcome.set("cached_prompt_share", cached as f64 / prompt_known as f64);
        }
    } else if ok > 0 {
        outcome.detail(
            "cached_prompt_tokens",
            "the server did not say how many prompt tokens it served from its cache",
        );
    }
    if thoughts > 0 {
        outcome.set(
            "think_time_mean_ms",
            thought.as_secs_f64() * 1e3 / f64::from(thoughts),
        );
    }
    if let Some(lag) = start_lag.summary() {
        outcome.set("session_start_lag_p99_ms", lag.p99);
    }
    for (k, f) in figures.iter().enumerate() {
        let turn = k + 1;
        let mut put = |what: &str, value: f64, unit: &str, direction| {
            outcome.set_dynamic(
                format!("{TURN_PREFIX}{turn}_{what}"),
                value,
                unit,
                direction,
            );
        };
        put("requests", f.ok as f64, "count", Direction::Higher);
        if let Some(s) = f.ttft.summary() {
            put("ttft_mean_ms", s.mean, "ms", Direction::Lower);
            put("ttft_p50_ms", s.p50, "ms", Direction::Lower);
        }
        if let Some(s) = f.e2e.summary() {
            put("e2e_mean_ms", s.mean, "ms", Direction::Lower);
        }
        if f.ok > 0 {
            put(
                "prompt_tokens_mean",
                f.prompt_tokens as f64 / f.ok as f64,
                "tokens",
                Direction::Higher,
            );
        }
        if f.cached_known > 0 {
            put(
                "cached_prompt_tokens_mean",
                f.cached_tokens as f64 / f.cached_known as f64,
                "tokens",
                Direction::Higher,
            );
        }
    }
    outcome.detail(
        "by_turn",
        figures
            .iter()
            .enumerate()
            .map(|(k, f)| {
                json!({"turn": k + 1, "requests": f.ok,
                       "ttft_mean_ms": f.ttft.summary().map(|s| s.mean),
                       "prompt_tokens": f.prompt_tokens, "cached_prompt_tokens": f.cached_tokens})
            })
            .collect::<Vec<_>>(),
    );
    Ok(outcome)
}
