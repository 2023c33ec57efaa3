//! The supervisor every process kitt starts runs under (`kitt __supervise`): it starts the
//! real program as its child, adopts every orphan below it (a child subreaper, so even a
//! `setsid` grandchild stays its descendant), and ends the whole tree when the program
//! exits, when kitt asks (SIGTERM with a grace period, SIGINT at once), or when kitt dies
//! in any way, SIGKILL included (a parent-death signal plus a check of its parent).

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getppid};

use super::procfs;

/// The hidden first argument that selects the supervisor.
pub const ARG: &str = "__supervise";

/// How long descendants get between SIGTERM and SIGKILL once the program has ended.
const STRAGGLER_GRACE: Duration = Duration::from_millis(500);
/// How often the supervisor checks that kitt is still its parent.
const PARENT_CHECK: Duration = Duration::from_millis(250);

/// What the supervisor was asked to run.
#[derive(Debug)]
struct Request {
    parent: i32,
    grace: Duration,
    program: OsString,
    args: Vec<OsString>,
}

fn parse(args: &[OsString]) -> Result<Request, String> {
    let mut parent = None;
    let mut grace = Duration::from_secs(2);
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].to_string_lossy();
        match arg.as_ref() {
            "--parent" => {
                parent = args.get(i + 1).and_then(|v| v.to_str()?.parse().ok());
                i += 2;
            }
            "--grace-ms" => {
                let ms: u64 = args
                    .get(i + 1)
                    .and_then(|v| v.to_str()?.parse().ok())
                    .ok_or("--grace-ms needs milliseconds")?;
                grace = Duration::from_millis(ms);
                i += 2;
            }
            "--" => {
                let program = args.get(i + 1).ok_or("no program after --")?.clone();
                return Ok(Request {
                    parent: parent.ok_or("--parent PID is required")?,
                    grace,
                    program,
                    args: args[i + 2..].to_vec(),
                });
            }
            other => return Err(format!("unknown supervisor argument `{other}`")),
        }
    }
    Err("no program after --".into())
}

/// Runs the supervisor when the process was started as one; returns its exit code.
pub fn main_if_asked() -> Option<u8> {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_none_or(|a| a != ARG) {
        return None;
    }
    Some(match parse(&args[2..]) {
        Ok(request) => supervise(request),
        Err(e) => {
            crate::errln!("kitt supervisor: {e}");
            crate::exit::USAGE
        }
    })
}

/// How the supervision loop ended.
enum Ending {
    /// The program exited with this status.
    Exited(std::process::ExitStatus),
    /// kitt asked for a stop (with or without grace) or died.
    Stopped,
}

fn supervise(request: Request) -> u8 {
    let handled: SigSet = [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
    ]
    .into_iter()
    .collect();
    if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled), None) {
        crate::errln!("kitt supervisor: cannot block signals: {e}");
        return crate::exit::INTERNAL;
    }
    let signals =
        match SignalFd::with_flags(&handled, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
            Ok(fd) => fd,
            Err(e) => {
                crate::errln!("kitt supervisor: cannot watch signals: {e}");
                return crate::exit::INTERNAL;
            }
        };
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGUSR1);
    if getppid().as_raw() != request.parent {
        return crate::exit::INTERRUPTED; // kitt died before the supervisor was set up
    }
    let mut command = std::process::Command::new(&request.program);
    command.args(&request.args);
    // SAFETY: only async-signal-safe calls (sigprocmask, prctl) between fork and exec.
    unsafe {
        command.pre_exec(|| {
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            Ok(())
        });
    }
    let child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            crate::errln!(
                "kitt supervisor: cannot run `{}`: {e}",
                request.program.to_string_lossy()
            );
            // 127 as a shell says "command not found"; the host reads the reason from stderr.
            return 127;
        }
    };
    let program = child.id() as i32;
    let me = std::process::id() as i32;
    let ending = watch(&signals, &request, program);
    match ending {
        Ending::Exited(status) => {
            end_tree(me, Duration::ZERO, None);
            exit_like(status)
        }
        Ending::Stopped => crate::exit::INTERRUPTED,
    }
}

