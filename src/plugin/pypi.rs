//! Plugins from a Python package index: each package in a virtual environment of its own
//! under `<data dir>/plugin-envs/<package>/`, found by its `kitt.plugins` entry point (the
//! module whose directory holds `plugin.toml`), run with that environment's interpreter.
//! An install or upgrade is staged in a new environment and swapped in by rewriting
//! `current.json`, so a failure leaves the previous version working.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::manifest::{Manifest, Runtime};

/// The index used when neither `--index-url` nor `KITT_PLUGIN_INDEX` names one.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple/";
/// The entry-point group a plugin package declares.
pub const ENTRY_POINT_GROUP: &str = "kitt.plugins";
/// How long creating an environment may take.
const VENV_DEADLINE: Duration = Duration::from_secs(180);
/// How long pip may take to resolve and install a package.
const PIP_DEADLINE: Duration = Duration::from_secs(600);
/// Lines of pip's output quoted in an error.
const TAIL_LINES: usize = 12;

/// An installed package plugin, as `current.json` records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Installed {
    /// The package's normalized name (PEP 503).
    pub package: String,
    pub version: String,
    /// The plugin's name (its manifest's).
    pub plugin: String,
    /// The environment, relative to the package's directory.
    pub env: String,
    /// The plugin directory inside the environment.
    pub plugin_dir: PathBuf,
    pub index_url: String,
}

/// Where package plugins live.
pub fn root() -> PathBuf {
    crate::paths::data_dir().join("plugin-envs")
}

/// A package name as PEP 503 normalizes it, or why the text is not one.
pub fn normalize(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        return Err(format!(
            "`{name}` is not a package name (letters, digits, `.`, `_`, `-`)"
        ));
    }
    let mut out = String::new();
    for c in name.chars() {
        if "._-".contains(c) {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    Ok(out)
}

/// The package name at the start of a requirement (`kitt-engine-triton==0.2`, `x>=1,<2`).
pub fn requirement_name(spec: &str) -> Result<String, String> {
    let end = spec
        .find(['=', '<', '>', '!', '~', '[', ';', ' ', '@'])
        .unwrap_or(spec.len());
    normalize(spec[..end].trim())
}

/// Every installed package plugin (directories without a readable `current.json` are
/// left out: an install that never finished).
pub fn installed() -> Vec<Installed> {
    let Ok(entries) = std::fs::read_dir(root()) else {
        return Vec::new();
    };
    let mut found: Vec<Installed> = entries
        .flatten()
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path().join("current.json")).ok()?;
            serde_json::from_str(&text).ok()
        })
        .collect();
    found.sort_by(|a, b| a.package.cmp(&b.package));
    found
}

/// The installed package of `name` (package or plugin name).
pub fn find(name: &str) -> Option<Installed> {
    let norm = normalize(name).ok();
    installed()
        .into_iter()
        .find(|i| Some(&i.package) == norm.as_ref() || i.plugin == name)
}

impl Installed {
    /// The environment's directory.
    pub fn env_dir(&self) -> PathBuf {
        root().join(&self.package).join(&self.env)
    }

    /// The manifest, its command run by the environment's interpreter.
    pub fn manifest(&self) -> Result<Manifest, String> {
        let manifest = Manifest::load(&self.plugin_dir).map_err(|e| e.to_string())?;
        Ok(with_interpreter(manifest, &self.env_dir()))
    }
}

/// `manifest` with its command's program taken from `env/bin` when the environment has it
/// (`python3`, `python`, or a console script the package installed).
pub fn with_interpreter(mut manifest: Manifest, env: &Path) -> Manifest {
    if let Runtime::Subprocess { command, .. } = &mut manifest.runtime
        && let Some(program) = command.first_mut()
        && !program.contains('/')
    {
        let candidate = env.join("bin").join(program.as_str());
        if candidate.exists() {
            *program = candidate.display().to_string();
        }
    }
    manifest
}

/// A package installed into a new environment, not yet the one in use.
#[derive(Debug)]
pub struct Staged {
    pub installed: Installed,
    pub manifest: Manifest,
}

