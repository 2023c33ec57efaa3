//! The Slurm executor's coordinator: submits each engine group's job (`sbatch`), watches the
//! jobs (`squeue`, then `scontrol` for how one ended), merges each ended group's legs into one
//! run of the local store with the job id, the node and the compute node's fingerprint, fails
//! the legs a job did not finish with Slurm's state and reason, and cancels every job of the
//! run (`scancel`) when Ctrl-C or SIGTERM arrives.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::record::Ending;
use super::slurm::SlurmJob;
use crate::store::{NodeStatus, RunRecord, RunStatus, Store};
use crate::suite::plan::Plan;

/// Between two looks at the queue.
const POLL: Duration = Duration::from_secs(1);
/// Longest one Slurm command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Job states after which a job runs no more.
const ENDED: [&str; 10] = [
    "COMPLETED",
    "FAILED",
    "TIMEOUT",
    "CANCELLED",
    "NODE_FAIL",
    "PREEMPTED",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "REVOKED",
];

/// How one group's job went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupEnd {
    pub group: String,
    pub job_id: String,
    /// Slurm's final state (`COMPLETED`, `TIMEOUT`, ...).
    pub state: String,
    pub reason: String,
    pub node: String,
    /// Legs whose results came back.
    pub merged: Vec<String>,
    /// Legs failed (or cancelled) because the job ended before they did.
    pub lost: Vec<String>,
}

/// How a coordinated run ended.
#[derive(Debug)]
pub struct Coordinated {
    pub run_id: String,
    pub status: RunStatus,
    pub groups: Vec<GroupEnd>,
    pub interrupted: bool,
}

