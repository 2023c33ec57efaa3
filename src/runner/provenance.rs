//! Where a run's suite came from: the file's content digest and its git commit and dirty flag.

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

/// The suite file's identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// sha256 of the file's bytes, first 16 hex digits.
    pub digest: String,
    pub git_commit: Option<String>,
    /// Whether the repository had uncommitted changes.
    pub git_dirty: Option<bool>,
}

/// Reads the digest of `text` and the git state of the repository holding `path`.
pub fn of(path: &Path, text: &str) -> Provenance {
    let digest = Sha256::digest(text.as_bytes());
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let git_commit = git(&["rev-parse", "HEAD"]);
    let git_dirty = git_commit
        .as_ref()
        .and_then(|_| git(&["status", "--porcelain"]))
        .map(|s| !s.is_empty());
    Provenance {
        digest: digest[..8].iter().map(|b| format!("{b:02x}")).collect(),
        git_commit,
        git_dirty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_repository_there_is_no_commit() {
        let dir = tempfile::tempdir().unwrap();
        let p = of(&dir.path().join("s.yaml"), "a");
        assert_eq!(p.git_commit, None);
        assert_eq!(p.git_dirty, None);
        assert_eq!(p.digest.len(), 16);
        assert_ne!(p.digest, of(&dir.path().join("s.yaml"), "b").digest);
    }
}