/// Why a package could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum PypiError {
    /// The user's to fix: not on the index, no plugin in the package, a bad name.
    #[error("{0}")]
    Refused(String),
    /// The index or the machine: unreachable index, pip or venv failing.
    #[error("{0}")]
    Failed(String),
}

/// Installs `spec` from `index` into a fresh environment of its package. Nothing of it is
/// left behind on failure.
pub async fn stage(spec: &str, index: &str) -> Result<Staged, PypiError> {
    let package = requirement_name(spec).map_err(PypiError::Refused)?;
    let dir = root().join(&package);
    std::fs::create_dir_all(&dir)
        .map_err(|e| PypiError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    let env_name = format!(
        "env-{}-{}",
        crate::store::time::now() as u64,
        std::process::id()
    );
    let env = dir.join(&env_name);
    let result = stage_into(spec, index, &package, &env, &env_name).await;
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&env);
        // A package directory with nothing installed in it is not kept either.
        if !dir.join("current.json").exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    result
}

async fn stage_into(
    spec: &str,
    index: &str,
    package: &str,
    env: &Path,
    env_name: &str,
) -> Result<Staged, PypiError> {
    let python = which_python().ok_or_else(|| {
        PypiError::Failed("no python3 on PATH: package plugins need Python 3 with venv".into())
    })?;
    run(
        &python,
        &["-m", "venv", &env.display().to_string()],
        VENV_DEADLINE,
        "python3 -m venv",
    )
    .await?;
    let env_python = env.join("bin/python");
    let pip = run(
        &env_python.display().to_string(),
        &[
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--retries",
            "1",
            "--timeout",
            "15",
            "--index-url",
            index,
            spec,
        ],
        PIP_DEADLINE,
        "pip install",
    )
    .await;
    if let Err(PypiError::Failed(out)) = &pip {
        // pip ends an unreachable index with "no matching distribution" too: look first.
        if out.contains("Connection refused")
            || out.contains("Max retries exceeded")
            || out.contains("NewConnectionError")
            || out.contains("Read timed out")
        {
            return Err(PypiError::Failed(format!(
                "the index {index} does not answer: {}",
                last_lines(out, 3)
            )));
        }
        if out.contains("No matching distribution found")
            || out.contains("Could not find a version")
        {
            return Err(PypiError::Refused(format!(
                "`{spec}` is not on the index {index} (or no version matches): {}",
                last_lines(out, 3)
            )));
        }
    }
    pip?;
    let found = run(
        &env_python.display().to_string(),
        &["-c", FIND_ENTRY_POINTS, package],
        Duration::from_secs(60),
        "finding the plugin's entry point",
    )
    .await?;
    #[derive(Deserialize)]
    struct EntryPoint {
        name: String,
        dir: Option<PathBuf>,
        version: String,
    }
    let points: Vec<EntryPoint> = serde_json::from_str(found.trim())
        .map_err(|e| PypiError::Failed(format!("cannot read the entry points: {e}: {found}")))?;
    let point = match points.as_slice() {
        [one] => one,
        [] => {
            return Err(PypiError::Refused(format!(
                "package `{package}` declares no `{ENTRY_POINT_GROUP}` entry point: a kitt plugin package names the module that holds its plugin.toml there (docs/plugins.md, \"Publish your plugin\")"
            )));
        }
        many => {
            return Err(PypiError::Refused(format!(
                "package `{package}` declares {} `{ENTRY_POINT_GROUP}` entry points ({}); kitt installs one plugin per package",
                many.len(),
                many.iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let plugin_dir = point
        .dir
        .clone()
        .filter(|d| d.join("plugin.toml").is_file())
        .ok_or_else(|| {
            PypiError::Refused(format!(
                "the `{}` entry point of `{package}` names a module whose directory holds no plugin.toml",
                point.name
            ))
        })?;
    let manifest = Manifest::load(&plugin_dir).map_err(|e| PypiError::Refused(e.to_string()))?;
    let manifest = with_interpreter(manifest, env);
    Ok(Staged {
        installed: Installed {
            package: package.to_string(),
            version: point.version.clone(),
            plugin: manifest.name.clone(),
            env: env_name.to_string(),
            plugin_dir,
            index_url: index.to_string(),
        },
        manifest,
    })
}

/// Makes a staged package the one in use and removes the environment it replaces.
pub fn commit(staged: &Staged) -> anyhow::Result<()> {
    let dir = root().join(&staged.installed.package);
    let previous = find(&staged.installed.package);
    let tmp = dir.join("current.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&staged.installed)?)?;
    std::fs::rename(&tmp, dir.join("current.json"))?;
    if let Some(old) = previous
        && old.env != staged.installed.env
    {
        let _ = std::fs::remove_dir_all(old.env_dir());
    }
    Ok(())
}

/// Drops a staged environment (a check failed).
pub fn abort(staged: Staged) {
    let _ = std::fs::remove_dir_all(
        root()
            .join(&staged.installed.package)
            .join(&staged.installed.env),
    );
    let dir = root().join(&staged.installed.package);
    if !dir.join("current.json").exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Removes an installed package plugin and its environment.
pub fn remove(installed: &Installed) -> anyhow::Result<()> {
    let dir = root().join(&installed.package);
    // current.json first: from here on the plugin is gone even if removal stops halfway.
    std::fs::remove_file(dir.join("current.json"))?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The versions of `package` the index offers, newest first (`pip index versions`).
pub async fn versions(package: &str, index: &str, env: &Path) -> Result<Vec<String>, PypiError> {
    let out = run(
        &env.join("bin/python").display().to_string(),
        &[
            "-m",
            "pip",
            "index",
            "versions",
            "--disable-pip-version-check",
            "--retries",
            "1",
            "--timeout",
            "15",
            "--index-url",
            index,
            package,
        ],
        Duration::from_secs(120),
        "pip index versions",
    )
    .await?;
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Available versions:"))
        .ok_or_else(|| {
            PypiError::Failed(format!("pip listed no versions: {}", last_lines(&out, 3)))
        })?;
    Ok(line
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

/// The script that prints the installed package's `kitt.plugins` entry points as JSON:
/// name, the directory of the module it names, the distribution's version.
const FIND_ENTRY_POINTS: &str = r#"
import importlib.metadata as md, importlib.util as iu, json, os, re, sys
want = re.sub(r"[-_.]+", "-", sys.argv[1]).lower()
out = []
for dist in md.distributions():
    if re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower() != want:
        continue
    for ep in dist.entry_points:
        if ep.group != "kitt.plugins":
            continue
        spec = iu.find_spec(ep.module)
        where = None
        if spec is not None and spec.origin:
            where = os.path.dirname(spec.origin)
        out.append({"name": ep.name, "dir": where, "version": dist.version})
print(json.dumps(out))
"#;

fn which_python() -> Option<String> {
    ["python3", "python"].iter().find_map(|p| {
        let found = std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join(p))
            .find(|c| c.is_file())?;
        Some(found.display().to_string())
    })
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Runs `program args` under the supervisor within `deadline`; its output (stdout and
/// stderr) on success, or the failure with the output's last lines.
async fn run(
    program: &str,
    args: &[&str],
    deadline: Duration,
    what: &str,
) -> Result<String, PypiError> {
    let mut cmd = crate::process::supervised(program, Duration::from_secs(2))
        .map_err(|e| PypiError::Failed(format!("cannot start {what}: {e}")))?;
    cmd.args(args)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env_remove("PIP_INDEX_URL")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .map_err(|e| PypiError::Failed(format!("cannot start {what}: {e}")))?;
    let out = tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .map_err(|_| {
            PypiError::Failed(format!(
                "{what} took longer than {deadline:?} and was stopped"
            ))
        })?
        .map_err(|e| PypiError::Failed(format!("{what}: {e}")))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(PypiError::Failed(format!(
            "{what} failed ({}): {}",
            out.status,
            last_lines(&text, TAIL_LINES)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_names_normalize_as_pep_503_says() {
        assert_eq!(
            requirement_name("Kitt_Engine.Triton==0.2").unwrap(),
            "kitt-engine-triton"
        );
        assert_eq!(requirement_name("x>=1,<2").unwrap(), "x");
        assert_eq!(requirement_name("kitt-bench-x").unwrap(), "kitt-bench-x");
        assert!(requirement_name("../evil").is_err());
        assert!(requirement_name("-x").is_err());
        assert!(requirement_name("").is_err());
    }
}
