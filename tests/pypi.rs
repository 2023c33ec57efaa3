//! Plugins by package name against a real pip and a real PEP 503 index: wheels built with
//! `pip wheel` from a `kitt plugin new --package` scaffold, served from a temporary
//! directory on 127.0.0.1 by Python's http.server; installed, listed, run in a suite,
//! upgraded past a broken version and one whose kitt range excludes this kitt, reinstalled
//! broken without losing the working one, and removed; a package without the convention, a
//! name the index lacks and an index that does not answer get clear errors and leave
//! nothing behind.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::binary::sim_suite;

struct Index {
    server: std::process::Child,
    url: String,
    root: PathBuf,
}

impl Drop for Index {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A simple index serving every wheel in `wheels`, by project.
fn serve(dir: &Path, wheels: &[PathBuf]) -> Index {
    let root = dir.join("index");
    std::fs::create_dir_all(root.join("packages")).unwrap();
    let mut projects: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for w in wheels {
        let file = w.file_name().unwrap().to_string_lossy().to_string();
        std::fs::copy(w, root.join("packages").join(&file)).unwrap();
        let project = file
            .split('-')
            .next()
            .unwrap()
            .replace('_', "-")
            .to_lowercase();
        projects.entry(project).or_default().push(file);
    }
    for (project, files) in &projects {
        let page: String = files
            .iter()
            .map(|f| format!("<a href=\"../../packages/{f}\">{f}</a><br>\n"))
            .collect();
        std::fs::create_dir_all(root.join("simple").join(project)).unwrap();
        std::fs::write(
            root.join("simple").join(project).join("index.html"),
            format!("<html><body>\n{page}</body></html>\n"),
        )
        .unwrap();
    }
    let port = free_port();
    let server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
        ])
        .arg(&root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let url = format!("http://127.0.0.1:{port}/simple/");
    assert!(
        common::binary::eventually(std::time::Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }),
        "the index did not start"
    );
    Index { server, url, root }
}

fn kitt(data: &Path, args: &[&str]) -> Output {
    common::binary::isolated(data)
        .args(args)
        .env("KITT_DATA_DIR", data.join("data"))
        .env_remove("KITT_PLUGIN_INDEX")
        .current_dir(data)
        .output()
        .expect("kitt runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A wheel of the scaffolded package at `version`, its manifest's kitt range `kitt`, its
/// program broken when asked.
fn wheel(dir: &Path, version: &str, kitt_range: &str, broken: bool) -> PathBuf {
    let src = dir.join(format!("src-{version}"));
    let out = kitt(
        dir,
        &[
            "plugin",
            "new",
            src.join("greet").to_str().unwrap(),
            "--package",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let pkg = src.join("greet");
    let edit = |file: &Path, from: &str, to: &str| {
        let t = std::fs::read_to_string(file).unwrap();
        assert!(t.contains(from), "{from} in {}", file.display());
        std::fs::write(file, t.replace(from, to)).unwrap();
    };
    edit(
        &pkg.join("pyproject.toml"),
        "version = \"0.1.0\"",
        &format!("version = \"{version}\""),
    );
    edit(
        &pkg.join("kitt_greet/plugin.toml"),
        "version = \"0.1.0\"",
        &format!("version = \"{version}\""),
    );
    edit(
        &pkg.join("kitt_greet/plugin.toml"),
        "kitt = \">=0.1\"",
        &format!("kitt = \"{kitt_range}\""),
    );
    if broken {
        std::fs::write(
            pkg.join("kitt_greet/plugin.py"),
            "raise SystemExit('broken on purpose')\n",
        )
        .unwrap();
    }
    build(dir, &pkg)
}

fn build(dir: &Path, pkg: &Path) -> PathBuf {
    let wheels = dir.join("wheels");
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-w",
        ])
        .arg(&wheels)
        .arg(pkg)
        .output()
        .unwrap();
    assert!(out.status.success(), "pip wheel: {}", text(&out));
    let version = std::fs::read_to_string(pkg.join("pyproject.toml"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("version = \"")
                .map(|v| v.trim_end_matches('"').to_string())
        })
        .unwrap();
    std::fs::read_dir(&wheels)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy().contains(&format!("-{version}-"))
                && p.to_string_lossy().contains(&pkg_module(pkg))
        })
        .expect("the wheel")
}

fn pkg_module(pkg: &Path) -> String {
    std::fs::read_to_string(pkg.join("pyproject.toml"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("name = \"")
                .map(|v| v.trim_end_matches('"').replace('-', "_"))
        })
        .unwrap()
}

