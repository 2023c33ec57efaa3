//! Running the kitt binary in a directory of its own (store, data and config inside it),
//! with its peak memory sampled, for the reliability, hostile-server and chaos tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A directory of one test's own: the store, the data and config directories, suites.
pub struct Env {
    pub dir: tempfile::TempDir,
}

/// What a finished kitt did.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Peak resident memory of the kitt process, in KiB (VmHWM).
    pub peak_kib: u64,
    pub elapsed: Duration,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout and stderr, for assertion messages and searches.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A suite on the simulator with `nodes` (YAML list items, indented by 2).
pub fn sim_suite(name: &str, nodes: &str) -> String {
    format!(
        "apiVersion: kitt/v1\nkind: Suite\nmetadata: {{name: {name}, version: 1.0.0}}\n\
         engines:\n  sim: {{uses: simulator, config: {{ttft: 5ms, itl: 1ms, output_tokens: 4, prefill: 0ms}}}}\n\
         nodes:\n{nodes}"
    )
}

impl Env {
    pub fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        std::fs::create_dir_all(env.data()).expect("data dir");
        env
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// kitt's data directory for this test.
    pub fn data(&self) -> PathBuf {
        self.path("data")
    }

    /// The results store for this test.
    pub fn store(&self) -> PathBuf {
        self.path("kitt.db")
    }

    /// Writes a file (creating its directories) and returns its path.
    pub fn write(&self, rel: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }

    /// A kitt command in this directory, with its own store, data and config.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = isolated(self.dir.path());
        c.args(args).current_dir(self.dir.path());
        c
    }

    /// Runs kitt to the end (failing the test past `limit`), sampling its peak memory.
    pub fn run(&self, args: &[&str], limit: Duration) -> Run {
        run_measured(&mut self.command(args), limit)
    }

    /// Runs kitt with a generous limit.
    pub fn kitt(&self, args: &[&str]) -> Run {
        self.run(args, Duration::from_secs(120))
    }
}

/// The kitt binary cut off from the developer's machine: its data directory, store and
/// config under `home`, no plugin directories from the environment, no CI summary file.
pub fn isolated(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kitt"));
    c.env("KITT_STORE", home.join("kitt.db"))
        .env("KITT_DATA_DIR", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("xdg-data"))
        .env_remove("KITT_PLUGIN_DIR")
        .env_remove("GITHUB_STEP_SUMMARY");
    c
}

/// A directory for tests that share one isolated kitt home for the whole test process.
pub fn shared_home() -> &'static Path {
    static HOME: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    HOME.get_or_init(|| tempfile::tempdir().expect("tempdir"))
        .path()
}

/// Peak resident memory of a live process, in KiB.
pub fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `command` with piped output until it exits, sampling its peak memory every 20 ms;
/// kills it and fails the test when it runs past `limit`.
pub fn run_measured(command: &mut Command, limit: Duration) -> Run {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kitt starts");
    let reader = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = from.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("stdout")));
    let err = reader(Box::new(child.stderr.take().expect("stderr")));
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = peak_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().unwrap_or_default();
            panic!("kitt ran longer than {limit:?}; stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        peak_kib: peak,
        elapsed: started.elapsed(),
    }
}

/// Every process whose command line mentions `marker` (zombies excluded).
pub fn processes_with(marker: &str) -> Vec<i32> {
    super::processes_with(marker)
}

/// Waits up to `limit` for `check` to hold.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// The files below `dir`, relative, sorted.
pub fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).expect("below").display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// A child process killed when dropped, so a failing test leaves no kitt behind.
pub struct Spawned(pub Option<std::process::Child>);

impl Spawned {
    pub fn new(child: std::process::Child) -> Spawned {
        Spawned(Some(child))
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, std::process::Child::id)
    }

    /// SIGKILL, and wait for it.
    pub fn kill(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The child, no longer killed on drop.
    pub fn take(&mut self) -> std::process::Child {
        self.0.take().expect("a child")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}
