//! The docker runtime, through bollard: image pull with progress, a container with a free
//! host port, GPUs, a read-only model mount, shm and secrets, labels to find it again, and
//! removal on every exit path (cleanup, error, panic, cancellation).

use std::collections::HashMap;
use std::sync::Arc;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, DeviceRequest, HostConfig, PortBinding, ResourcesUlimits,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;

use crate::engine::error::{EngineError, ErrorKind};
use crate::process::owner::Owner;
use crate::suite::model::GpuRequest;

/// Label holding the run id.
pub const LABEL_RUN: &str = "kitt.run";
/// Label holding the engine instance name.
pub const LABEL_ENGINE: &str = "kitt.engine";
/// Label holding `host:pid` of the kitt process that owns the container.
pub const LABEL_OWNER: &str = "kitt.owner";

/// Reports progress lines (image pulls).
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// Connects to `docker_host` (`tcp://`, `http://`, `unix://`) or the local daemon, and
/// checks that it answers.
pub async fn connect(engine: &str, docker_host: Option<&str>) -> Result<Docker, EngineError> {
    let unavailable = |reason: String| {
        EngineError::new(
            engine,
            ErrorKind::Unavailable,
            format!("Docker is not reachable: {reason}"),
        )
        .hint("start the Docker daemon, or set the engine's `docker_host` / DOCKER_HOST")
    };
    let docker = match docker_host {
        Some(host) if host.starts_with("unix://") => Docker::connect_with_unix(
            host.trim_start_matches("unix://"),
            120,
            bollard::API_DEFAULT_VERSION,
        ),
        Some(host) => Docker::connect_with_http(host, 120, bollard::API_DEFAULT_VERSION),
        None => Docker::connect_with_local_defaults(),
    }
    .map_err(|e| unavailable(e.to_string()))?;
    docker
        .ping()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    Ok(docker)
}

/// Whether `image` is present, pulling it (with progress) when it is not.
pub async fn ensure_image(
    docker: &Docker,
    engine: &str,
    image: &str,
    progress: &Progress,
) -> Result<(), EngineError> {
    if docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    progress(&format!("pulling {image}"));
    let (repo, tag) = split_tag(image);
    let options = CreateImageOptionsBuilder::default()
        .from_image(repo)
        .tag(tag)
        .build();
    let mut pull = docker.create_image(Some(options), None, None);
    let mut last = String::new();
    while let Some(item) = pull.next().await {
        match item {
            Ok(info) => {
                let detail = info
                    .progress_detail
                    .and_then(|d| match (d.current, d.total) {
                        (Some(c), Some(t)) if t > 0 => Some(format!("{}%", c * 100 / t)),
                        _ => None,
                    });
                let line = [info.id, info.status, detail]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                if !line.is_empty() && line != last {
                    progress(&format!("{image}: {line}"));
                    last = line;
                }
            }
            Err(e) => {
                return Err(EngineError::new(
                    engine,
                    ErrorKind::Unavailable,
                    format!("image `{image}` is not present and cannot be pulled: {}", short(&e)),
                )
                .hint(format!(
                    "check the image name, log in to its registry, or build/load it locally (docker build -t {image} ... / docker load)"
                )));
            }
        }
    }
    Ok(())
}

/// Everything needed to create an engine container.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ContainerSpec {
    pub image: String,
    /// Replaces the image's entrypoint when not empty.
    pub entrypoint: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub container_port: u16,
    /// Bind mounts: host path, container path, read-only.
    pub mounts: Vec<Mount>,
    pub gpus: Option<GpuRequest>,
    pub shm_size: Option<i64>,
    /// `host`, `private` or `shareable`; Docker's default when none.
    pub ipc_mode: Option<String>,
    /// Ulimits: name, soft, hard.
    pub ulimits: Vec<(String, i64, i64)>,
    pub run_id: String,
    /// Address the port is published on (127.0.0.1 for a local daemon).
    pub publish_ip: String,
    /// The daemon the container runs on (none: the local one), for its guard.
    pub docker_host: Option<String>,
}

/// A bind mount of a container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mount {
    pub host: String,
    pub container: String,
    pub read_only: bool,
}

