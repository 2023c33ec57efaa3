//! Paths kitt derives from names and writes to: the one check every name that becomes a
//! path component passes ([`component`]), and the guard every file kitt replaces or removes
//! passes ([`Guard`]): never the store, the data directory, kitt itself or the suite, never
//! through a symbolic link, never outside the directory it belongs to.

use std::path::{Component, Path, PathBuf};

/// kitt's data directory: `$KITT_DATA_DIR`, else the platform's (`~/.local/share/kitt`).
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KITT_DATA_DIR") {
        return PathBuf::from(dir);
    }
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("kitt")
}

/// Longest name accepted as a path component.
pub const MAX_NAME: usize = 128;

/// What a name names, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Plugin,
    Run,
    Engine,
    Template,
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameKind::Plugin => "plugin name",
            NameKind::Run => "run id",
            NameKind::Engine => "engine name",
            NameKind::Template => "template name",
        })
    }
}

/// Why a name or a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error(
        "{kind} `{name}` is not accepted: it must start with a letter or digit and hold only letters, digits, `.`, `_` and `-` (at most {MAX_NAME})"
    )]
    BadName { kind: NameKind, name: String },
    #[error("{path} is {what}; kitt never writes over it")]
    Protected { path: String, what: &'static str },
    #[error("{path} is a directory holding {what}; kitt never writes over it")]
    Holds { path: String, what: &'static str },
    #[error("{path} is a symbolic link; kitt does not write or delete through links")]
    Link { path: String },
    #[error("{path} is outside {base}, where it belongs")]
    Outside { path: String, base: String },
}

/// Checks that `name` is safe as one path component: a letter or digit first, then letters,
/// digits, `.`, `_` or `-` — so never empty, `.`, `..`, hidden, a flag or a path.
pub fn component(kind: NameKind, name: &str) -> Result<&str, PathError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(name)
    } else {
        Err(PathError::BadName {
            kind,
            name: name.chars().take(MAX_NAME).collect(),
        })
    }
}

/// `dir/name` for a checked name.
pub fn child(dir: &Path, kind: NameKind, name: &str) -> Result<PathBuf, PathError> {
    Ok(dir.join(component(kind, name)?))
}

/// `path` made absolute and free of `.`/`..` and links in its existing parent directories;
/// the final component is kept as written (it may not exist, or be a link to refuse).
pub fn resolve(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut clean = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    let (Some(parent), Some(name)) = (clean.parent(), clean.file_name()) else {
        return clean;
    };
    let parent = canonical_prefix(parent);
    parent.join(name)
}

/// The canonical form of the longest existing prefix of `dir`, with the rest appended.
fn canonical_prefix(dir: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut current = dir.to_path_buf();
    loop {
        if let Ok(real) = current.canonicalize() {
            let mut out = real;
            for part in missing.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            current.file_name().map(|n| n.to_os_string()),
            current.parent(),
        ) {
            (Some(name), Some(parent)) => {
                missing.push(name);
                current = parent.to_path_buf();
            }
            _ => return dir.to_path_buf(),
        }
    }
}

/// The root of the repository holding `file` (the nearest directory above it with `.git`),
/// else the directory of `file`; canonical. Files a suite pulls in must stay inside it.
pub fn suite_root(file: &Path) -> PathBuf {
    let dir = resolve(file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let dir = dir.canonicalize().unwrap_or(dir);
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(&dir)
        .to_path_buf()
}

/// The places kitt must never write over or delete, and the check against them.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    protected: Vec<(PathBuf, &'static str)>,
}

impl Guard {
    /// A guard for kitt's own files: its executable and its data directory.
    pub fn for_kitt() -> Guard {
        let mut guard = Guard::default();
        if let Ok(exe) = std::env::current_exe() {
            guard = guard.protect(&exe, "kitt's own executable");
        }
        guard.protect(&data_dir(), "kitt's data directory")
    }

