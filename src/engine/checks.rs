//! Readiness checks for an engine without starting it (`kitt engines check`, and the
//! availability column of `kitt engines list`): Docker, image, binary, GPU, model, endpoint.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::engine::error::ErrorKind;
use crate::engine::launch::Driver;
use crate::engine::preflight::check_model;
use crate::engine::runtime::docker;
use crate::engine::start::resolve_mode;
use crate::registry::{EngineInfo, Registry};
use crate::suite::model::{EngineSpec, RuntimeMode};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    Skipped,
}

/// One row of the check table.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    /// What a failure means for the exit code.
    #[serde(skip)]
    pub kind: ErrorKind,
}

impl Check {
    fn ok(name: &str, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            status: Status::Ok,
            detail: detail.into(),
            kind: ErrorKind::Config,
        }
    }
    fn failed(name: &str, kind: ErrorKind, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            status: Status::Failed,
            detail: detail.into(),
            kind,
        }
    }
    fn skipped(name: &str, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            status: Status::Skipped,
            detail: detail.into(),
            kind: ErrorKind::Config,
        }
    }
}

/// Runs every check that applies to `spec` (an engine as a suite would declare it).
pub async fn check_engine(registry: &Registry, spec: &EngineSpec) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some(entry) = registry.engines.get(&spec.uses) else {
        checks.push(Check::failed(
            "engine",
            ErrorKind::Config,
            format!(
                "no engine named `{}`; {}",
                spec.uses,
                registry.engines.unknown_hint(&spec.uses)
            ),
        ));
        return checks;
    };
    let info = &entry.info;
    let mode = match resolve_mode(&spec.uses, info, spec) {
        Ok(mode) => {
            checks.push(Check::ok("mode", format!("{mode}")));
            mode
        }
        Err(e) => {
            checks.push(Check::failed("mode", ErrorKind::Config, e.message));
            return checks;
        }
    };
    match (Driver::of(info), mode) {
        (Driver::Simulator, _) => checks.push(Check::ok("runtime", "in-process simulator")),
        (Driver::Plugin(p), _) => checks.push(Check::ok(
            "runtime",
            format!("plugin at {}", p.dir.display()),
        )),
        (Driver::Endpoint, _) | (_, RuntimeMode::External) => {
            checks.push(check_endpoint(info, spec).await)
        }
        (Driver::Server(launch), RuntimeMode::Native) => {
            let program = launch.native_program(spec);
            checks.push(match find_program(program) {
                Some(path) => Check::ok("binary", path.display().to_string()),
                None => Check::failed(
                    "binary",
                    ErrorKind::Unavailable,
                    format!("`{program}` is not on PATH; set `config.binary` to its path"),
                ),
            });
        }
        (Driver::Server(_), RuntimeMode::Docker) => {
            checks.extend(check_docker(info, spec).await);
        }
    }
    if info.needs_gpu() && mode != RuntimeMode::External {
        checks.push(check_gpu().await);
    } else {
        checks.push(Check::skipped("gpu", "not required"));
    }
    checks.push(match check_model(registry, &spec.uses, info, spec, mode) {
        Ok(()) => match &spec.model {
            Some(m) => Check::ok("model", m.clone()),
            None => Check::skipped("model", "none given"),
        },
        Err(e) => Check::failed(
            "model",
            ErrorKind::Config,
            match e.hint {
                Some(h) => format!("{}; {h}", e.message),
                None => e.message,
            },
        ),
    });
    checks
}

