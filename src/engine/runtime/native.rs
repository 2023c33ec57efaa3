//! The native runtime: the engine's own binary under kitt's supervisor (its own process
//! group; nothing below it outlives kitt), its output pumped into a capped log in the run
//! directory, terminated then killed on cleanup or drop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::engine::error::{EngineError, ErrorKind};
use crate::engine::launch::Command;
use crate::process::log::{LOG_CAP, Tail, capture};

/// Time a process gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// A running engine process (and its group).
#[derive(Debug)]
pub struct NativeProcess {
    engine: String,
    child: Option<tokio::process::Child>,
    pgid: i32,
    log_path: PathBuf,
    tail: Tail,
}

impl NativeProcess {
    /// Starts `command` with its output in `log_dir/<engine>.log`. `secrets` are set in the
    /// process environment only.
    pub fn spawn(
        engine: &str,
        command: &Command,
        secrets: &[(String, String)],
        log_dir: &Path,
    ) -> Result<NativeProcess, EngineError> {
        let program = command.program.as_deref().unwrap_or_default();
        let fail = |kind, msg: String| EngineError::new(engine, kind, msg);
        std::fs::create_dir_all(log_dir).map_err(|e| {
            fail(
                ErrorKind::Failed,
                format!("cannot create log directory {}: {e}", log_dir.display()),
            )
        })?;
        let log_path = log_dir.join(format!("{}.log", sanitize(engine)));
        let cannot_log = |e: std::io::Error| {
            fail(
                ErrorKind::Failed,
                format!("cannot create {}: {e}", log_path.display()),
            )
        };
        // stdout and stderr share one log, as a terminal would show them.
        let (log, tail) = capture(log_path.clone(), LOG_CAP).map_err(cannot_log)?;
        let log_err = log.try_clone().map_err(cannot_log)?;
        if !program_exists(program) {
            return Err(fail(
                ErrorKind::Config,
                format!("cannot start `{program}`: no such file or program on PATH"),
            )
            .hint(format!(
                "install `{program}` or put its path in the engine's `config.binary`"
            )));
        }
        let mut cmd = crate::process::supervised(program, GRACE)
            .map_err(|e| fail(ErrorKind::Failed, e.to_string()))?;
        cmd.args(&command.args)
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .envs(secrets.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(false);
        let child = cmd.spawn().map_err(|e| {
            let err = fail(ErrorKind::Config, format!("cannot start `{program}`: {e}"));
            if e.kind() == std::io::ErrorKind::NotFound {
                err.hint(format!(
                    "install `{program}` or put its path in the engine's `config.binary`"
                ))
            } else {
                err
            }
        })?;
        let pid = child.id().ok_or_else(|| {
            fail(
                ErrorKind::Failed,
                format!("`{program}` exited before kitt could see it"),
            )
        })?;
        Ok(NativeProcess {
            engine: engine.to_string(),
            child: Some(child),
            pgid: pid as i32,
            log_path,
            tail,
        })
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The process id of the engine's supervisor (also the process group id).
    pub fn pid(&self) -> i32 {
        self.pgid
    }

    /// Fails with the last log lines when the process has exited.
    pub fn check_alive(&mut self) -> Result<(), EngineError> {
        let Some(child) = self.child.as_mut() else {
            return Err(EngineError::new(
                &self.engine,
                ErrorKind::Failed,
                "was already stopped",
            ));
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(EngineError::new(
                &self.engine,
                ErrorKind::Failed,
                format!("the process exited during start-up ({status})"),
            )
            .logs(self.log_tail(20))
            .hint(format!("see the full log at {}", self.log_path.display()))),
            Err(e) => Err(EngineError::new(
                &self.engine,
                ErrorKind::Failed,
                format!("cannot check the process: {e}"),
            )),
        }
    }

    /// The last `n` lines of the engine's output.
    pub fn log_tail(&self, n: usize) -> Vec<String> {
        self.tail.lines(n)
    }

    /// The last `n` lines once a process that exited has had its output read to the end
    /// (waiting at most a second), so an error quotes its last words.
    pub async fn final_log_tail(&mut self, n: usize) -> Vec<String> {
        let exited = self
            .child
            .as_mut()
            .is_none_or(|c| matches!(c.try_wait(), Ok(Some(_))));
        if exited {
            self.tail.settle(std::time::Duration::from_secs(1)).await;
        }
        self.tail.lines(n)
    }

    /// SIGTERM, the grace period, then the whole tree is ended by the supervisor.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            crate::process::stop(&mut child, self.pgid, GRACE).await;
        }
    }
}

impl Drop for NativeProcess {
    /// The path taken on panic, error or cancellation: no grace, the tree is killed.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::process::stop_now(&mut child, self.pgid);
        }
    }
}

/// Whether `program` names a file, or a program found on `PATH`.
fn program_exists(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