/// Runs a Slurm command with `SLURM_CONF` as inherited; its stdout.
async fn slurm(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let run = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(COMMAND_TIMEOUT, run)
        .await
        .with_context(|| format!("`{program}` did not answer within {COMMAND_TIMEOUT:?}"))?
        .with_context(|| format!("cannot run `{program}` (is Slurm installed here?)"))?;
    if !out.status.success() {
        anyhow::bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A job's `Key=Value` field in `scontrol show job -o`.
fn field<'a>(show: &'a str, key: &str) -> Option<&'a str> {
    show.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Submits the jobs of `plan` — a group that needs others' results once they have ended —
/// watches them and merges what they measured into a new run of `store`; `say` gets the
/// progress lines.
pub async fn coordinate(
    plan: &Plan,
    jobs: &[SlurmJob],
    store: &mut Store,
    run: RunRecord,
    resuming: bool,
    say: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<Coordinated> {
    let run_id = run.id.clone();
    if resuming {
        store.take_over(&run_id)?;
    } else {
        store.insert_run(&run)?;
    }
    // A resumed run submits only some groups: the others' legs are already in the run.
    let in_run: Vec<&str> = jobs.iter().map(|j| j.group.as_str()).collect();
    let mut submitted: Vec<(usize, String)> = Vec::new();
    let mut ends: Vec<GroupEnd> = Vec::new();
    let cancel_all = |ids: Vec<String>| async move {
        if !ids.is_empty() {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let _ = slurm("scancel", &refs).await;
        }
    };
    let mut last_state: Vec<String> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut waiting: Vec<usize> = (0..jobs.len()).collect();
    let mut interrupted = crate::process::interrupt::seen();
    while (!open.is_empty() || !waiting.is_empty()) && !interrupted {
        // Submit each group whose prerequisite groups have all ended, with their results.
        let ended: Vec<&str> = ends.iter().map(|e| e.group.as_str()).collect();
        let (mut ready, mut later): (Vec<usize>, Vec<usize>) = waiting.iter().partition(|&&i| {
            jobs[i]
                .after
                .iter()
                .all(|g| ended.contains(&g.as_str()) || !in_run.contains(&g.as_str()))
        });
        // At most `parallelism` groups in the queue at once; the rest wait their turn.
        let room = plan.parallelism.saturating_sub(open.len());
        if ready.len() > room {
            later.extend(ready.split_off(room));
            later.sort_unstable();
        }
        waiting = later;
        for i in ready {
            let job = &jobs[i];
            match submit(store, plan, job, &run, !job.after.is_empty()).await {
                Ok(id) => {
                    say(&format!("submitted group {} as job {id}", job.group));
                    submitted.push((i, id));
                    last_state.push(String::new());
                    open.push(submitted.len() - 1);
                }
                Err(e) => {
                    cancel_all(open.iter().map(|&k| submitted[k].1.clone()).collect()).await;
                    end_group(
                        store,
                        plan,
                        job,
                        &run_id,
                        NodeStatus::Failed,
                        &format!("not submitted: {e:#}"),
                    )?;
                    store.set_run_status(
                        &run_id,
                        RunStatus::Failed,
                        Some(crate::store::time::now()),
                    )?;
                    return Err(e);
                }
            }
        }
        if open.is_empty() {
            if waiting.is_empty() {
                break;
            }
            // Nothing runs and nothing can start: a group waits for one that never ends.
            anyhow::bail!(
                "groups {} wait for groups that are not part of the run",
                waiting
                    .iter()
                    .map(|&i| jobs[i].group.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = crate::process::interrupt::interrupted() => { interrupted = true; break; }
        }
        let ids: Vec<&str> = open.iter().map(|&k| submitted[k].1.as_str()).collect();
        // A controller that does not answer this time is asked again at the next look.
        let Ok(queue) = slurm(
            "squeue",
            &["-h", "-t", "all", "-j", &ids.join(","), "-o", "%i|%T|%N|%r"],
        )
        .await
        else {
            continue;
        };
        let mut still = Vec::new();
        for &k in &open {
            let (i, id) = &submitted[k];
            let job = &jobs[*i];
            let line = queue
                .lines()
                .find(|l| l.split('|').next() == Some(id.as_str()));
            let state = line
                .and_then(|l| l.split('|').nth(1))
                .unwrap_or("GONE")
                .to_string();
            if state != last_state[k] {
                let node = line.and_then(|l| l.split('|').nth(2)).unwrap_or("");
                say(&format!(
                    "group {} (job {id}): {state}{}",
                    job.group,
                    if node.is_empty() {
                        String::new()
                    } else {
                        format!(" on {node}")
                    }
                ));
                last_state[k] = state.clone();
            }
            if ENDED.contains(&state.as_str()) || state == "GONE" {
                ends.push(finish(store, plan, job, &run_id, id).await?);
            } else {
                still.push(k);
            }
        }
        open = still;
    }
    if interrupted {
        let ids: Vec<String> = open.iter().map(|&k| submitted[k].1.clone()).collect();
        say(&format!("interrupted: cancelling {} jobs", ids.len()));
        cancel_all(ids).await;
        for &k in &open {
            let (i, id) = &submitted[k];
            let job = &jobs[*i];
            end_group(
                store,
                plan,
                job,
                &run_id,
                NodeStatus::Cancelled,
                &format!("interrupted: Slurm job {id} was cancelled"),
            )?;
        }
        // Groups never submitted (the interrupt came first).
        for &i in &waiting {
            end_group(
                store,
                plan,
                &jobs[i],
                &run_id,
                NodeStatus::Cancelled,
                "interrupted before it was submitted",
            )?;
        }
    }
    let nodes = store.nodes(&run_id)?;
    let all_ok = nodes.len() == plan.legs.len() && nodes.iter().all(|n| n.status.ok());
    let status = if interrupted {
        RunStatus::Interrupted
    } else if all_ok {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed
    };
    store.set_run_status(&run_id, status, Some(crate::store::time::now()))?;
    Ok(Coordinated {
        run_id,
        status,
        groups: ends,
        interrupted,
    })
}

/// Writes `job`'s script beside its results and submits it; a group that needs others'
/// results gets them as a seed store (`KITT_SLURM_SEED`), holding the run so far as a
/// finished run, so its kitt carries their outputs. The job id.
async fn submit(
    store: &Store,
    plan: &Plan,
    job: &SlurmJob,
    run: &RunRecord,
    seeded: bool,
) -> anyhow::Result<String> {
    let script = script_path(job, &run.id);
    if let Some(dir) = script.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&script, &job.script)
        .with_context(|| format!("cannot write {}", script.display()))?;
    let mut args = vec!["--parsable".to_string()];
    if seeded {
        let seed = script.with_extension("seed.db");
        let _ = std::fs::remove_file(&seed);
        let mut seed_store = Store::open(&seed)?;
        let mut finished = run.clone();
        finished.status = RunStatus::Succeeded;
        finished.ended_at = Some(crate::store::time::now());
        seed_store.insert_run(&finished)?;
        let before: Vec<String> = plan
            .legs
            .iter()
            .filter(|l| job.after.contains(&l.engine))
            .map(|l| l.id.clone())
            .collect();
        seed_store.merge_legs(store.path(), Some(&run.id), &run.id, &before)?;
        args.push(format!("--export=ALL,KITT_SLURM_SEED={}", seed.display()));
    }
    args.push(script.display().to_string());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = slurm("sbatch", &refs).await?;
    Ok(out.trim().split(';').next().unwrap_or_default().to_string())
}

/// Where the coordinator writes a job's script: beside its results.
fn script_path(job: &SlurmJob, run_id: &str) -> PathBuf {
    let results = Path::new(&job.results_file);
    let dir = results.parent().unwrap_or(Path::new("."));
    dir.join(format!("{}-{run_id}.sbatch", job.job_name))
}

/// Writes a leg that ended without a result of its own.
fn put_leg(
    store: &mut Store,
    plan: &Plan,
    run_id: &str,
    leg: &crate::suite::plan::PlannedLeg,
    ending: &Ending,
) -> anyhow::Result<()> {
    store.put_node(
        &ending.record(run_id, leg, &plan.engines[leg.engine_index]),
        &[],
        &[],
        None,
    )
}

/// Ends every leg of `job`'s group without a result: `status` (failed, cancelled) and why.
fn end_group(
    store: &mut Store,
    plan: &Plan,
    job: &SlurmJob,
    run_id: &str,
    status: NodeStatus,
    reason: &str,
) -> anyhow::Result<()> {
    for leg in plan.legs.iter().filter(|l| job.legs.contains(&l.id)) {
        let ending = Ending::without_result(status, leg, Some(reason));
        put_leg(store, plan, run_id, leg, &ending)?;
    }
    Ok(())
}

/// A job that ran no more: how Slurm says it ended, its group's legs merged from its
/// results file (with the job's provenance), the rest failed with Slurm's reason.
async fn finish(
    store: &mut Store,
    plan: &Plan,
    job: &SlurmJob,
    run_id: &str,
    id: &str,
) -> anyhow::Result<GroupEnd> {
    let show = slurm("scontrol", &["show", "job", "-o", id])
        .await
        .unwrap_or_default();
    let mut state = field(&show, "JobState").unwrap_or("UNKNOWN").to_string();
    let mut reason = field(&show, "Reason").unwrap_or("").to_string();
    // The script stopped kitt at Slurm's notice before the time limit.
    if Path::new(&super::slurm::notice_file(
        &job.results_file.replace("%j", id),
    ))
    .exists()
    {
        state = "TIMEOUT".into();
        reason = format!(
            "stopped at the notice before its {} min time limit",
            job.time_limit_minutes
        );
    }
    let node = field(&show, "NodeList").unwrap_or("").to_string();
    let file = PathBuf::from(job.results_file.replace("%j", id));
    let merged = if file.exists() {
        store
            .merge_legs(&file, None, run_id, &job.legs)
            .with_context(|| format!("group {}: cannot merge {}", job.group, file.display()))?
    } else {
        Vec::new()
    };
    let compute_fingerprint = if file.exists() {
        Store::open_existing(&file)
            .ok()
            .and_then(|s| s.runs(None, 1).ok())
            .and_then(|r| r.into_iter().next())
            .map(|r| json!({"hash": r.fingerprint, "summary": r.fingerprint_summary}))
    } else {
        None
    };
    let provenance = json!({"job_id": id, "node": node, "state": state, "reason": reason,
                            "fingerprint": compute_fingerprint});
    for leg in &merged {
        store.add_node_detail(run_id, leg, "slurm", &provenance)?;
    }
    // A leg the job's kitt was stopped in (cancelled, or still running when the job was
    // killed) did not finish: it fails with Slurm's reason.
    let unfinished: Vec<String> = store
        .nodes(run_id)?
        .into_iter()
        .filter(|n| matches!(n.status, NodeStatus::Cancelled | NodeStatus::Running))
        .map(|n| n.leg)
        .collect();
    let mut lost = Vec::new();
    for leg in plan.legs.iter().filter(|l| job.legs.contains(&l.id)) {
        if merged.contains(&leg.id) && !unfinished.contains(&leg.id) {
            continue;
        }
        let why = format!(
            "Slurm job {id} on {} ended {state}{} before this leg's result came back",
            if node.is_empty() { "no node" } else { &node },
            if reason.is_empty() || reason == "None" {
                String::new()
            } else {
                format!(" ({reason})")
            }
        );
        let mut ending = Ending::without_result(NodeStatus::Failed, leg, Some(&why));
        ending.details.insert("slurm".into(), provenance.clone());
        put_leg(store, plan, run_id, leg, &ending)?;
        lost.push(leg.id.clone());
    }
    Ok(GroupEnd {
        group: job.group.clone(),
        job_id: id.to_string(),
        state,
        reason,
        node,
        merged: merged.into_iter().filter(|l| !lost.contains(l)).collect(),
        lost,
    })
}
