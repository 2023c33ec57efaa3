//! Finding plugins: `--plugin-dir`/`KITT_PLUGIN_DIR`, `.kitt/plugins/` beside the suite, the
//! user's data directory. Registering what is found is `assemble`'s job.

use std::path::{Path, PathBuf};

use super::manifest::Manifest;

/// Where to look for plugins besides the usual places, and which plugins may take over a name
/// that is already taken; from the command line (`--plugin-dir`, `--override-plugin`).
#[derive(Debug, Clone, Default)]
pub struct Search {
    pub extra_dirs: Vec<PathBuf>,
    pub overrides: Vec<String>,
}

impl Search {
    /// Whether the plugin `name` may replace a built-in or another plugin.
    pub fn overrides(&self, name: &str) -> bool {
        self.overrides.iter().any(|n| n == name)
    }

    /// Where plugins are looked for, in order: `--plugin-dir`, `KITT_PLUGIN_DIR` (colon
    /// separated), `.kitt/plugins/` beside the suite, `<data dir>/plugins`.
    pub fn dirs(&self, suite: Option<&Path>) -> Vec<PathBuf> {
        let mut dirs = self.extra_dirs.clone();
        if let Some(v) = std::env::var_os("KITT_PLUGIN_DIR") {
            dirs.extend(std::env::split_paths(&v));
        }
        if let Some(dir) = suite.and_then(Path::parent) {
            let base = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            dirs.push(base.join(".kitt/plugins"));
        }
        dirs.push(installed_dir());
        dirs
    }
}

/// Where `kitt plugin install` puts plugins.
pub fn installed_dir() -> PathBuf {
    crate::paths::data_dir().join("plugins")
}

/// A plugin directory found, with its manifest or why it could not be read.
pub struct Discovered {
    pub dir: PathBuf,
    pub manifest: Result<Manifest, String>,
    pub source: Source,
}

/// Where a found plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A plugin directory (given, beside the suite, or installed from a directory or git).
    Dir,
    /// A package from a Python package index, in its own environment.
    Package { package: String, version: String },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Dir => f.write_str("dir"),
            Source::Package { package, version } => write!(f, "pypi {package}=={version}"),
        }
    }
}

/// Every plugin: those in `dirs`, then the packages installed from an index.
pub fn discover_all(dirs: &[PathBuf]) -> Vec<Discovered> {
    let mut found = discover(dirs);
    for p in super::pypi::installed() {
        found.push(Discovered {
            dir: p.plugin_dir.clone(),
            manifest: p.manifest(),
            source: Source::Package {
                package: p.package.clone(),
                version: p.version.clone(),
            },
        });
    }
    found
}

/// Every plugin directory (a directory holding `plugin.toml`) under `dirs`.
pub fn discover(dirs: &[PathBuf]) -> Vec<Discovered> {
    let mut found = Vec::new();
    for root in dirs {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        let mut subdirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("plugin.toml").is_file())
            .collect();
        subdirs.sort();
        for dir in subdirs {
            let manifest = Manifest::load(&dir).map_err(|e| e.to_string());
            found.push(Discovered {
                dir,
                manifest,
                source: Source::Dir,
            });
        }
    }
    found
}
