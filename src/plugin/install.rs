//! Installing and removing plugins in the user's data directory: a local directory or a git
//! URL (cloned without running its hooks), copied without links, staged beside the target and
//! swapped in, so a failure at any step leaves the installed version working. Whether the
//! plugin registers is checked by the caller first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use super::discovery::installed_dir;
use super::manifest::Manifest;
use crate::paths::{Guard, NameKind, child, resolve};

/// Why a plugin was not installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The user's to fix: a copy refused (links, special files), a name already installed.
    #[error("{0}")]
    Refused(String),
    /// A name or path the guard refuses (it would touch what kitt must not).
    #[error(transparent)]
    Path(#[from] crate::paths::PathError),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// A plugin's source on this machine: the directory given, or a fresh clone (removed when
/// this is dropped).
pub struct Fetched {
    dir: PathBuf,
    _clone: Option<tempfile::TempDir>,
}

impl Fetched {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The source of `source`: a git URL is cloned (depth 1, `--` before the URL so it is never
/// taken for an option); anything else is a directory.
pub fn fetch(source: &str) -> anyhow::Result<Fetched> {
    if !(source.contains("://") || source.starts_with("git@")) {
        return Ok(Fetched {
            dir: PathBuf::from(source),
            _clone: None,
        });
    }
    let clone = tempfile::tempdir()?;
    let dir = clone.path().join("src");
    let mut git = crate::process::supervised("git", Duration::from_secs(2))?;
    git.args(["clone", "--depth", "1", "--"])
        .arg(source)
        .arg(&dir);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let status = runtime
        .block_on(async { git.status().await })
        .context("cannot run git")?;
    if !status.success() {
        bail!("git clone {source} failed");
    }
    Ok(Fetched {
        dir,
        _clone: Some(clone),
    })
}

/// Installs the plugin in `dir` as `<data dir>/plugins/NAME`; an installed one of the same
/// name is replaced only with `force`. Returns where it now is.
pub fn install(dir: &Path, manifest: &Manifest, force: bool) -> Result<PathBuf, InstallError> {
    let plugins = installed_dir();
    let target = child(&plugins, NameKind::Plugin, &manifest.name)?;
    let guard = Guard::for_kitt().with_store(&crate::store::default_path(None));
    let resolved = guard.check_remove(&target, &plugins)?;
    if resolve(dir).starts_with(&resolved) {
        return Err(InstallError::Refused(format!(
            "{} is the installed copy of `{}` itself; install from the plugin's source instead",
            dir.display(),
            manifest.name
        )));
    }
    if target.exists() && !force {
        return Err(InstallError::Refused(format!(
            "plugin `{}` is already installed at {}; pass --force to replace it",
            manifest.name,
            target.display()
        )));
    }
    // Staged beside the target under a name no plugin can have (names start with a letter or
    // digit), then swapped in: a failure at any step leaves the installed version working.
    std::fs::create_dir_all(&plugins)
        .with_context(|| format!("cannot create {}", plugins.display()))?;
    let staging = plugins.join(format!(
        ".installing-{}-{}",
        manifest.name,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    if let Err(e) = copy_tree(dir, &staging) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(InstallError::Refused(format!("{e:#}")));
    }
    let old = plugins.join(format!(
        ".replaced-{}-{}",
        manifest.name,
        std::process::id()
    ));
    let had_old = target.exists();
    if had_old {
        std::fs::rename(&target, &old)
            .with_context(|| format!("cannot move {} aside", target.display()))?;
    }
    if let Err(e) = std::fs::rename(&staging, &target) {
        if had_old {
            let _ = std::fs::rename(&old, &target);
        }
        let _ = std::fs::remove_dir_all(&staging);
        return Err(
            anyhow::anyhow!("cannot move the new version into {}: {e}", target.display()).into(),
        );
    }
    if had_old {
        let old = guard.check_remove(&old, &plugins)?;
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("cannot remove the replaced copy {}", old.display()))?;
    }
    Ok(target)
}

/// Removes the installed plugin `name`; an unknown name is a usage error.
pub fn remove(name: &str) -> anyhow::Result<()> {
    let plugins = installed_dir();
    let target = match child(&plugins, NameKind::Plugin, name) {
        Ok(t) if t.join("plugin.toml").is_file() => t,
        _ => {
            return Err(crate::exit::usage(format!(
                "no installed plugin `{name}` in {} (see `kitt plugin list`)",
                plugins.display()
            )));
        }
    };
    let guard = Guard::for_kitt().with_store(&crate::store::default_path(None));
    let target = guard.check_remove(&target, &plugins)?;
    std::fs::remove_dir_all(&target)
        .with_context(|| format!("cannot remove {}", target.display()))?;
    Ok(())
}

/// Copies a plugin directory, refusing links and anything that is not a file or directory.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let name = entry.file_name();
        if name == ".git" {
            continue;
        }
        let target = to.join(&name);
        if kind.is_symlink() {
            bail!(
                "{} is a symbolic link; plugins are installed without links so nothing points outside them",
                entry.path().display()
            );
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        } else {
            bail!(
                "{} is neither a file nor a directory",
                entry.path().display()
            );
        }
    }
    Ok(())
}
