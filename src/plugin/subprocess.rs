//! The subprocess transport: the plugin runs in its own process group with a cleared
//! environment, speaks newline-delimited JSON-RPC on stdin/stdout, writes stderr to the run
//! directory; every call has a deadline, and a plugin that times out, crashes or writes
//! garbage is killed (group, TERM then KILL) and reported with its last stderr lines.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::error::{PluginError, outcome};
use super::host::{Host, NoHost, Served};
use super::manifest::{Manifest, Runtime};
use super::protocol::{self, HostCall, Message};
use crate::process::log::{Tail, capture};

/// The longest line a plugin may write (a longer one is a flood, and fatal).
const MAX_LINE: usize = 16 * 1024 * 1024;
/// Grace between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// Handshake deadline when the manifest sets none.
const DEFAULT_STARTUP: Duration = Duration::from_secs(10);
/// Most bytes of a plugin's stderr kept in its log file.
const STDERR_CAP: u64 = 16 * 1024 * 1024;

/// A running plugin process.
pub struct PluginProcess {
    name: String,
    child: Child,
    pgid: i32,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Result<String, String>>,
    stderr_path: PathBuf,
    stderr: Tail,
    /// Log lines of the current call and every sample sent.
    served: Served,
    next_id: u64,
    /// Features the plugin declared in its handshake.
    pub features: Vec<String>,
}

/// Reads stdout into lines, refusing floods.
async fn read_lines(
    mut out: tokio::process::ChildStdout,
    tx: mpsc::Sender<Result<String, String>>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match out.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Only the new bytes can hold a newline; earlier ones were searched already.
        let searched = buf.len();
        buf.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        let mut from = searched;
        while let Some(pos) = buf[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| p + from)
        {
            let text = String::from_utf8_lossy(&buf[start..pos]).trim().to_string();
            if !text.is_empty() && tx.send(Ok(text)).await.is_err() {
                return;
            }
            start = pos + 1;
            from = start;
        }
        buf.drain(..start);
        if buf.len() > MAX_LINE {
            let _ = tx
                .send(Err(format!(
                    "it wrote more than {} MiB without a newline",
                    MAX_LINE >> 20
                )))
                .await;
            return;
        }
    }
}

