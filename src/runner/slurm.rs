//! The Slurm executor's jobs: one `sbatch` job per engine group (an engine and the legs that
//! use it), its resources from the engine's `resources` and the suite's `executor.slurm`, its
//! time limit from its legs' timeouts, and the job script that runs the group on the compute
//! node with kitt itself and leaves the group's results in the shared results directory.
//! What is built: planning the jobs and writing their scripts (`kitt plan --executor slurm`,
//! `kitt apply --dry-run --executor slurm`). Submitting them, watching them and merging their
//! results into the store are not built yet.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;

use crate::suite::model::{GpuRequest, SlurmGpuRequest, SlurmSettings};
use crate::suite::plan::Plan;

/// An engine's start-up allowance in a job's time limit when it sets no `startup_timeout`.
const DEFAULT_STARTUP: std::time::Duration = std::time::Duration::from_secs(600);
/// Seconds before its time limit a job's kitt is told to stop (`--signal=B:USR1@...`), so it
/// stops its engine and keeps what it measured; a fifth of shorter limits.
pub const STOP_NOTICE_S: u64 = 120;

/// The notice a job of `minutes` gets before its time limit, in seconds.
fn stop_notice(minutes: u64) -> u64 {
    STOP_NOTICE_S.min(minutes * 60 / 5).max(1)
}

/// The file a job's script leaves beside its results when Slurm's time-limit notice came.
pub fn notice_file(results_file: &str) -> String {
    format!("{results_file}.time-limit")
}

/// Why the jobs of a plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SlurmPlanError {
    #[error(
        "the Slurm executor needs `executor.slurm.results_dir`: an absolute path on a filesystem the compute nodes share"
    )]
    NoResultsDir,
    #[error("`executor.slurm.results_dir` is `{0}`: it must be an absolute path")]
    RelativeResultsDir(String),
    #[error(
        "engine `{engine}`: under the Slurm executor `resources.gpus` is a number of GPUs (Slurm allocates counts; `all` and GPU ids name one machine's GPUs)"
    )]
    GpuNotCount { engine: String },
    #[error(
        "node `{node}` has legs on engines {engines}: the Slurm executor runs one engine group per job, so give each engine a node of its own"
    )]
    NodeAcrossGroups { node: String, engines: String },
    #[error(
        "`executor.slurm.extra_args`: `{0}` is not an sbatch option (one argument starting with `--`)"
    )]
    ExtraArg(String),
}

/// One job: an engine group and how Slurm is asked to run it.
#[derive(Debug, Clone, Serialize)]
pub struct SlurmJob {
    /// The engine the group is named after.
    pub group: String,
    pub job_name: String,
    /// The suite's nodes whose legs the job runs.
    pub nodes: Vec<String>,
    pub legs: Vec<String>,
    /// Groups whose legs some of its legs need: it runs after them.
    pub after: Vec<String>,
    pub gpus: Option<u32>,
    pub cpus: Option<u32>,
    pub memory: Option<String>,
    pub time_limit_minutes: u64,
    /// The `#SBATCH` options, in order.
    pub sbatch_args: Vec<String>,
    /// Where the job leaves the group's results (`%j` is the job id).
    pub results_file: String,
    /// The job script.
    pub script: String,
}

/// What every job script needs from the run that plans it.
#[derive(Debug, Clone)]
pub struct JobInputs<'a> {
    /// The suite file as the compute nodes reach it (an absolute path).
    pub suite_path: &'a Path,
    /// The suite's parameter values, passed on as `-p NAME=VALUE`.
    pub params: &'a IndexMap<String, Value>,
    /// The kitt binary as the compute nodes reach it.
    pub kitt: String,
    /// Only these legs (a resumed run's unfinished ones); groups with none get no job.
    pub only: Option<&'a [String]>,
}

