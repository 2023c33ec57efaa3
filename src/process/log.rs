//! Log files of child processes: their output pumped into a file up to a size cap, secrets
//! masked, with the latest bytes kept in memory for the tails quoted in errors.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Most bytes a child's log file takes; later output is counted but not written.
pub const LOG_CAP: u64 = 64 * 1024 * 1024;
/// Bytes of the latest output kept for error tails.
pub const TAIL_BYTES: usize = 16 * 1024;
/// Longest tail line quoted in an error.
pub const TAIL_LINE_CHARS: usize = 400;

/// The latest output of a child, shared between its pump and whoever reports its errors.
#[derive(Debug, Clone, Default)]
pub struct Tail {
    inner: Arc<Mutex<VecDeque<u8>>>,
    /// Set when the pump has read the output to its end.
    ended: Arc<std::sync::atomic::AtomicBool>,
}

impl Tail {
    /// Waits, up to `limit`, until the pump has read everything the child wrote: a child
    /// that just exited may have its last lines still in the pipe.
    pub async fn settle(&self, limit: std::time::Duration) {
        let until = tokio::time::Instant::now() + limit;
        while !self.ended.load(std::sync::atomic::Ordering::Acquire)
            && tokio::time::Instant::now() < until
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut buf = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let keep = bytes.len().min(TAIL_BYTES);
        buf.extend(&bytes[bytes.len() - keep..]);
        let excess = buf.len().saturating_sub(TAIL_BYTES);
        buf.drain(..excess);
    }

    /// The last `n` non-blank lines, each cut to [`TAIL_LINE_CHARS`], secrets masked.
    pub fn lines(&self, n: usize) -> Vec<String> {
        let bytes: Vec<u8> = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        last_lines(&bytes, n)
    }
}

/// The last `n` non-blank lines of `bytes` (invalid UTF-8 replaced), each cut to
/// [`TAIL_LINE_CHARS`], secrets masked.
pub fn last_lines(bytes: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| {
            let cut: String = l.chars().take(TAIL_LINE_CHARS).collect();
            let cut = if cut.len() < l.len() {
                format!("{cut} …")
            } else {
                cut
            };
            crate::redact::text(&cut).into_owned()
        })
        .collect()
}

/// The last `n` lines of a file, reading at most its last [`TAIL_BYTES`] bytes.
pub fn file_tail(path: &Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(TAIL_BYTES as u64);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    let _ = file.take(TAIL_BYTES as u64).read_to_end(&mut bytes);
    last_lines(&bytes, n)
}

/// A pipe whose read end is pumped into the log file at `path` (see [`pump`]); returns the
/// write end, to hand to a child as its stdout and stderr, and the tail of what it wrote.
/// Needs a tokio runtime.
pub fn capture(path: PathBuf, cap: u64) -> std::io::Result<(std::os::fd::OwnedFd, Tail)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let reader = tokio::net::unix::pipe::Receiver::from_owned_fd(read)?;
    let tail = Tail::default();
    tokio::spawn(pump(reader, path, tail.clone(), cap));
    Ok((write, tail))
}

/// Copies `from` into the file at `path` until it ends: up to `cap` bytes (then a note, and
/// the rest only reaches the tail), secrets masked line by line.
pub async fn pump(mut from: impl AsyncRead + Unpin, path: PathBuf, tail: Tail, cap: u64) {
    let mut file = tokio::fs::File::create(&path).await.ok();
    let mut written: u64 = 0;
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        tail.push(&chunk[..n]);
        pending.extend_from_slice(&chunk[..n]);
        // Whole lines are masked and written; a line longer than a chunk goes out as it is.
        let cut = match memchr::memrchr(b'\n', &pending) {
            Some(i) => i + 1,
            None if pending.len() >= chunk.len() => pending.len(),
            None => continue,
        };
        let rest = pending.split_off(cut);
        let lines = std::mem::replace(&mut pending, rest);
        write_capped(&mut file, &mut written, cap, &lines).await;
    }
    write_capped(&mut file, &mut written, cap, &pending).await;
    if let Some(f) = file.as_mut() {
        let _ = f.flush().await;
    }
    tail.ended.store(true, std::sync::atomic::Ordering::Release);
}

async fn write_capped(
    file: &mut Option<tokio::fs::File>,
    written: &mut u64,
    cap: u64,
    bytes: &[u8],
) {
    let Some(f) = file.as_mut() else { return };
    if bytes.is_empty() {
        return;
    }
    let masked = crate::redact::bytes(bytes);
    let room = cap.saturating_sub(*written) as usize;
    if masked.len() <= room {
        let _ = f.write_all(&masked).await;
        *written += masked.len() as u64;
        return;
    }
    let _ = f.write_all(&masked[..room]).await;
    let note =
        format!("\n[kitt: this log reached its cap of {cap} bytes; later output is not written]\n");
    let _ = f.write_all(note.as_bytes()).await;
    let _ = f.flush().await;
    *file = None;
    *written = cap;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_keep_the_latest_bytes_and_cut_long_lines() {
        let tail = Tail::default();
        tail.push(&vec![b'x'; 3 * TAIL_BYTES]);
        tail.push(b"\nlast line\n");
        let lines = tail.lines(2);
        assert_eq!(lines[1], "last line");
        assert!(lines[0].ends_with('…'));
        assert!(lines[0].chars().count() <= TAIL_LINE_CHARS + 2);
        assert_eq!(
            last_lines(b"a\n\xff\xfe\nb", 5),
            vec!["a", "\u{fffd}\u{fffd}", "b"]
        );
    }

    #[tokio::test]
    async fn the_file_stops_at_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut data = vec![b'y'; 1000];
        data.extend_from_slice(b"\ntail end\n");
        let tail = Tail::default();
        pump(&data[..], path.clone(), tail.clone(), 100).await;
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.starts_with(&"y".repeat(100)));
        assert!(written.contains("reached its cap of 100 bytes"));
        assert!(!written.contains("tail end"));
        assert_eq!(tail.lines(1), vec!["tail end"]);
    }
}
