//! Exit codes, as documented in the README.

/// Success.
pub const OK: u8 = 0;
/// Invalid suite, failed node or breached assert.
pub const FAILED: u8 = 1;
/// `plan --detailed-exitcode` with work to do.
pub const CHANGES: u8 = 2;
/// Usage error.
pub const USAGE: u8 = 64;
/// A needed service (Docker, an endpoint) is unavailable.
pub const UNAVAILABLE: u8 = 69;
/// Internal error.
pub const INTERNAL: u8 = 70;
/// Stopped by Ctrl-C or SIGTERM (128 + SIGINT).
pub const INTERRUPTED: u8 = 130;
