//! Rendering a report in a child process (`kitt __render`), because templates are code
//! from the suite's repository and plugins: fuel bounds their steps, but only a process of
//! their own can bound their memory (an data-segment limit), their output (read up to a
//! cap), their time (a deadline) and be stopped at once on Ctrl-C.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::render::RenderError;
use crate::registry::{ReporterInfo, ReporterTemplates};

/// The hidden first argument that selects the renderer.
pub const ARG: &str = "__render";
/// Most memory a rendering may use, in bytes.
pub const MEMORY_LIMIT: u64 = 1024 * 1024 * 1024;
/// Largest report a rendering may produce, in bytes.
pub const OUTPUT_LIMIT: usize = 64 * 1024 * 1024;
/// Longest a rendering may take.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// What the renderer is asked to render.
#[derive(Debug, Serialize, Deserialize)]
struct Job {
    reporter: String,
    /// A template-only plugin's directory and files; none for a built-in.
    plugin: Option<(PathBuf, Vec<String>)>,
    dirs: Vec<PathBuf>,
    context: serde_json::Value,
}

/// Renders `info` over `context` in a child process; `cancel` resolving stops it.
pub async fn render(
    info: &ReporterInfo,
    context: &impl Serialize,
    dirs: &[PathBuf],
    cancel: impl std::future::Future<Output = ()>,
) -> Result<String, RenderError> {
    let fail = |detail: String| RenderError {
        reporter: info.name.clone(),
        detail,
    };
    let job = Job {
        reporter: info.name.clone(),
        plugin: match &info.templates {
            ReporterTemplates::BuiltIn => None,
            ReporterTemplates::Plugin { dir, files } => Some((dir.clone(), files.clone())),
            ReporterTemplates::Subprocess { .. } => {
                return Err(fail(
                    "a subprocess reporter is not rendered from templates".into(),
                ));
            }
        },
        dirs: dirs.to_vec(),
        context: serde_json::to_value(context).map_err(|e| fail(e.to_string()))?,
    };
    let input = serde_json::to_vec(&job).map_err(|e| fail(e.to_string()))?;
    drop(job);
    let exe = std::env::current_exe().map_err(|e| fail(format!("cannot find kitt: {e}")))?;
    let mut command = tokio::process::Command::new(exe);
    command
        .arg(ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: only async-signal-safe calls (prctl, setrlimit) between fork and exec.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_DATA,
                MEMORY_LIMIT,
                MEMORY_LIMIT,
            )?;
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| fail(format!("cannot start the renderer: {e}")))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(fail("the renderer has no pipes".into()));
    };
    let feed = async move {
        let _ = stdin.write_all(&input).await;
        drop(stdin);
    };
    let read_out = read_capped(stdout, OUTPUT_LIMIT);
    let read_err = read_capped(stderr, 64 * 1024);
    let work = async {
        let ((), out, err) = tokio::join!(feed, read_out, read_err);
        let status = child.wait().await;
        (out, err, status)
    };
    let (out, err, status) = tokio::select! {
        done = tokio::time::timeout(DEADLINE, work) => match done {
            Ok(done) => done,
            Err(_) => {
                return Err(fail(format!(
                    "rendering took longer than {}s and was stopped",
                    DEADLINE.as_secs()
                )));
            }
        },
        () = cancel => return Err(fail("interrupted".into())),
    };
    let err_text = String::from_utf8_lossy(&err.bytes).trim().to_string();
    if out.over {
        return Err(fail(format!(
            "the report is larger than {} MiB; it was not written",
            OUTPUT_LIMIT >> 20
        )));
    }
    match status {
        Ok(s) if s.success() => {
            String::from_utf8(out.bytes).map_err(|_| fail("the report is not UTF-8".into()))
        }
        Ok(s) if s.code() == Some(1) => Err(fail(err_text)),
        Ok(s) if err_text.contains("memory allocation") || s.code().is_none() => {
            Err(fail(format!(
                "the template needed more than the {} MiB memory limit and was stopped ({s})",
                MEMORY_LIMIT >> 20
            )))
        }
        Ok(s) => Err(fail(format!("the renderer failed ({s}): {err_text}"))),
        Err(e) => Err(fail(format!("the renderer was lost: {e}"))),
    }
}

/// What a capped read got.
struct Capped {
    bytes: Vec<u8>,
    over: bool,
}

async fn read_capped(mut from: impl tokio::io::AsyncRead + Unpin, cap: usize) -> Capped {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut chunk).await {
            Ok(0) | Err(_) => return Capped { bytes, over: false },
            Ok(n) if bytes.len() + n > cap => return Capped { bytes, over: true },
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The renderer's side: reads the job on stdin, writes the report on stdout; an error goes
/// to stderr with exit code 1.
pub fn child_main() -> u8 {
    use std::io::Read;
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        return crate::exit::FAILED;
    }
    let job: Job = match serde_json::from_slice(&input) {
        Ok(j) => j,
        Err(e) => {
            crate::errln!("the render job is not readable: {e}");
            return crate::exit::FAILED;
        }
    };
    drop(input);
    let info = ReporterInfo {
        name: job.reporter.clone(),
        description: String::new(),
        params_schema: serde_json::Value::Null,
        templates: match job.plugin {
            None => ReporterTemplates::BuiltIn,
            Some((dir, files)) => ReporterTemplates::Plugin { dir, files },
        },
    };
    match super::render::render_in(&info, &job.context, &job.dirs) {
        Ok(text) => {
            crate::output::emit(crate::output::Stream::Stdout, text.as_bytes());
            match crate::output::stdout_failure() {
                None => crate::exit::OK,
                Some(_) => crate::exit::INTERNAL,
            }
        }
        Err(e) => {
            crate::errln!("{}", e.detail);
            crate::exit::FAILED
        }
    }
}