/// A created engine container, removed when stopped or dropped.
#[derive(Debug)]
pub struct Container {
    docker: Docker,
    engine: String,
    id: Option<String>,
    /// The process that removes the container should kitt die without doing it.
    guard: Option<std::process::Child>,
    /// `PORT/tcp` of the server inside.
    port_key: String,
}

impl Container {
    /// Creates the container (not started); `secrets` go into its environment and nowhere
    /// else. Its guard removes it should kitt die.
    pub async fn create(
        docker: &Docker,
        engine: &str,
        spec: &ContainerSpec,
        secrets: &[(String, String)],
    ) -> Result<Container, EngineError> {
        let port_key = format!("{}/tcp", spec.container_port);
        let mut labels = HashMap::new();
        labels.insert(LABEL_RUN.to_string(), spec.run_id.clone());
        labels.insert(LABEL_ENGINE.to_string(), engine.to_string());
        labels.insert(LABEL_OWNER.to_string(), owner());
        let env: Vec<String> = spec
            .env
            .iter()
            .chain(secrets)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let binds: Vec<String> = spec
            .mounts
            .iter()
            .map(|m| {
                let mode = if m.read_only { ":ro" } else { "" };
                format!("{}:{}{mode}", m.host, m.container)
            })
            .collect();
        let host_config = HostConfig {
            port_bindings: Some(HashMap::from([(
                port_key.clone(),
                Some(vec![PortBinding {
                    host_ip: Some(spec.publish_ip.clone()),
                    host_port: Some(String::new()),
                }]),
            )])),
            binds: (!binds.is_empty()).then_some(binds),
            device_requests: spec.gpus.as_ref().map(device_requests),
            shm_size: spec.shm_size,
            ipc_mode: spec.ipc_mode.clone(),
            ulimits: (!spec.ulimits.is_empty()).then(|| {
                spec.ulimits
                    .iter()
                    .map(|(name, soft, hard)| ResourcesUlimits {
                        name: Some(name.clone()),
                        soft: Some(*soft),
                        hard: Some(*hard),
                    })
                    .collect()
            }),
            ..HostConfig::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: (!spec.entrypoint.is_empty()).then(|| spec.entrypoint.clone()),
            cmd: Some(spec.args.clone()),
            env: Some(env),
            labels: Some(labels),
            exposed_ports: Some(vec![port_key.clone()]),
            host_config: Some(host_config),
            ..ContainerCreateBody::default()
        };
        let name = format!("kitt-{}-{}", sanitize(engine), sanitize(&spec.run_id));
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let created = docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| {
                EngineError::new(
                    engine,
                    ErrorKind::Failed,
                    format!(
                        "cannot create a container from `{}`: {}",
                        spec.image,
                        short(&e)
                    ),
                )
            })?;
        let guard = spawn_guard(&created.id, spec.docker_host.as_deref());
        Ok(Container {
            docker: docker.clone(),
            engine: engine.to_string(),
            id: Some(created.id),
            guard,
            port_key,
        })
    }

    /// Creates and starts the container; returns it and the host port its server is
    /// published on.
    pub async fn start(
        docker: &Docker,
        engine: &str,
        spec: &ContainerSpec,
        secrets: &[(String, String)],
    ) -> Result<(Container, u16), EngineError> {
        let container = Container::create(docker, engine, spec, secrets).await?;
        let port_key = container.port_key.clone();
        let id = container.id().to_string();
        docker.start_container(&id, None).await.map_err(|e| {
            EngineError::new(
                engine,
                ErrorKind::Failed,
                format!("cannot start container {}: {}", &id[..12], short(&e)),
            )
        })?;
        let inspect = docker.inspect_container(&id, None).await.map_err(|e| {
            EngineError::new(
                engine,
                ErrorKind::Failed,
                format!("cannot inspect container: {}", short(&e)),
            )
        })?;
        let host_port = inspect
            .network_settings
            .and_then(|n| n.ports)
            .and_then(|mut ports| ports.remove(&port_key).flatten())
            .and_then(|bindings| bindings.into_iter().find_map(|b| b.host_port))
            .and_then(|p| p.parse::<u16>().ok());
        match host_port {
            Some(port) => Ok((container, port)),
            None => {
                let mut err = container.check_alive().await.err().unwrap_or_else(|| {
                    EngineError::new(
                        engine,
                        ErrorKind::Failed,
                        format!("Docker published no host port for {port_key}"),
                    )
                });
                err.message = format!("{} (before its port was published)", err.message);
                container.stop().await;
                Err(err)
            }
        }
    }

    /// The id of `image` on this container's daemon.
    pub async fn image_id(&self, image: &str) -> Option<String> {
        self.docker
            .inspect_image(image)
            .await
            .ok()
            .and_then(|i| i.id)
    }

    /// The container's memory use in bytes as `docker stats` counts it (usage less the
    /// inactive page cache).
    pub async fn memory_bytes(&self) -> Result<u64, String> {
        let id = self.id.as_deref().ok_or("the container was removed")?;
        let options = bollard::query_parameters::StatsOptions {
            stream: false,
            one_shot: true,
        };
        let mut stats = std::pin::pin!(self.docker.stats(id, Some(options)));
        let first = futures_util::StreamExt::next(&mut stats)
            .await
            .ok_or("the daemon sent no stats")?
            .map_err(|e| format!("cannot read the container's stats: {e}"))?;
        let memory = first
            .memory_stats
            .ok_or("the daemon reported no memory stats")?;
        let usage = memory.usage.ok_or("the daemon reported no memory usage")?;
        let cache = memory
            .stats
            .as_ref()
            .and_then(|s| {
                s.get("inactive_file")
                    .or_else(|| s.get("total_inactive_file"))
            })
            .copied()
            .unwrap_or(0);
        Ok(usage.saturating_sub(cache))
    }

    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    /// Fails with the container's last log lines when it is no longer running.
    pub async fn check_alive(&self) -> Result<(), EngineError> {
        let inspect = self
            .docker
            .inspect_container(self.id(), None)
            .await
            .map_err(|e| {
                EngineError::new(
                    &self.engine,
                    ErrorKind::Failed,
                    format!("the container disappeared: {}", short(&e)),
                )
            })?;
        let state = inspect.state.unwrap_or_default();
        if state.running == Some(true) {
            return Ok(());
        }
        let code = state.exit_code.unwrap_or(-1);
        Err(EngineError::new(
            &self.engine,
            ErrorKind::Failed,
            format!("the container exited during start-up (exit code {code})"),
        )
        .logs(self.log_tail(20).await))
    }

    /// The container's last `n` log lines (stdout and stderr).
    pub async fn log_tail(&self, n: usize) -> Vec<String> {
        let tail = n.to_string();
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&tail)
            .build();
        let mut logs = self.docker.logs(self.id(), Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = logs.next().await {
            text.push_str(&chunk.to_string());
        }
        crate::engine::error::last_lines(&text, n)
    }

    /// Stops (10 s grace) and removes the container.
    pub async fn stop(mut self) {
        if let Some(id) = self.id.take() {
            let stop = StopContainerOptionsBuilder::default().t(10).build();
            let _ = self.docker.stop_container(&id, Some(stop)).await;
            remove(&self.docker, &id).await;
        }
        end_guard(&mut self.guard);
    }
}

