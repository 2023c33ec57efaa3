//! The native runtime: the engine's own binary in its own process group, logging to the
//! run directory, terminated then killed (the whole group) on cleanup or drop.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::engine::error::{EngineError, ErrorKind, last_lines};
use crate::engine::launch::Command;

/// Time a process gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// A running engine process (and its group).
#[derive(Debug)]
pub struct NativeProcess {
    engine: String,
    child: Option<tokio::process::Child>,
    pgid: Pid,
    log_path: PathBuf,
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
        let log = File::create(&log_path).map_err(|e| {
            fail(
                ErrorKind::Failed,
                format!("cannot create {}: {e}", log_path.display()),
            )
        })?;
        let log_err = log.try_clone().map_err(|e| {
            fail(
                ErrorKind::Failed,
                format!("cannot share {}: {e}", log_path.display()),
            )
        })?;
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(&command.args)
            .envs(command.env.iter().map(|(k, v)| (k, v)))
            .envs(secrets.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
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
        let pgid = Pid::from_raw(pid as i32);
        Ok(NativeProcess {
            engine: engine.to_string(),
            child: Some(child),
            pgid,
            log_path,
        })
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The process id (also the process group id).
    pub fn pid(&self) -> i32 {
        self.pgid.as_raw()
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

    /// The last `n` lines of the engine's log.
    pub fn log_tail(&self, n: usize) -> Vec<String> {
        std::fs::read(&self.log_path)
            .map(|b| last_lines(&String::from_utf8_lossy(&b), n))
            .unwrap_or_default()
    }

    /// SIGTERM to the group, SIGKILL after the grace period, then reaps the process.
    pub async fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = killpg(self.pgid, Signal::SIGTERM);
        if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
            let _ = killpg(self.pgid, Signal::SIGKILL);
            let _ = child.wait().await;
        }
        // Children that left the group leader behind still get the signal.
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }
}

impl Drop for NativeProcess {
    /// The path taken on panic, error or cancellation: no grace, the group is killed.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = killpg(self.pgid, Signal::SIGTERM);
            for _ in 0..20 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = killpg(self.pgid, Signal::SIGKILL);
            let _ = child.start_kill();
            let _ = child.try_wait();
        }
    }
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