fn envs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("data/plugin-envs"))
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_plugin_package_installs_runs_upgrades_survives_a_broken_version_and_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let wheels = vec![
        wheel(d, "0.1.0", ">=0.1", false),
        wheel(d, "0.2.0", ">=0.1", false),
        wheel(d, "0.3.0", ">=99", false),
        wheel(d, "0.4.0", ">=0.1", true),
    ];
    let index = serve(d, &wheels);
    let install = |args: &[&str]| {
        let mut a = vec!["plugin", "install"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--index-url", &index.url]);
        kitt(d, &a)
    };
    let out = install(&["kitt-greet==0.1.0"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("installed kitt-greet 0.1.0 (plugin greet)"),
        "{}",
        text(&out)
    );
    let list = kitt(d, &["plugin", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let greet = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "greet")
        .expect("listed");
    assert_eq!(greet["source"], "pypi kitt-greet==0.1.0");
    assert_eq!(greet["status"], "ok");
    let tests = kitt(d, &["test", "list", "--json"]);
    assert!(
        String::from_utf8_lossy(&tests.stdout).contains("\"greet\""),
        "{}",
        text(&tests)
    );
    // It runs in a suite, with its own environment's interpreter.
    let suite = d.join("s.yaml");
    std::fs::write(
        &suite,
        sim_suite(
            "pkg",
            "  - id: greet\n    benchmark: greet\n    engine: sim\n",
        ),
    )
    .unwrap();
    let out = kitt(d, &["apply", suite.to_str().unwrap(), "--plain"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Installed again without --upgrade: refused, pointing at it.
    let again = install(&["kitt-greet"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("--upgrade"), "{}", text(&again));
    // The upgrade passes over 0.4.0 (broken) and 0.3.0 (its kitt range excludes this kitt).
    let up = install(&["kitt-greet", "--upgrade"]);
    let t = text(&up);
    assert!(up.status.success(), "{t}");
    assert!(t.contains("installed kitt-greet 0.2.0"), "{t}");
    assert!(t.contains("0.4.0 did not pass the plugin check"), "{t}");
    assert!(t.contains(">=99"), "the range is named: {t}");
    // A broken version forced in: refused, and 0.2.0 still works.
    let broken = install(&["kitt-greet==0.4.0", "--force"]);
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken));
    assert!(
        text(&broken).contains("0.2.0 stays installed"),
        "{}",
        text(&broken)
    );
    let list = kitt(d, &["plugin", "list"]);
    assert!(
        text(&list).contains("pypi kitt-greet==0.2.0"),
        "{}",
        text(&list)
    );
    let out = kitt(d, &["apply", suite.to_str().unwrap(), "--plain"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // One environment left: the staged ones were removed.
    let kept = std::fs::read_dir(d.join("data/plugin-envs/kitt-greet"))
        .unwrap()
        .count();
    assert_eq!(kept, 2, "current.json and one environment");
    let out = kitt(d, &["plugin", "remove", "kitt-greet"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(envs(d).is_empty(), "{:?}", envs(d));
    let tests = kitt(d, &["test", "list", "--json"]);
    assert!(!String::from_utf8_lossy(&tests.stdout).contains("\"greet\""));
    drop(index);
}

#[test]
fn packages_without_the_convention_missing_names_and_dead_indexes_get_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // A package with no kitt.plugins entry point.
    let plain = d.join("plain");
    std::fs::create_dir_all(plain.join("plain_pkg")).unwrap();
    std::fs::write(plain.join("plain_pkg/__init__.py"), "").unwrap();
    std::fs::write(
        plain.join("pyproject.toml"),
        "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\
         [project]\nname = \"plain-pkg\"\nversion = \"1.0.0\"\n[tool.setuptools]\npackages = [\"plain_pkg\"]\n",
    )
    .unwrap();
    let wheel = build(d, &plain);
    let index = serve(d, &[wheel]);
    let out = kitt(
        d,
        &["plugin", "install", "plain-pkg", "--index-url", &index.url],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("declares no `kitt.plugins` entry point"),
        "{}",
        text(&out)
    );
    let out = kitt(
        d,
        &[
            "plugin",
            "install",
            "kitt-nowhere",
            "--index-url",
            &index.url,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is not on the index"), "{}", text(&out));
    let dead = format!("http://127.0.0.1:{}/simple/", free_port());
    let out = kitt(
        d,
        &["plugin", "install", "kitt-greet", "--index-url", &dead],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("does not answer"), "{}", text(&out));
    assert!(envs(d).is_empty(), "nothing half-installed: {:?}", envs(d));
    let out = kitt(
        d,
        &["plugin", "install", "../evil", "--index-url", &index.url],
    );
    assert_ne!(out.status.code(), Some(0));
    let _ = &index.root;
}
