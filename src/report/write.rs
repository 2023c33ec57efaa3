//! Writing report files: never over the store, the suite or kitt's own files, never through
//! a symbolic link, and never over a file kitt did not write (or that changed since) unless
//! forced; written whole (a temporary file, then a rename) and recorded in the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::paths::Guard;
use crate::store::Store;

/// What a report file may replace.
pub struct Rules<'a> {
    /// Paths never written over (store, suite, kitt itself).
    pub guard: Guard,
    /// Replace a file kitt did not write.
    pub force: bool,
    /// Where kitt records the files it wrote (none: only new files are written unforced).
    pub store: Option<&'a Store>,
}

fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `text` to `path` under `rules`; returns the path written.
pub fn write(path: &Path, text: &str, rules: &Rules<'_>) -> anyhow::Result<PathBuf> {
    let resolved = rules.guard.check_write(path)?;
    let key = resolved.display().to_string();
    if let Ok(meta) = std::fs::metadata(&resolved) {
        if meta.is_dir() {
            anyhow::bail!("cannot write {}: it is a directory", path.display());
        }
        if !rules.force {
            let recorded = rules.store.and_then(|s| s.written(&key).ok().flatten());
            let current = crate::fsio::read_bytes(&resolved, 1 << 30)
                .map(|b| digest(&b))
                .ok();
            if recorded.is_none() || recorded != current {
                anyhow::bail!(
                    "{} exists and kitt did not write it (or it changed since); pass --force to replace it",
                    path.display()
                );
            }
        }
    }
    let dir = resolved
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".kitt-report-")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let bytes = crate::redact::text(text);
    temp.write_all(bytes.as_bytes())
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            // Readable like any file the user writes (a temporary file starts private).
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .and_then(|()| temp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    temp.persist(&resolved)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    if let Some(store) = rules.store
        && let Err(e) = store.record_written(&key, &digest(bytes.as_bytes()))
    {
        crate::errln!("warning: {e:#} ({})", path.display());
    }
    Ok(path.to_path_buf())
}