async fn check_docker(info: &EngineInfo, spec: &EngineSpec) -> Vec<Check> {
    let mut checks = Vec::new();
    let client = match tokio::time::timeout(
        Duration::from_secs(5),
        docker::connect(&spec.uses, spec.docker_host.as_deref()),
    )
    .await
    {
        Ok(Ok(client)) => {
            checks.push(Check::ok("docker", "daemon answers"));
            client
        }
        Ok(Err(e)) => {
            checks.push(Check::failed("docker", ErrorKind::Unavailable, e.message));
            checks.push(Check::skipped("image", "Docker is not reachable"));
            return checks;
        }
        Err(_) => {
            checks.push(Check::failed(
                "docker",
                ErrorKind::Unavailable,
                "the daemon did not answer within 5s",
            ));
            return checks;
        }
    };
    let Some(image) = spec.image.clone().or_else(|| info.default_image.clone()) else {
        checks.push(Check::failed("image", ErrorKind::Config, "no image given"));
        return checks;
    };
    if client.inspect_image(&image).await.is_ok() {
        checks.push(Check::ok("image", format!("{image} is present")));
    } else {
        match client.inspect_registry_image(&image, None).await {
            Ok(_) => checks.push(Check::ok("image", format!("{image} can be pulled"))),
            Err(e) => checks.push(Check::failed(
                "image",
                ErrorKind::Unavailable,
                format!("{image} is not present and its registry does not confirm it: {e}"),
            )),
        }
    }
    checks
}

async fn check_endpoint(info: &EngineInfo, spec: &EngineSpec) -> Check {
    let Some(url) = spec.url.as_deref() else {
        return Check::failed("endpoint", ErrorKind::Config, "external mode needs a `url`");
    };
    let options = crate::engine::client::ClientOptions {
        connect_timeout: Duration::from_secs(3),
        read_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let Ok(http) = crate::engine::client::http_client(&options) else {
        return Check::failed("endpoint", ErrorKind::Unavailable, "no HTTP client");
    };
    let health = format!("{}{}", url.trim_end_matches('/'), info.health_endpoint);
    let mut request = http.get(&health);
    if let Some(key) = spec
        .api_key_env
        .as_deref()
        .and_then(|v| std::env::var(v).ok())
    {
        request = request.bearer_auth(key);
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => Check::ok("endpoint", format!("{health} answers")),
        Ok(r) => Check::failed(
            "endpoint",
            ErrorKind::Unavailable,
            format!("{health} answered HTTP {}", r.status()),
        ),
        Err(e) => Check::failed(
            "endpoint",
            ErrorKind::Unavailable,
            format!(
                "{health}: {}",
                crate::engine::client::transport_error(&health, e, options.read_timeout)
            ),
        ),
    }
}

async fn check_gpu() -> Check {
    let out = tokio::process::Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => {
            let n = count_gpus(&String::from_utf8_lossy(&o.stdout));
            if n > 0 {
                Check::ok("gpu", format!("{n} GPU(s) visible to nvidia-smi"))
            } else {
                Check::failed("gpu", ErrorKind::Unavailable, "nvidia-smi lists no GPU")
            }
        }
        Ok(o) => Check::failed(
            "gpu",
            ErrorKind::Unavailable,
            format!(
                "nvidia-smi failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
        ),
        Err(_) => Check::failed(
            "gpu",
            ErrorKind::Unavailable,
            "nvidia-smi not found: this engine needs an NVIDIA GPU and driver",
        ),
    }
}

/// GPUs in `nvidia-smi -L` output (one `GPU <n>: <name> (UUID: ...)` line each; MIG
/// devices are indented under their GPU and not counted twice).
fn count_gpus(listing: &str) -> usize {
    listing.lines().filter(|l| l.starts_with("GPU ")).count()
}

/// `program` as a path, or found on PATH.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = Path::new(program);
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// Whether the engine could run in `mode` here, in a word, for `kitt engines list`.
pub fn availability(info: &EngineInfo, mode: RuntimeMode, docker_up: bool) -> &'static str {
    match (Driver::of(info), mode) {
        (Driver::Simulator, _) => "ready",
        (Driver::Plugin(_), _) => "plugin",
        (Driver::Endpoint, _) | (_, RuntimeMode::External) => "needs url",
        (Driver::Server(launch), RuntimeMode::Native) => {
            if find_program(launch.binary).is_some() {
                "ready"
            } else {
                "no binary"
            }
        }
        (Driver::Server(_), RuntimeMode::Docker) => {
            if docker_up {
                "ready"
            } else {
                "no docker"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_are_counted_from_nvidia_smi_listing() {
        let listing = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-5e1c)\n  MIG 3g.40gb     Device  0: (UUID: MIG-1a2b)\nGPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-9f0d)\n";
        assert_eq!(count_gpus(listing), 2);
        assert_eq!(count_gpus("No devices were found\n"), 0);
    }
}
