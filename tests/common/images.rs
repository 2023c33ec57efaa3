//! Test images built from scratch with the docker CLI: llama-server with its libraries, and
//! a container that never becomes healthy, and one that prints its secret and exits.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const LLAMA_IMAGE: &str = "kitt-test/llama-server:11434.0.0";
pub const STALL_IMAGE: &str = "kitt-test/stall:1";
/// Prints the secret it was given (as a server that logs its environment would) and exits 3.
pub const ENV_IMAGE: &str = "kitt-test/print-env:1";

/// Copies `binary` and every library `ldd` names into `root`, at the same paths.
fn copy_with_libs(binary: &Path, at: &str, root: &Path) {
    let dest = root.join(at.trim_start_matches('/'));
    std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
    std::fs::copy(binary, &dest).expect("copy binary");
    let ldd = Command::new("ldd").arg(binary).output().expect("ldd runs");
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        if let Some(lib) = path {
            let target = root.join(lib.strip_prefix("/").expect("absolute"));
            std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
            std::fs::copy(&lib, &target).expect("copy library");
        }
    }
}

/// Builds the two test images once per test process.
pub fn images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        copy_with_libs(&super::llama_server(), "/app/llama-server", &root);
        copy_with_libs(Path::new("/bin/sh"), "/bin/sh", &root);
        copy_with_libs(Path::new("/bin/sleep"), "/bin/sleep", &root);
        let build = |tag: &str, entrypoint: &str| {
            let dockerfile = dir
                .path()
                .join(format!("Dockerfile.{}", tag.replace(['/', ':'], "_")));
            std::fs::write(
                &dockerfile,
                format!("FROM scratch\nCOPY root/ /\nENTRYPOINT {entrypoint}\n"),
            )
            .expect("write Dockerfile");
            let out = Command::new("docker")
                .args(["build", "-q", "-t", tag, "-f"])
                .arg(&dockerfile)
                .arg(dir.path())
                .output()
                .expect("docker build runs");
            assert!(
                out.status.success(),
                "docker build {tag}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        build(LLAMA_IMAGE, r#"["/app/llama-server"]"#);
        // A server that never becomes healthy: its arguments are ignored and it sleeps.
        build(
            STALL_IMAGE,
            r#"["/bin/sh", "-c", "exec /bin/sleep 3600", "--"]"#,
        );
        build(
            ENV_IMAGE,
            r#"["/bin/sh", "-c", "echo MY_SECRET=$MY_SECRET; echo starting with $MY_SECRET >&2; exit 3", "--"]"#,
        );
    });
}
