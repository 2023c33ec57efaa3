//! Exit codes, as documented in the README, and the error types that choose them.
//!
//! A command's error exits 1 unless it is marked: [`usage`] errors exit 64, [`unavailable`]
//! ones 69. 70 is kept for kitt's own bugs: a panic, or a task that ended abnormally.

/// Success.
pub const OK: u8 = 0;
/// Invalid suite, failed node, breached assert, or any other error of the command.
pub const FAILED: u8 = 1;
/// `plan --detailed-exitcode` with work to do.
pub const CHANGES: u8 = 2;
/// Usage error: a flag, argument or name on the command line that does not fit.
pub const USAGE: u8 = 64;
/// A needed service (Docker, an endpoint) is unavailable.
pub const UNAVAILABLE: u8 = 69;
/// Internal error: a bug in kitt.
pub const INTERNAL: u8 = 70;
/// Stopped by Ctrl-C or SIGTERM (128 + SIGINT).
pub const INTERRUPTED: u8 = 130;

/// What kind of failure an error is, for its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The command line asks for something that does not exist or does not fit (64).
    Usage,
    /// A service kitt needs did not answer (69).
    Unavailable,
    /// kitt itself broke (70).
    Internal,
}

/// An error with its exit class.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Classified {
    pub class: Class,
    pub message: String,
}

/// A usage error (exit 64).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Classified {
        class: Class::Usage,
        message: message.into(),
    }
    .into()
}

/// A service-unavailable error (exit 69).
pub fn unavailable(message: impl Into<String>) -> anyhow::Error {
    Classified {
        class: Class::Unavailable,
        message: message.into(),
    }
    .into()
}

/// An internal error (exit 70): only for states kitt itself got wrong.
pub fn internal(message: impl Into<String>) -> anyhow::Error {
    Classified {
        class: Class::Internal,
        message: message.into(),
    }
    .into()
}

/// The exit code for a command's error: its class anywhere in the chain, else 1.
pub fn code_for(error: &anyhow::Error) -> u8 {
    let class = error
        .chain()
        .find_map(|e| e.downcast_ref::<Classified>().map(|c| c.class));
    match class {
        Some(Class::Usage) => USAGE,
        Some(Class::Unavailable) => UNAVAILABLE,
        Some(Class::Internal) => INTERNAL,
        None => FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn classes_survive_context_and_others_fail_with_one() {
        let e = Err::<(), _>(usage("no run `x`"))
            .context("report")
            .unwrap_err();
        assert_eq!(code_for(&e), USAGE);
        assert_eq!(code_for(&anyhow::anyhow!("disk full")), FAILED);
        assert_eq!(code_for(&internal("bad state")), INTERNAL);
    }
}