impl PluginProcess {
    /// Starts the plugin in `dir` and completes the `initialize` handshake.
    pub async fn start(
        dir: &Path,
        manifest: &Manifest,
        log_dir: &Path,
    ) -> Result<PluginProcess, PluginError> {
        let name = manifest.name.clone();
        let fail = |reason: String| PluginError::Start {
            plugin: name.clone(),
            reason,
        };
        let Runtime::Subprocess {
            command,
            startup_timeout,
            env,
        } = &manifest.runtime
        else {
            return Err(fail("it is not a subprocess plugin".into()));
        };
        let program = &command[0];
        let program_path = if program.contains('/') {
            dir.join(program)
        } else {
            PathBuf::from(program)
        };
        std::fs::create_dir_all(log_dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", log_dir.display())))?;
        let stderr_path = log_dir.join(format!("plugin-{name}.stderr.log"));
        let (stderr_fd, stderr) = capture(stderr_path.clone(), STDERR_CAP)
            .map_err(|e| fail(format!("cannot create {}: {e}", stderr_path.display())))?;
        let cookie = format!(
            "{:016x}",
            crate::seed::mix(std::process::id() as u64, now_nanos())
        );
        let mut cmd =
            crate::process::supervised(&program_path, GRACE).map_err(|e| fail(e.to_string()))?;
        cmd.args(&command[1..])
            .current_dir(dir)
            .env_clear()
            .envs(
                ["PATH", "LANG", "HOME"]
                    .iter()
                    .chain(env.iter().map(String::as_str).collect::<Vec<_>>().iter())
                    .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))),
            )
            .env("KITT_PLUGIN_COOKIE", &cookie)
            .env("KITT_PLUGIN_DIR", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_fd))
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("cannot run `{}`: {e}", program_path.display())))?;
        let pid = child
            .id()
            .ok_or_else(|| fail("it exited before kitt could see it".into()))?;
        let stdin = child.stdin.take().ok_or_else(|| fail("no stdin".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| fail("no stdout".into()))?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(read_lines(stdout, tx));
        let mut process = PluginProcess {
            name,
            child,
            pgid: pid as i32,
            stdin,
            lines: rx,
            stderr_path,
            stderr,
            served: Served::default(),
            next_id: 1,
            features: Vec::new(),
        };
        let deadline = startup_timeout.map_or(DEFAULT_STARTUP, |d| d.0);
        let id = process.take_id();
        let answer = process
            .exchange(
                Message::initialize(id, &process.name.clone()),
                "initialize",
                deadline,
                &NoHost,
            )
            .await?;
        match protocol::check_handshake(&answer) {
            Ok(features) => process.features = features,
            Err(reason) => return Err(process.broken("initialize", reason).await),
        }
        Ok(process)
    }

    /// The samples the plugin sent so far (`sample` notifications), handed over once.
    pub fn take_samples(&mut self) -> Vec<(String, f64)> {
        self.served.take_samples()
    }

    /// The process id of the plugin's supervisor (also its process group's id).
    pub fn pid(&self) -> i32 {
        self.pgid
    }

    /// Why the process has ended, if it has.
    pub fn exit_status(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// The last stderr lines, for errors raised outside a call.
    pub fn last_stderr(&self) -> String {
        self.stderr_tail()
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The last lines the plugin wrote to stderr, formatted for an error message.
    fn stderr_tail(&self) -> String {
        let tail = self.stderr.lines(10);
        if tail.is_empty() {
            String::new()
        } else {
            format!(
                "\n  its last stderr lines ({}):\n    {}",
                self.stderr_path.display(),
                tail.join("\n    ")
            )
        }
    }

    /// Kills the group and builds the protocol error.
    async fn broken(&mut self, method: &str, reason: String) -> PluginError {
        self.kill().await;
        PluginError::Protocol {
            plugin: self.name.clone(),
            method: method.into(),
            reason,
            stderr: self.stderr_tail(),
        }
    }

    /// Calls `method` and waits for its answer until `deadline`, serving the plugin's own
    /// requests (`generate` on the node's engine) and notifications meanwhile.
    pub async fn call<H: Host>(
        &mut self,
        method: &str,
        params: Value,
        deadline: Duration,
        host: &H,
    ) -> Result<Value, PluginError> {
        let id = self.take_id();
        self.exchange(Message::request(id, method, params), method, deadline, host)
            .await
    }

    async fn exchange<H: Host>(
        &mut self,
        request: Message,
        method: &str,
        deadline: Duration,
        host: &H,
    ) -> Result<Value, PluginError> {
        let id = request.id.clone();
        self.served.begin();
        if let Err(e) = self.send(&request).await {
            return Err(self.exited(method, &e).await);
        }
        let until = Instant::now() + deadline;
        loop {
            let line = match tokio::time::timeout_at(until, self.lines.recv()).await {
                Err(_) => {
                    self.kill().await;
                    return Err(PluginError::Timeout {
                        plugin: self.name.clone(),
                        method: method.into(),
                        after: deadline,
                        stderr: self.stderr_tail(),
                    });
                }
                Ok(None) => return Err(self.exited(method, "stdout closed").await),
                Ok(Some(Err(reason))) => return Err(self.broken(method, reason).await),
                Ok(Some(Ok(line))) => line,
            };
            let msg: Message = match serde_json::from_str(&line) {
                Ok(m) => m,
                Err(_) => {
                    let preview: String = line.chars().take(120).collect();
                    return Err(self
                        .broken(
                            method,
                            format!("it wrote something that is not JSON-RPC: `{preview}`"),
                        )
                        .await);
                }
            };
            let msg = match HostCall::from_message(msg) {
                Ok(call) => {
                    if let Some(answer) = self.served.serve(&self.name, host, call).await {
                        let _ = self.send(&answer).await;
                    }
                    continue;
                }
                Err(response) => *response,
            };
            if msg.id != id {
                return Err(self
                    .broken(
                        method,
                        format!("it answered request {:?}, not {:?}", msg.id, id),
                    )
                    .await);
            }
            self.served.end(&self.name, host);
            return outcome(&self.name, method, msg);
        }
    }

    async fn send(&mut self, m: &Message) -> Result<(), String> {
        let mut line = serde_json::to_vec(m).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.stdin
            .write_all(&line)
            .await
            .map_err(|e| e.to_string())?;
        self.stdin.flush().await.map_err(|e| e.to_string())
    }

    async fn exited(&mut self, method: &str, why: &str) -> PluginError {
        let status = match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(s)) => s.to_string(),
            _ => why.to_string(),
        };
        self.kill().await;
        PluginError::Exited {
            plugin: self.name.clone(),
            method: method.into(),
            status,
            stderr: self.stderr_tail(),
        }
    }

    /// SIGTERM, the grace period, then the whole tree is ended by the supervisor.
    async fn kill(&mut self) {
        crate::process::stop(&mut self.child, self.pgid, GRACE).await;
    }

    /// Asks the plugin to exit (`shutdown`), then stops the group whatever it does.
    pub async fn stop(mut self) {
        let _ = self
            .send(&Message::notification("shutdown", json!({})))
            .await;
        if tokio::time::timeout(GRACE, self.child.wait())
            .await
            .is_err()
        {
            self.kill().await;
        }
        // Children it left behind were ended by its supervisor when it exited.
    }
}

impl std::fmt::Debug for PluginProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginProcess")
            .field("name", &self.name)
            .field("pid", &self.pgid)
            .finish_non_exhaustive()
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            crate::process::stop_now(&mut self.child, self.pgid);
        }
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
