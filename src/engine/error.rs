//! Errors starting, checking and stopping an engine: which engine, what happened, what to do.

use std::fmt;

/// What kind of failure, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A service kitt needs is missing or unreachable (Docker, an endpoint): exit 69.
    Unavailable,
    /// The model or the engine settings are wrong: exit 1.
    Config,
    /// The engine started but failed (exited, never became healthy): exit 1.
    Failed,
    /// Ctrl-C or SIGTERM stopped the work.
    Interrupted,
}

/// An engine failure, with the engine's name and a hint.
#[derive(Debug, Clone)]
pub struct EngineError {
    pub engine: String,
    pub kind: ErrorKind,
    pub message: String,
    pub hint: Option<String>,
    /// The engine's last log lines, when it printed any.
    pub log_tail: Vec<String>,
}

impl EngineError {
    pub fn new(engine: &str, kind: ErrorKind, message: impl Into<String>) -> Self {
        EngineError {
            engine: engine.to_string(),
            kind,
            message: message.into(),
            hint: None,
            log_tail: Vec::new(),
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn logs(mut self, lines: Vec<String>) -> Self {
        self.log_tail = lines;
        self
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "engine `{}`: {}", self.engine, self.message)?;
        if !self.log_tail.is_empty() {
            write!(f, "\n  last log lines:")?;
            for line in &self.log_tail {
                write!(f, "\n  | {line}")?;
            }
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for EngineError {}

/// The last `n` lines of a text.
pub fn last_lines(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}
