//! Child processes: every program kitt starts (native engines, plugins, git) runs under
//! kitt's supervisor so that none outlives kitt, however kitt ends; and how such a process
//! tree is stopped.

pub mod interrupt;
pub mod log;
pub mod owner;
pub mod procfs;
pub mod supervisor;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

static EXECUTABLE: OnceLock<PathBuf> = OnceLock::new();

/// Names the kitt executable that serves as the supervisor (the `kitt` binary sets its own
/// path at start; a program embedding the library sets the path of a kitt binary).
pub fn set_executable(path: impl Into<PathBuf>) {
    let _ = EXECUTABLE.set(path.into());
}

/// The kitt executable that serves as supervisor and guard, or why there is none.
pub fn executable() -> std::io::Result<&'static PathBuf> {
    EXECUTABLE.get().ok_or_else(|| {
        std::io::Error::other(
            "kitt's process supervisor is not available (kitt::process::set_executable was not called)",
        )
    })
}

/// A command that runs `program` under the supervisor, in a process group of its own whose
/// leader is the supervisor. `grace` is how long the program gets between SIGTERM and the
/// end of its tree when it is stopped with [`stop`].
pub fn supervised(
    program: impl AsRef<OsStr>,
    grace: Duration,
) -> std::io::Result<tokio::process::Command> {
    let mut command = tokio::process::Command::new(executable()?);
    command
        .arg(supervisor::ARG)
        .arg("--parent")
        .arg(std::process::id().to_string())
        .arg("--grace-ms")
        .arg(grace.as_millis().to_string())
        .arg("--")
        .arg(program)
        .process_group(0);
    Ok(command)
}

/// Stops a supervised tree: SIGTERM to the group (the program and its supervisor), up to
/// `grace` plus a margin for the supervisor to end everything, then SIGKILL to the group.
pub async fn stop(child: &mut tokio::process::Child, pgid: i32, grace: Duration) {
    let group = Pid::from_raw(pgid);
    let _ = killpg(group, Signal::SIGTERM);
    let margin = grace + Duration::from_secs(2);
    if tokio::time::timeout(margin, child.wait()).await.is_err() {
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.wait().await;
    }
    let _ = killpg(group, Signal::SIGKILL);
}

/// Stops a supervised tree at once, without awaiting (drop paths): SIGINT asks the
/// supervisor to kill everything below it; a second later the group is killed regardless.
pub fn stop_now(child: &mut tokio::process::Child, pgid: i32) {
    let _ = kill(Pid::from_raw(pgid), Signal::SIGINT);
    for _ in 0..50 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    let _ = child.start_kill();
    let _ = child.try_wait();
}