/// Waits for the program's end, a stop request or kitt's death.
fn watch(signals: &SignalFd, request: &Request, program: i32) -> Ending {
    let me = std::process::id() as i32;
    loop {
        if getppid().as_raw() != request.parent {
            end_tree(me, STRAGGLER_GRACE, Some(program));
            return Ending::Stopped;
        }
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(signals),
            PollFlags::POLLIN,
        )];
        let timeout =
            PollTimeout::try_from(PARENT_CHECK.as_millis() as i32).unwrap_or(PollTimeout::NONE);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => std::thread::sleep(PARENT_CHECK),
        }
        while let Ok(Some(info)) = signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => {
                    if let Some(status) = reap(program) {
                        return Ending::Exited(status);
                    }
                }
                Ok(Signal::SIGTERM) | Ok(Signal::SIGHUP) => {
                    let _ = kill(Pid::from_raw(program), Signal::SIGTERM);
                    end_tree(me, request.grace, Some(program));
                    return Ending::Stopped;
                }
                Ok(Signal::SIGINT) => {
                    end_tree(me, Duration::ZERO, Some(program));
                    return Ending::Stopped;
                }
                _ => {} // SIGUSR1: the parent-death signal; the check above decides
            }
        }
    }
}

/// Reaps every ended child; returns the program's status once it is among them.
fn reap(program: i32) -> Option<std::process::ExitStatus> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => {
                if pid.as_raw() == program {
                    found = Some(std::process::ExitStatus::from_raw((code & 0xff) << 8));
                }
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) => {
                if pid.as_raw() == program {
                    found = Some(std::process::ExitStatus::from_raw(signal as i32));
                }
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(_) => {}
        }
    }
}

/// Ends every descendant of `root`: waits up to `grace` for `program` to exit on its own,
/// then SIGTERM to the rest, a short wait, SIGKILL, and reaping until none is left.
fn end_tree(root: i32, grace: Duration, program: Option<i32>) {
    if let Some(program) = program {
        let until = Instant::now() + grace;
        while Instant::now() < until && procfs::stat(program).is_some_and(|s| s.ppid == root) {
            if reap(program).is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    for signal in [Signal::SIGTERM, Signal::SIGKILL] {
        let left = procfs::descendants(root);
        if left.is_empty() {
            break;
        }
        for pid in left {
            let _ = kill(Pid::from_raw(pid), signal);
        }
        let until = Instant::now() + STRAGGLER_GRACE;
        while Instant::now() < until {
            let _ = reap(-1);
            if procfs::descendants(root).is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Whatever forked during the kill is adopted by this subreaper: repeat until none.
    for _ in 0..50 {
        let left = procfs::descendants(root);
        if left.is_empty() {
            break;
        }
        for pid in left {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = reap(-1);
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = reap(-1);
}

/// Exits the way the program did: its exit code, or the same signal.
fn exit_like(status: std::process::ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return code as u8;
    }
    if let Some(signal) = status.signal().and_then(|s| Signal::try_from(s).ok()) {
        // SAFETY: resetting a disposition to the default is always sound.
        unsafe {
            let _ = nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl);
        }
        let mut only: SigSet = SigSet::empty();
        only.add(signal);
        let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&only), None);
        let _ = kill(Pid::from_raw(std::process::id() as i32), signal);
        return 128 + signal as u8;
    }
    crate::exit::FAILED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_and_mistakes_are_named() {
        let args: Vec<OsString> = ["--parent", "7", "--grace-ms", "300", "--", "sh", "-c", "x"]
            .iter()
            .map(OsString::from)
            .collect();
        let r = parse(&args).unwrap();
        assert_eq!(r.parent, 7);
        assert_eq!(r.grace, Duration::from_millis(300));
        assert_eq!(r.program, "sh");
        assert_eq!(r.args.len(), 2);
        assert!(parse(&args[..4]).unwrap_err().contains("no program"));
        assert!(parse(&args[2..]).unwrap_err().contains("--parent"));
    }
}