    /// Adds the results store (and its journal files).
    pub fn with_store(self, store: &Path) -> Guard {
        let mut guard = self.protect(store, "the results store");
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = store.as_os_str().to_os_string();
            name.push(suffix);
            guard = guard.protect(Path::new(&name), "a file of the results store");
        }
        guard
    }

    /// Adds one more protected path.
    pub fn protect(mut self, path: &Path, what: &'static str) -> Guard {
        self.protected.push((resolve(path), what));
        self
    }

    /// Checks that kitt may replace the file at `path`: not a protected file or a
    /// directory holding one, not a symbolic link.
    pub fn check_write(&self, path: &Path) -> Result<PathBuf, PathError> {
        let resolved = resolve(path);
        let shown = path.display().to_string();
        if std::fs::symlink_metadata(&resolved).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(PathError::Link { path: shown });
        }
        for (protected, what) in &self.protected {
            if protected == &resolved {
                return Err(PathError::Protected { path: shown, what });
            }
            if protected.starts_with(&resolved) {
                return Err(PathError::Holds { path: shown, what });
            }
        }
        Ok(resolved)
    }

    /// Checks that kitt may delete `path`: strictly inside `base`, not a link, and holding
    /// no protected path.
    pub fn check_remove(&self, path: &Path, base: &Path) -> Result<PathBuf, PathError> {
        let resolved = self.check_write(path)?;
        let base = resolve(base);
        if resolved == base || !resolved.starts_with(&base) {
            return Err(PathError::Outside {
                path: path.display().to_string(),
                base: base.display().to_string(),
            });
        }
        Ok(resolved)
    }
}

/// Checks that a path written in a suite (a report's `output:`) stays inside `base`: it is
/// relative and does not climb out with `..`.
pub fn inside(base: &Path, relative: &str) -> Result<PathBuf, PathError> {
    let path = Path::new(relative);
    let mut depth: i64 = 0;
    let mut escapes = path.is_absolute();
    for part in path.components() {
        match part {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => escapes = true,
        }
        escapes |= depth < 0;
    }
    if escapes {
        return Err(PathError::Outside {
            path: relative.to_string(),
            base: base.display().to_string(),
        });
    }
    Ok(base.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_escape_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            ".installing-x",
            "-rf",
            "a/b",
            "a\\b",
            "Bad Name",
            "é",
        ] {
            assert!(component(NameKind::Plugin, bad).is_err(), "{bad:?}");
        }
        for good in ["echo", "kitt-engine-triton", "a.b_c-1", "1700000000-42-0"] {
            assert_eq!(component(NameKind::Plugin, good), Ok(good));
        }
        assert!(component(NameKind::Run, &"a".repeat(MAX_NAME + 1)).is_err());
    }

    #[test]
    fn protected_paths_and_links_are_never_targets() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("r.db");
        std::fs::write(&store, "db").unwrap();
        let guard = Guard::default().with_store(&store);
        let err = guard
            .check_write(&dir.path().join("sub/../r.db"))
            .unwrap_err();
        assert!(matches!(err, PathError::Protected { .. }), "{err}");
        assert!(
            guard.check_write(dir.path()).is_err(),
            "a directory holding the store"
        );
        assert!(guard.check_write(&dir.path().join("r.db-wal")).is_err());
        std::os::unix::fs::symlink(&store, dir.path().join("link.md")).unwrap();
        assert!(matches!(
            guard.check_write(&dir.path().join("link.md")),
            Err(PathError::Link { .. })
        ));
        assert!(guard.check_write(&dir.path().join("report.md")).is_ok());
        let plugins = dir.path().join("plugins");
        assert!(guard.check_remove(&plugins.join(".."), &plugins).is_err());
        assert!(guard.check_remove(&plugins, &plugins).is_err());
        assert!(guard.check_remove(&plugins.join("x"), &plugins).is_ok());
    }

    #[test]
    fn suite_paths_stay_inside_their_base() {
        let base = Path::new("/work");
        assert!(inside(base, "reports/a.md").is_ok());
        assert!(inside(base, "a/../b.md").is_ok());
        assert!(inside(base, "../escape.md").is_err());
        assert!(inside(base, "a/../../escape.md").is_err());
        assert!(inside(base, "/etc/passwd").is_err());
    }
}
