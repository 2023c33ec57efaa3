//! What to do next, as a pure function of the plan, where each leg and engine stands and
//! which GPUs are taken: the plan's rules (`suite::plan::RULES`) applied, nothing started.
//! The dispatcher carries the decisions out.

use crate::store::NodeStatus;
use crate::suite::model::RunIf;
use crate::suite::plan::Plan;

/// Where a leg stands in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegStatus {
    Pending,
    Running,
    /// Ended, as it is stored.
    Ended(NodeStatus),
}

impl LegStatus {
    pub fn ended(self) -> bool {
        matches!(self, LegStatus::Ended(_))
    }

    /// Succeeded, or carried over from a good earlier run.
    pub fn ok(self) -> bool {
        matches!(self, LegStatus::Ended(s) if s.ok())
    }

    /// Failed or cancelled.
    pub fn failed(self) -> bool {
        matches!(
            self,
            LegStatus::Ended(NodeStatus::Failed | NodeStatus::Cancelled)
        )
    }
}

/// Where an engine stands in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineStatus {
    Idle,
    Starting,
    Up,
    Failed(String),
    Stopping,
    Down,
}

/// The run as the scheduler sees it.
#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    /// By leg, as in the plan.
    pub legs: &'a [LegStatus],
    /// By engine, as in the plan.
    pub engines: &'a [EngineStatus],
    /// GPUs held by engines that are starting, up or stopping.
    pub gpus_in_use: usize,
    /// This machine's GPUs (0: none seen, and no limit is applied).
    pub machine_gpus: usize,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Record the leg as skipped, with the reason.
    Skip {
        leg: usize,
        reason: String,
    },
    /// Record the leg as failed without running it.
    Fail {
        leg: usize,
        reason: String,
    },
    /// Run the leg on its engine, which is up.
    Run {
        leg: usize,
    },
    StartEngine {
        engine: usize,
    },
    StopEngine {
        engine: usize,
    },
}

/// The decisions the plan's rules allow now, in plan order. When nothing can happen and
/// nothing is under way, the pending legs can never start: they fail.
pub fn decide(plan: &Plan, now: &Situation) -> Vec<Decision> {
    let mut legs = now.legs.to_vec();
    let mut engines = now.engines.to_vec();
    let mut gpus_in_use = now.gpus_in_use;
    let busy = legs.contains(&LegStatus::Running)
        || engines
            .iter()
            .any(|e| matches!(e, EngineStatus::Starting | EngineStatus::Stopping));
    let mut decisions = Vec::new();
    for i in 0..legs.len() {
        if legs[i] != LegStatus::Pending {
            continue;
        }
        let leg = &plan.legs[i];
        if leg.needs_legs.iter().any(|&j| !legs[j].ended()) {
            continue;
        }
        if let Some(reason) = skip_reason(plan, &legs, i) {
            legs[i] = LegStatus::Ended(NodeStatus::Skipped);
            decisions.push(Decision::Skip { leg: i, reason });
            continue;
        }
        let e = leg.engine_index;
        if let EngineStatus::Failed(why) = &engines[e] {
            let reason = format!("engine `{}` did not start: {why}", leg.engine);
            legs[i] = LegStatus::Ended(NodeStatus::Failed);
            decisions.push(Decision::Fail { leg: i, reason });
            continue;
        }
        if !has_room(plan, &legs, i) {
            continue;
        }
        match engines[e] {
            EngineStatus::Up => {
                legs[i] = LegStatus::Running;
                decisions.push(Decision::Run { leg: i });
            }
            EngineStatus::Idle => {
                let need = plan.gpus_of(e, now.machine_gpus);
                let nothing_else = !busy && !decisions.iter().any(is_start);
                if now.machine_gpus == 0 || gpus_in_use + need <= now.machine_gpus || nothing_else {
                    gpus_in_use += need;
                    engines[e] = EngineStatus::Starting;
                    decisions.push(Decision::StartEngine { engine: e });
                }
            }
            _ => {}
        }
    }
    for (e, engine) in plan.engines.iter().enumerate() {
        if engines[e] == EngineStatus::Up && engine.leg_indices.iter().all(|&i| legs[i].ended()) {
            decisions.push(Decision::StopEngine { engine: e });
        }
    }
    if decisions.is_empty() && !busy {
        for (i, status) in legs.iter().enumerate() {
            if *status == LegStatus::Pending {
                decisions.push(Decision::Fail {
                    leg: i,
                    reason: "could not be scheduled".into(),
                });
            }
        }
    }
    decisions
}

