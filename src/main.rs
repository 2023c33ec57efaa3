//! The `kitt` binary: parse arguments, run the command, map the outcome to an exit code.

use std::process::ExitCode;

/// mimalloc: loading a large suite makes millions of small allocations, which it serves
/// markedly faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    ExitCode::from(kitt::cli::main())
}