/// A word quoted for the shell.
fn quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A parameter value as `-p` takes it.
fn param_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A name as Slurm and file names take it: letters, digits, `-`, `_` and `.`.
fn clean(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The job name Slurm shows for a group.
fn job_name(suite: &str, group: &str) -> String {
    format!("kitt-{}-{}", clean(suite), clean(group))
}

/// The jobs of `plan`, one per engine group, in plan order.
pub fn jobs(
    plan: &Plan,
    settings: &SlurmSettings,
    inputs: &JobInputs<'_>,
) -> Result<Vec<SlurmJob>, SlurmPlanError> {
    let results_dir = settings
        .results_dir
        .as_deref()
        .ok_or(SlurmPlanError::NoResultsDir)?;
    if !Path::new(results_dir).is_absolute() {
        return Err(SlurmPlanError::RelativeResultsDir(results_dir.to_string()));
    }
    if let Some(bad) = settings
        .extra_args
        .iter()
        .find(|a| !a.starts_with("--") || a.contains('\n'))
    {
        return Err(SlurmPlanError::ExtraArg(bad.clone()));
    }
    let selected = |leg: &str| inputs.only.is_none_or(|only| only.iter().any(|l| l == leg));
    // Every node's legs must sit in one group.
    let mut engines_of: IndexMap<&str, Vec<&str>> = IndexMap::new();
    for leg in &plan.legs {
        let engines = engines_of.entry(leg.node.as_str()).or_default();
        if !engines.contains(&leg.engine.as_str()) {
            engines.push(leg.engine.as_str());
        }
    }
    if let Some((node, engines)) = engines_of.iter().find(|(_, e)| e.len() > 1) {
        return Err(SlurmPlanError::NodeAcrossGroups {
            node: node.to_string(),
            engines: engines
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    plan.engines
        .iter()
        .filter(|e| e.leg_indices.iter().any(|&i| selected(&plan.legs[i].id)))
        .map(|engine| {
            let gpus = match &engine.gpus {
                None => None,
                Some(GpuRequest::Count(n)) => Some(*n).filter(|n| *n > 0),
                Some(_) => {
                    return Err(SlurmPlanError::GpuNotCount {
                        engine: engine.name.clone(),
                    });
                }
            };
            let resources = engine.spec.resources.as_ref();
            let cpus = resources.and_then(|r| r.cpus);
            let memory = resources.and_then(|r| r.memory.clone());
            let legs: Vec<_> = engine
                .leg_indices
                .iter()
                .map(|&i| &plan.legs[i])
                .filter(|l| selected(&l.id))
                .collect();
            let mut nodes: Vec<String> = Vec::new();
            for leg in &legs {
                if !nodes.contains(&leg.node) {
                    nodes.push(leg.node.clone());
                }
            }
            let time_limit_minutes = match settings.time_limit {
                Some(d) => d.0.as_secs().div_ceil(60).max(1),
                None => {
                    let startup = engine.spec.startup_timeout.map_or(DEFAULT_STARTUP, |d| d.0);
                    let legs_time: std::time::Duration = legs
                        .iter()
                        .map(|l| {
                            let backoffs: u32 = (0..l.attempts.saturating_sub(1))
                                .map(|k| 1u32 << k.min(16))
                                .sum();
                            l.timeout.0 * l.attempts + l.backoff.0 * backoffs
                        })
                        .sum();
                    (startup + legs_time).as_secs().div_ceil(60).max(1)
                }
            };
            let name = job_name(&plan.suite.name, &engine.name);
            let group_dir = format!(
                "{}/{}",
                results_dir.trim_end_matches('/'),
                clean(&plan.suite.name)
            );
            let results_file = format!("{group_dir}/{}-%j.db", engine.name);
            let mut args = vec![
                format!("--job-name={name}"),
                "--nodes=1".to_string(),
                "--ntasks=1".to_string(),
                format!("--time={time_limit_minutes}"),
                format!("--output={group_dir}/{}-%j.log", engine.name),
                format!("--signal=B:USR1@{}", stop_notice(time_limit_minutes)),
            ];
            for (flag, value) in [
                ("partition", &settings.partition),
                ("account", &settings.account),
                ("qos", &settings.qos),
                ("constraint", &settings.constraint),
            ] {
                if let Some(v) = value {
                    args.push(format!("--{flag}={v}"));
                }
            }
            if let Some(c) = cpus {
                args.push(format!("--cpus-per-task={c}"));
            }
            if let Some(m) = &memory {
                args.push(format!("--mem={}", m.to_ascii_uppercase()));
            }
            if let Some(n) = gpus {
                args.push(match settings.gpu_request {
                    SlurmGpuRequest::Gres => format!("--gres=gpu:{n}"),
                    SlurmGpuRequest::Gpus => format!("--gpus={n}"),
                });
            }
            args.extend(settings.extra_args.iter().cloned());
            let mut job = SlurmJob {
                group: engine.name.clone(),
                job_name: name,
                nodes,
                legs: legs.iter().map(|l| l.id.clone()).collect(),
                after: engine.after.clone(),
                gpus,
                cpus,
                memory,
                time_limit_minutes,
                sbatch_args: args,
                results_file,
                script: String::new(),
            };
            job.script = script(plan, &job, settings, inputs, &group_dir);
            Ok(job)
        })
        .collect()
}

/// The job script of `job`: the `#SBATCH` options, the exported environment, and kitt
/// applying the group's nodes into a store on the node's own disk, copied to the shared
/// results directory when it ends (the SQLite store never sits on a shared filesystem).
fn script(
    plan: &Plan,
    job: &SlurmJob,
    settings: &SlurmSettings,
    inputs: &JobInputs<'_>,
    group_dir: &str,
) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(
        s,
        "# kitt: engine group `{}` of suite `{}` {}: {}",
        job.group,
        plan.suite.name,
        plan.suite.version,
        job.legs.join(", ")
    );
    if !job.after.is_empty() {
        let _ = writeln!(
            s,
            "# runs after the groups {} (it needs their legs' results)",
            job.after.join(", ")
        );
    }
    for arg in &job.sbatch_args {
        let _ = writeln!(s, "#SBATCH {arg}");
    }
    s.push_str("set -uo pipefail\n");
    for (name, value) in &settings.export {
        let _ = writeln!(s, "export {name}={}", quote(value));
    }
    let mut command = vec![
        quote(&inputs.kitt),
        "apply".into(),
        quote(&inputs.suite_path.display().to_string()),
        "--executor".into(),
        "local".into(),
        "--plain".into(),
        "--store".into(),
        "\"$work/results.db\"".into(),
    ];
    for node in &job.nodes {
        command.push("--only".into());
        command.push(quote(node));
    }
    for (name, value) in inputs.params {
        command.push("-p".into());
        command.push(quote(&format!("{name}={}", param_text(value))));
    }
    let results = job.results_file.replace("%j", "${SLURM_JOB_ID}");
    let _ = write!(
        s,
        r#"work="${{TMPDIR:-/tmp}}/kitt-job-${{SLURM_JOB_ID}}"
mkdir -p "$work" {dir}
cd "$work" || exit 1
# The results of the groups this one needs, when the coordinator sends them along.
if [ -n "${{KITT_SLURM_SEED:-}}" ] && [ -f "$KITT_SLURM_SEED" ]; then cp "$KITT_SLURM_SEED" "$work/results.db"; fi
{command} &
kitt_pid=$!
# Slurm's notice before the time limit (USR1) and scancel (TERM) reach this shell: pass them
# on, so kitt stops its engine and keeps what it measured; the notice is left as a file.
trap 'echo "time limit near: stopping kitt" >&2; : > "{notice}"; kill -TERM "$kitt_pid" 2>/dev/null' USR1
trap 'kill -TERM "$kitt_pid" 2>/dev/null' TERM INT
wait "$kitt_pid"
status=$?
while kill -0 "$kitt_pid" 2>/dev/null; do wait "$kitt_pid"; status=$?; done
if [ -f "$work/results.db" ]; then cp "$work/results.db" "{results}.part" && mv "{results}.part" "{results}"; fi
rm -rf "$work"
exit "$status"
"#,
        dir = quote(group_dir),
        command = command.join(" "),
        results = results,
        notice = notice_file(&results),
    );
    s
}

/// The jobs as `kitt plan --executor slurm` prints them.
pub fn render_text(jobs: &[SlurmJob]) -> String {
    let mut out = format!(
        "\nSlurm jobs: {} (one per engine group; submitting them is not built yet: `kitt apply --dry-run --executor slurm` writes their scripts)\n",
        jobs.len()
    );
    for job in jobs {
        let _ = writeln!(
            out,
            "  {} ({}): {} leg{}, {} min{}",
            job.job_name,
            job.group,
            job.legs.len(),
            if job.legs.len() == 1 { "" } else { "s" },
            job.time_limit_minutes,
            if job.after.is_empty() {
                String::new()
            } else {
                format!(", after {}", job.after.join(", "))
            }
        );
        let _ = writeln!(out, "    sbatch {}", job.sbatch_args.join(" "));
        let _ = writeln!(out, "    results: {}", job.results_file);
    }
    out
}

/// Writes each job's script into `dir` as `<job name>.sbatch`; the paths written.
pub fn write_scripts(jobs: &[SlurmJob], dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    jobs.iter()
        .map(|job| {
            let path = dir.join(format!("{}.sbatch", job.job_name));
            std::fs::write(&path, &job.script)?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_the_shell_only_when_they_must_be() {
        assert_eq!(quote("/shared/bin/kitt"), "/shared/bin/kitt");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote(""), "''");
        assert_eq!(job_name("my suite", "vllm/a"), "kitt-my_suite-vllm_a");
    }
}