fn is_start(d: &Decision) -> bool {
    matches!(d, Decision::StartEngine { .. })
}

/// Why leg `i`, whose needs have all ended, does not run: its run_if, or fail_fast after a
/// failed sibling.
fn skip_reason(plan: &Plan, legs: &[LegStatus], i: usize) -> Option<String> {
    let leg = &plan.legs[i];
    let needed = &leg.needs_legs;
    match leg.run_if {
        RunIf::Success if !needed.iter().all(|&j| legs[j].ok()) => {
            return Some("a needed node did not succeed".into());
        }
        RunIf::Failure if !needed.iter().any(|&j| legs[j].failed()) => {
            return Some("no needed node failed (run_if: failure)".into());
        }
        _ => {}
    }
    if leg.fail_fast {
        let failed = plan
            .legs_of(&leg.node)
            .find(|&j| j != i && legs[j] == LegStatus::Ended(NodeStatus::Failed))?;
        return Some(format!("fail_fast: {} failed", plan.legs[failed].id));
    }
    None
}

/// Whether leg `i` may start beside what runs: parallelism, its node's max_parallel, and
/// no sharing of its engine where either leg runs alone.
fn has_room(plan: &Plan, legs: &[LegStatus], i: usize) -> bool {
    let leg = &plan.legs[i];
    let running: Vec<usize> = (0..legs.len())
        .filter(|&j| legs[j] == LegStatus::Running)
        .collect();
    if running.len() >= plan.parallelism {
        return false;
    }
    if let Some(max) = leg.max_parallel
        && running
            .iter()
            .filter(|&&j| plan.legs[j].node == leg.node)
            .count()
            >= max as usize
    {
        return false;
    }
    !running.iter().any(|&j| {
        let other = &plan.legs[j];
        other.engine_index == leg.engine_index && (other.alone || leg.alone)
    })
}

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;
    use serde_json::{Map, json};

    use super::*;
    use crate::suite::model::{EngineSpec, GpuRequest, Resources};
    use crate::suite::plan::{Builder, LegInput, SuiteRef};

    /// A plan: `engines` as (name, gpus asked); legs as (id, benchmark, engine, needs).
    fn plan(
        parallelism: usize,
        engines: &[(&str, Option<u32>)],
        legs: &[(&str, &str, &str, &[&str])],
    ) -> Plan {
        plan_with(parallelism, engines, legs, |_| {})
    }

    fn plan_with(
        parallelism: usize,
        engines: &[(&str, Option<u32>)],
        legs: &[(&str, &str, &str, &[&str])],
        edit: impl Fn(&mut LegInput),
    ) -> Plan {
        let registry = crate::assemble::builtins();
        let mut b = Builder::new(&registry, Some(2));
        for (name, gpus) in engines {
            let spec = EngineSpec {
                uses: "simulator".into(),
                resources: gpus.map(|n| Resources {
                    gpus: Some(GpuRequest::Count(n)),
                    ..Resources::default()
                }),
                ..EngineSpec::default()
            };
            b.add_engine(name, spec).unwrap();
        }
        for (id, benchmark, engine, needs) in legs {
            let (node, matrix) = match id.split_once('[') {
                Some((n, _)) => (
                    n.to_string(),
                    Map::from_iter([("x".to_string(), json!(id))]),
                ),
                None => (id.to_string(), Map::new()),
            };
            let mut input = LegInput {
                id: id.to_string(),
                node,
                benchmark: benchmark.to_string(),
                engine: engine.to_string(),
                needs: needs.iter().map(|n| n.to_string()).collect(),
                run_if: RunIf::Success,
                fail_fast: false,
                max_parallel: None,
                matrix,
                params: json!({}),
                sampling: Default::default(),
                warmup: Default::default(),
                telemetry: Default::default(),
                timeout: None,
                attempts: 1,
                backoff: None,
                asserts: IndexMap::new(),
            };
            edit(&mut input);
            b.add_leg(input).unwrap();
        }
        b.finish(
            SuiteRef {
                name: "t".into(),
                version: "1.0.0".into(),
            },
            parallelism,
        )
    }

    fn decide_now(plan: &Plan, legs: &[LegStatus], engines: &[EngineStatus]) -> Vec<Decision> {
        decide(
            plan,
            &Situation {
                legs,
                engines,
                gpus_in_use: 0,
                machine_gpus: 0,
            },
        )
    }

    use EngineStatus::{Idle, Up};
    use LegStatus::{Pending, Running};
    const OK: LegStatus = LegStatus::Ended(NodeStatus::Succeeded);
    const FAILED: LegStatus = LegStatus::Ended(NodeStatus::Failed);

    #[test]
    fn an_idle_engine_starts_for_its_first_ready_leg_only() {
        let p = plan(
            4,
            &[("a", None), ("b", None)],
            &[("x", "latency", "a", &[]), ("y", "latency", "b", &["x"])],
        );
        assert_eq!(
            decide_now(&p, &[Pending, Pending], &[Idle, Idle]),
            [Decision::StartEngine { engine: 0 }]
        );
    }

    #[test]
    fn two_performance_legs_never_share_an_engine() {
        let p = plan(
            4,
            &[("a", None)],
            &[("x", "latency", "a", &[]), ("y", "throughput", "a", &[])],
        );
        assert_eq!(
            decide_now(&p, &[Pending, Pending], &[Up]),
            [Decision::Run { leg: 0 }]
        );
        assert!(decide_now(&p, &[Running, Pending], &[Up]).is_empty());
    }

    #[test]
    fn quality_legs_share_an_engine_but_not_with_a_performance_leg() {
        let p = plan(
            4,
            &[("a", None)],
            &[
                ("q1", "gsm8k", "a", &[]),
                ("q2", "mmlu", "a", &[]),
                ("p", "latency", "a", &[]),
            ],
        );
        assert_eq!(
            decide_now(&p, &[Pending, Pending, Pending], &[Up]),
            [Decision::Run { leg: 0 }, Decision::Run { leg: 1 }]
        );
        assert_eq!(
            decide_now(&p, &[OK, OK, Pending], &[Up]),
            [Decision::Run { leg: 2 }]
        );
    }

    #[test]
    fn parallelism_caps_running_legs_across_engines() {
        let p = plan(
            1,
            &[("a", None), ("b", None)],
            &[("x", "latency", "a", &[]), ("y", "latency", "b", &[])],
        );
        assert_eq!(
            decide_now(&p, &[Pending, Pending], &[Up, Up]),
            [Decision::Run { leg: 0 }]
        );
        let p = plan(
            2,
            &[("a", None), ("b", None)],
            &[("x", "latency", "a", &[]), ("y", "latency", "b", &[])],
        );
        assert_eq!(
            decide_now(&p, &[Pending, Pending], &[Up, Up]),
            [Decision::Run { leg: 0 }, Decision::Run { leg: 1 }]
        );
    }

    #[test]
    fn max_parallel_caps_the_legs_of_one_node() {
        let p = plan_with(
            4,
            &[("a", None)],
            &[
                ("m[1]", "gsm8k", "a", &[]),
                ("m[2]", "gsm8k", "a", &[]),
                ("m[3]", "gsm8k", "a", &[]),
            ],
            |l| l.max_parallel = Some(2),
        );
        assert_eq!(
            decide_now(&p, &[Pending, Pending, Pending], &[Up]),
            [Decision::Run { leg: 0 }, Decision::Run { leg: 1 }]
        );
    }

    #[test]
    fn run_if_and_fail_fast_skip_legs() {
        let p = plan_with(
            4,
            &[("a", None)],
            &[
                ("m[1]", "gsm8k", "a", &[]),
                ("m[2]", "gsm8k", "a", &[]),
                ("after", "gsm8k", "a", &["m"]),
            ],
            |l| l.fail_fast = l.node == "m",
        );
        let d = decide_now(&p, &[FAILED, Pending, Pending], &[Up]);
        assert_eq!(
            d[0],
            Decision::Skip {
                leg: 1,
                reason: "fail_fast: m[1] failed".into()
            }
        );
        assert_eq!(
            d[1],
            Decision::Skip {
                leg: 2,
                reason: "a needed node did not succeed".into()
            },
            "decided in the same round, once its needs have ended"
        );
        let p = plan_with(
            4,
            &[("a", None)],
            &[("x", "gsm8k", "a", &[]), ("cleanup", "gsm8k", "a", &["x"])],
            |l| {
                if l.id == "cleanup" {
                    l.run_if = RunIf::Failure;
                }
            },
        );
        assert!(matches!(
            decide_now(&p, &[OK, Pending], &[Up])[0],
            Decision::Skip { leg: 1, .. }
        ));
        assert_eq!(
            decide_now(&p, &[FAILED, Pending], &[Up])[0],
            Decision::Run { leg: 1 }
        );
    }

    #[test]
    fn an_engine_stops_once_its_last_leg_has_ended() {
        let p = plan(
            4,
            &[("a", None), ("b", None)],
            &[("x", "latency", "a", &[]), ("y", "latency", "b", &["x"])],
        );
        let d = decide_now(&p, &[OK, Pending], &[Up, Idle]);
        assert!(d.contains(&Decision::StopEngine { engine: 0 }), "{d:?}");
        assert!(d.contains(&Decision::StartEngine { engine: 1 }), "{d:?}");
    }

    #[test]
    fn gpus_are_counted_and_a_big_engine_starts_when_nothing_else_runs() {
        let p = plan(
            4,
            &[("a", Some(2)), ("b", Some(1))],
            &[("x", "latency", "a", &[]), ("y", "latency", "b", &[])],
        );
        let situation = |legs: &[LegStatus], engines: &[EngineStatus], used| {
            decide(
                &p,
                &Situation {
                    legs,
                    engines,
                    gpus_in_use: used,
                    machine_gpus: 2,
                },
            )
        };
        assert_eq!(
            situation(&[Pending, Pending], &[Idle, Idle], 0),
            [Decision::StartEngine { engine: 0 }],
            "a takes both GPUs; b waits"
        );
        assert!(situation(&[Running, Pending], &[Up, Idle], 2).is_empty());
        let wide = plan(4, &[("a", Some(8))], &[("x", "latency", "a", &[])]);
        assert_eq!(
            decide(
                &wide,
                &Situation {
                    legs: &[Pending],
                    engines: &[Idle],
                    gpus_in_use: 0,
                    machine_gpus: 2
                }
            ),
            [Decision::StartEngine { engine: 0 }],
            "more than the machine has: tried when nothing else runs"
        );
    }

    #[test]
    fn legs_on_a_failed_engine_fail_and_stuck_legs_fail_when_nothing_runs() {
        let p = plan(4, &[("a", None)], &[("x", "latency", "a", &[])]);
        assert_eq!(
            decide_now(&p, &[Pending], &[EngineStatus::Failed("no image".into())]),
            [Decision::Fail {
                leg: 0,
                reason: "engine `a` did not start: no image".into()
            }]
        );
        assert_eq!(
            decide_now(&p, &[Pending], &[EngineStatus::Down]),
            [Decision::Fail {
                leg: 0,
                reason: "could not be scheduled".into()
            }]
        );
        assert!(
            decide_now(&p, &[Pending], &[EngineStatus::Starting]).is_empty(),
            "an engine on its way up is waited for"
        );
    }
}