impl Drop for Container {
    /// Panic, error or cancellation: remove the container before going on. The removal runs
    /// on its own thread and runtime, since this may run inside (or outside) an async task.
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let docker = self.docker.clone();
            let handle = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(remove(&docker, &id));
                }
            });
            let _ = handle.join();
        }
        end_guard(&mut self.guard);
    }
}

/// The hidden first argument that runs a container's guard.
pub const GUARD_ARG: &str = "__guard-container";

/// Starts the guard of container `id`: a kitt process that removes the container when kitt
/// dies without removing it (SIGKILL, a crash). None when no kitt executable is known.
fn spawn_guard(id: &str, docker_host: Option<&str>) -> Option<std::process::Child> {
    let exe = crate::process::executable().ok()?;
    let mut command = std::process::Command::new(exe);
    command
        .arg(GUARD_ARG)
        .arg(std::process::id().to_string())
        .arg(id)
        .args(docker_host)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command.spawn().ok()
}

/// Ends a guard whose container kitt removed itself.
fn end_guard(guard: &mut Option<std::process::Child>) {
    if let Some(mut g) = guard.take() {
        let _ = g.kill();
        let _ = g.wait();
    }
}

/// The guard's side (`kitt __guard-container PARENT ID [DOCKER_HOST]`): waits while kitt
/// lives; once kitt is gone, removes the container and exits.
pub fn guard_main(args: &[String]) -> u8 {
    let (Some(parent), Some(id)) = (
        args.first().and_then(|p| p.parse::<i32>().ok()),
        args.get(1),
    ) else {
        return crate::exit::USAGE;
    };
    let host = args.get(2).map(String::as_str);
    while nix::unistd::getppid().as_raw() == parent {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return crate::exit::INTERNAL;
    };
    runtime.block_on(async {
        if let Ok(docker) = connect("guard", host).await {
            remove(&docker, id).await;
        }
    });
    crate::exit::OK
}

