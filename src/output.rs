//! The terminal edge: everything kitt prints goes through [`stdout`] and [`stderr`] (or the
//! `outln!`/`errln!` macros), which mask secrets line by line and survive a closed pipe.
//!
//! A reader that goes away (`kitt test list | head -1`) makes further output vanish quietly
//! and the command finishes with its own exit code; any other failure to write stdout is
//! remembered and turns a successful exit into a failure (see [`stdout_failure`]).

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which stream a writer goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How much kitt says on stderr besides errors and warnings (`--quiet`, `--verbose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors and warnings only: no progress, no notes.
    Quiet,
    Normal,
    /// Also the commands kitt launches and more frequent progress lines.
    Verbose,
}

static VERBOSITY: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);

/// Sets the verbosity for the rest of the process (once, from the global flags).
pub fn set_verbosity(v: Verbosity) {
    VERBOSITY.store(v as u8, Ordering::Relaxed);
}

/// The verbosity the global flags asked for.
pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    }
}

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);
static STDOUT_FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// A writer to stdout or stderr that masks secrets and buffers up to each line end, so a
/// secret is never split across two writes.
pub struct Out {
    stream: Stream,
    pending: Vec<u8>,
}

/// A writer to standard output.
pub fn stdout() -> Out {
    Out {
        stream: Stream::Stdout,
        pending: Vec::new(),
    }
}

/// A writer to standard error.
pub fn stderr() -> Out {
    Out {
        stream: Stream::Stderr,
        pending: Vec::new(),
    }
}

/// Whether standard error is a terminal (progress bars are drawn there).
pub fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    #[allow(clippy::disallowed_methods)] // asks, writes nothing
    io::stderr().is_terminal()
}

/// Why writing stdout failed (other than its reader closing it), if it did.
pub fn stdout_failure() -> Option<String> {
    STDOUT_FAILURE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Writes `bytes` (masked) to `stream`, swallowing a closed pipe.
pub fn emit(stream: Stream, bytes: &[u8]) {
    let closed = match stream {
        Stream::Stdout => &STDOUT_CLOSED,
        Stream::Stderr => &STDERR_CLOSED,
    };
    if closed.load(Ordering::Relaxed) || bytes.is_empty() {
        return;
    }
    let masked = crate::redact::bytes(bytes);
    let masked = neutralize_controls(&masked);
    #[allow(clippy::disallowed_methods)] // the one place that writes the real streams
    let result = match stream {
        Stream::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(&masked).and_then(|()| out.flush())
        }
        Stream::Stderr => io::stderr().lock().write_all(&masked),
    };
    if let Err(e) = result {
        closed.store(true, Ordering::Relaxed);
        if stream == Stream::Stdout && e.kind() != io::ErrorKind::BrokenPipe {
            let mut failure = STDOUT_FAILURE.lock().unwrap_or_else(|e| e.into_inner());
            failure.get_or_insert_with(|| format!("cannot write to standard output: {e}"));
        }
    }
}

/// Text that reaches a terminal cannot steer it: escape and other control characters
/// (except tab and line ends) are shown as `^X` instead of being sent. kitt itself prints
/// none; they come from servers, plugins and files.
fn neutralize_controls(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let control = |b: u8| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f;
    if !bytes.iter().any(|&b| control(b)) {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + 8);
    for &b in bytes {
        if control(b) {
            out.push(b'^');
            out.push(if b == 0x7f { b'?' } else { b + 0x40 });
        } else {
            out.push(b);
        }
    }
    std::borrow::Cow::Owned(out)
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last) = memchr::memrchr(b'\n', &self.pending) {
            let rest = self.pending.split_off(last + 1);
            let lines = std::mem::replace(&mut self.pending, rest);
            emit(self.stream, &lines);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        emit(self.stream, &pending);
        Ok(())
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// `crate::outln!` through the output edge.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!($crate::output::stdout(), $($arg)*);
    }};
}

/// `crate::errln!` through the output edge.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!($crate::output::stderr(), $($arg)*);
    }};
}

/// A note on stderr that `--quiet` leaves out (`wrote FILE`, progress); errors and warnings
/// use `errln!`.
#[macro_export]
macro_rules! noteln {
    ($($arg:tt)*) => {{
        if $crate::output::verbosity() != $crate::output::Verbosity::Quiet {
            use std::io::Write as _;
            let _ = writeln!($crate::output::stderr(), $($arg)*);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        assert_eq!(
            neutralize_controls(b"red \x1b[31mtext\x07\tok\n").as_ref(),
            b"red ^[[31mtext^G\tok\n"
        );
        assert!(matches!(
            neutralize_controls(b"plain\n"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn lines_are_held_until_their_end() {
        let mut out = Out {
            stream: Stream::Stderr,
            pending: Vec::new(),
        };
        out.write_all(b"half a li").unwrap();
        assert_eq!(out.pending, b"half a li");
        out.write_all(b"ne\nnext").unwrap();
        assert_eq!(out.pending, b"next");
        out.pending.clear();
    }
}
