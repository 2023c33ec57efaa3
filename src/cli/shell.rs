//! `kitt completions SHELL` and `kitt man [--dir DIR]`: shell completions and man pages
//! generated from the same command definitions clap parses.

use std::io::Write;
use std::path::PathBuf;

use clap::CommandFactory;

use crate::exit;

#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// bash, zsh, fish, powershell or elvish.
    shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write `kitt.1` and a page per command (`kitt-apply.1`, `kitt-results-trend.1`, …)
    /// here instead of printing `kitt.1`.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Prints the completion script for a shell (e.g. `kitt completions bash > /etc/bash_completion.d/kitt`).
pub fn completions(args: CompletionArgs) -> anyhow::Result<u8> {
    let mut command = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "kitt", &mut script);
    crate::output::stdout().write_all(&script)?;
    Ok(exit::OK)
}

/// Prints the man page, or writes every page to a directory.
pub fn man(args: ManArgs) -> anyhow::Result<u8> {
    let command = super::Cli::command();
    match args.dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page)?;
            crate::output::stdout().write_all(&page)?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            let mut written = 0;
            write_pages(&command, "kitt", &dir, &mut written)?;
            crate::noteln!("wrote {written} man pages to {}", dir.display());
        }
    }
    Ok(exit::OK)
}

/// Writes `name.1` for `command` and its subcommands (hidden ones left out).
fn write_pages(
    command: &clap::Command,
    name: &str,
    dir: &std::path::Path,
    written: &mut usize,
) -> anyhow::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone().name(name.to_string())).render(&mut page)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    *written += 1;
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}