async fn remove(docker: &Docker, id: &str) {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    let _ = docker.remove_container(id, Some(options)).await;
}

/// A container kitt left behind.
#[derive(Debug, Clone)]
pub struct Orphan {
    pub id: String,
    pub name: String,
    pub engine: String,
    pub run: String,
    pub owner: String,
}

/// Containers labelled by kitt whose owning process is gone (or all of them with `all`).
pub async fn orphans(docker: &Docker, all: bool) -> Result<Vec<Orphan>, bollard::errors::Error> {
    let filters = HashMap::from([("label", vec![LABEL_RUN])]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let containers = docker.list_containers(Some(options)).await?;
    let mut found = Vec::new();
    for c in containers {
        let labels = c.labels.unwrap_or_default();
        let owner = labels.get(LABEL_OWNER).cloned().unwrap_or_default();
        // Without `all`, only containers with a kitt owner that is gone: a container someone
        // else labelled `kitt.run` without an owner is left alone.
        let gone = Owner::from_label(&owner).is_some_and(|o| !o.alive_here());
        if !all && !gone {
            continue;
        }
        found.push(Orphan {
            id: c.id.unwrap_or_default(),
            name: c
                .names
                .and_then(|n| n.into_iter().next())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            engine: labels.get(LABEL_ENGINE).cloned().unwrap_or_default(),
            run: labels.get(LABEL_RUN).cloned().unwrap_or_default(),
            owner,
        });
    }
    Ok(found)
}

/// Removes one orphan.
pub async fn remove_orphan(docker: &Docker, orphan: &Orphan) {
    remove(docker, &orphan.id).await;
}

fn owner() -> String {
    Owner::me().label()
}

fn device_requests(gpus: &GpuRequest) -> Vec<DeviceRequest> {
    let (count, device_ids) = match gpus {
        GpuRequest::All(_) => (Some(-1), None),
        GpuRequest::Count(n) => (Some(i64::from(*n)), None),
        GpuRequest::Ids(ids) => (None, Some(ids.iter().map(u32::to_string).collect())),
    };
    vec![DeviceRequest {
        driver: Some("nvidia".into()),
        count,
        device_ids,
        capabilities: Some(vec![vec!["gpu".into()]]),
        ..DeviceRequest::default()
    }]
}

/// `repo:tag` split at the tag (a registry port is not a tag); `latest` when none.
fn split_tag(image: &str) -> (&str, &str) {
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], &image[name_start + i + 1..]),
        None => (image, "latest"),
    }
}

/// Parses a size like `8g`, `512m` or `1073741824` into bytes.
pub fn parse_size(size: &str) -> Option<i64> {
    let (digits, unit) = match size.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&size[..i], c.to_ascii_lowercase()),
        _ => (size, 'b'),
    };
    let n: i64 = digits.parse().ok()?;
    let mult = match unit {
        'b' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn short(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_sizes() {
        assert_eq!(
            split_tag("vllm/vllm-openai:v0.9.2"),
            ("vllm/vllm-openai", "v0.9.2")
        );
        assert_eq!(
            split_tag("localhost:5000/x"),
            ("localhost:5000/x", "latest")
        );
        assert_eq!(parse_size("8g"), Some(8 << 30));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("x"), None);
    }
}
