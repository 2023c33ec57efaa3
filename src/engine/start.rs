//! `initialize`: start an engine in its runtime and wait until it is healthy. Whatever was
//! started is torn down again when a later step fails or the caller gives up (drop).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::engine::client::{Client, ClientOptions, http_client};
use crate::engine::error::{EngineError, ErrorKind};
use crate::engine::launch::{Driver, HostCache, Placement, ServerLaunch, Setting};
use crate::engine::preflight::{check_model, is_local_path};
use crate::engine::running::RunningEngine;
use crate::engine::runtime::docker::{self, Container, ContainerSpec, Mount};
use crate::engine::runtime::health::wait_healthy;
use crate::engine::runtime::native::NativeProcess;
use crate::engine::runtime::{Handle, StartContext};
use crate::engine::simulator::{SimConfig, Simulator};
use crate::registry::{EngineInfo, Registry};
use crate::suite::gpus::gpu_request;
use crate::suite::model::{EngineSpec, RuntimeMode, WeightsCache};

/// Where a model is mounted inside a container.
const CONTAINER_MODEL_DIR: &str = "/models";

/// Starts engine instance `instance` as `spec` says and waits for its health check.
pub async fn initialize(
    registry: &Registry,
    instance: &str,
    spec: &EngineSpec,
    ctx: &StartContext,
) -> Result<RunningEngine, EngineError> {
    let entry = registry.engines.get(&spec.uses).ok_or_else(|| {
        EngineError::new(
            instance,
            ErrorKind::Config,
            format!("no engine named `{}` is registered", spec.uses),
        )
        .hint(registry.engines.unknown_hint(&spec.uses))
    })?;
    let info = &entry.info;
    let mode = resolve_mode(instance, info, spec)?;
    check_model(registry, instance, info, spec, mode)?;
    let timeout = spec
        .startup_timeout
        .as_ref()
        .map_or(ctx.default_startup_timeout, |d| d.0);
    match (Driver::of(info), mode) {
        (Driver::Plugin(plugin), _) => {
            start_plugin(instance, info, plugin, spec, ctx, timeout).await
        }
        (Driver::Simulator, _) => start_simulator(instance, spec).await,
        (Driver::Endpoint, _) | (_, RuntimeMode::External) => {
            start_external(instance, info, spec, mode, timeout).await
        }
        (Driver::Server(launch), RuntimeMode::Native) => {
            start_native(instance, info, launch, spec, ctx, timeout).await
        }
        (Driver::Server(launch), RuntimeMode::Docker) => {
            start_docker(instance, info, launch, spec, ctx, timeout).await
        }
    }
}

/// The engine's mode: as set, else its first supported one; an unsupported one is refused.
pub fn resolve_mode(
    instance: &str,
    info: &EngineInfo,
    spec: &EngineSpec,
) -> Result<RuntimeMode, EngineError> {
    let mode = spec
        .mode
        .or_else(|| info.modes.first().copied())
        .unwrap_or(RuntimeMode::External);
    if !info.modes.contains(&mode) {
        let modes: Vec<String> = info.modes.iter().map(|m| m.to_string()).collect();
        return Err(EngineError::new(
            instance,
            ErrorKind::Config,
            format!("`{}` does not run in {mode} mode", info.name),
        )
        .hint(format!("use one of: {}", modes.join(", "))));
    }
    Ok(mode)
}

fn client(
    instance: &str,
    spec: &EngineSpec,
    base_url: &str,
    model: &str,
    api_key: Option<String>,
) -> Result<Client, EngineError> {
    let options = ClientOptions {
        request_timeout: Some(
            spec.request_timeout
                .map_or(crate::engine::client::DEFAULT_REQUEST_TIMEOUT, |d| d.0),
        ),
        ..ClientOptions::default()
    };
    Client::new(base_url, model, api_key, options)
        .map_err(|e| EngineError::new(instance, ErrorKind::Failed, e.to_string()))
}

/// The model name requests carry: the engine's fixed one (TGI), else `served_model_name`,
/// else the model as the server was given it.
fn served_name(launch: &ServerLaunch, spec: &EngineSpec, model_arg: Option<&str>) -> String {
    launch
        .requests
        .model_field
        .or_else(|| spec.config.get("served_model_name").and_then(Value::as_str))
        .or(model_arg)
        .or(spec.model.as_deref())
        .unwrap_or("default")
        .to_string()
}

/// The name an external or generic endpoint is asked for.
fn endpoint_name(spec: &EngineSpec) -> String {
    spec.model.clone().unwrap_or_else(|| "default".into())
}

async fn start_simulator(instance: &str, spec: &EngineSpec) -> Result<RunningEngine, EngineError> {
    let config = SimConfig::from_config(&spec.config, spec.model.as_deref())
        .map_err(|e| EngineError::new(instance, ErrorKind::Config, e))?;
    let model = config.model.clone();
    let sim = Simulator::start(config).await.map_err(|e| {
        EngineError::new(
            instance,
            ErrorKind::Failed,
            format!("cannot listen on loopback: {e}"),
        )
    })?;
    let base_url = sim.base_url();
    let client = client(instance, spec, &base_url, &model, None)?;
    Ok(RunningEngine::new(
        instance,
        spec,
        RuntimeMode::Native,
        base_url,
        None,
        model,
        client,
        Driver::Simulator,
        Handle::Simulator(sim),
    ))
}

async fn start_external(
    instance: &str,
    info: &EngineInfo,
    spec: &EngineSpec,
    mode: RuntimeMode,
    timeout: Duration,
) -> Result<RunningEngine, EngineError> {
    let url = spec.url.as_deref().ok_or_else(|| {
        EngineError::new(instance, ErrorKind::Config, "external mode needs a `url`")
            .hint("set the engine's `url:` to the server's base URL, e.g. http://host:8000")
    })?;
    let api_key = match &spec.api_key_env {
        Some(var) => Some(secret_value(instance, var).map_err(|_| {
            EngineError::new(
                instance,
                ErrorKind::Config,
                format!("the API key variable `{var}` is not set"),
            )
            .hint(format!("export {var}=... before running kitt"))
        })??),
        None => None,
    };
    let base_url = url.trim_end_matches('/').to_string();
    let health = format!("{base_url}{}", info.health_endpoint);
    // An endpoint is either up or not: a short wait covers a server still binding its port.
    let wait = timeout.min(Duration::from_secs(10));
    wait_healthy(instance, &health, api_key.as_deref(), wait, || async {
        Ok(())
    })
    .await
    .map_err(|mut e| {
        e.kind = ErrorKind::Unavailable;
        e.hint = Some(format!(
            "check that the server runs and that {base_url} is the right address"
        ));
        e
    })?;
    let model = match Driver::of(info) {
        Driver::Server(launch) => served_name(launch, spec, None),
        _ => endpoint_name(spec),
    };
    let client = client(instance, spec, &base_url, &model, api_key)?;
    Ok(RunningEngine::new(
        instance,
        spec,
        mode,
        base_url,
        None,
        model,
        client,
        Driver::of(info).clone(),
        Handle::External,
    ))
}

async fn start_native(
    instance: &str,
    info: &EngineInfo,
    launch: &ServerLaunch,
    spec: &EngineSpec,
    ctx: &StartContext,
    timeout: Duration,
) -> Result<RunningEngine, EngineError> {
    let port = free_port().map_err(|e| {
        EngineError::new(
            instance,
            ErrorKind::Failed,
            format!("no free local port: {e}"),
        )
    })?;
    let command = launch.command(
        spec,
        &Placement {
            host: "127.0.0.1",
            port,
            model: spec.model.as_deref(),
            native: true,
        },
    );
    let secrets = secrets(instance, spec)?;
    let mut process = NativeProcess::spawn(instance, &command, &secrets, &ctx.run_dir)?;
    if crate::output::verbosity() == crate::output::Verbosity::Verbose {
        (ctx.progress)(&format!(
            "launched `{} {}` (log in {})",
            command.program.as_deref().unwrap_or_default(),
            command.args.join(" "),
            ctx.run_dir.display()
        ));
    }
    let base_url = format!("http://127.0.0.1:{port}");
    let health = format!("{base_url}{}", info.health_endpoint);
    let waited = {
        // The health wait polls liveness from a closure; a mutex keeps the future `Send`.
        let cell = std::sync::Mutex::new(&mut process);
        wait_healthy(instance, &health, None, timeout, || {
            let alive = match cell.lock() {
                Ok(mut p) => p.check_alive(),
                Err(poisoned) => poisoned.into_inner().check_alive(),
            };
            async move { alive }
        })
        .await
    };
    if let Err(mut e) = waited {
        let tail = process.final_log_tail(20).await;
        if !tail.is_empty() {
            e.log_tail = tail;
        }
        process.stop().await;
        return Err(e);
    }
    let handle = Handle::Native(process);
    let model = served_name(launch, spec, spec.model.as_deref());
    let notes = launch.unset_notes(spec);
    let engine = finish_start(
        instance,
        info,
        launch,
        spec,
        RuntimeMode::Native,
        base_url,
        None,
        model,
        handle,
        ctx,
    )
    .await?;
    Ok(notes.into_iter().fold(engine, RunningEngine::with_note))
}

/// What kitt will create for a docker engine, and what it means for the results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DockerLaunch {
    pub container: ContainerSpec,
    /// The model name requests carry.
    pub model: String,
    /// What the engine will not do as one might expect (runs on the CPU, ...).
    pub notes: Vec<String>,
}

/// The container for `spec`, decided without touching Docker: image (the GPU variant when
/// GPUs are requested), command, environment, mounts (model, draft model, weights cache),
/// GPUs (all by default for engines that need one), shm, IPC and ulimits.
/// `machine_gpus` is the number of GPUs of the daemon's machine, when known.
pub fn docker_launch(
    instance: &str,
    info: &EngineInfo,
    launch: &ServerLaunch,
    spec: &EngineSpec,
    run_id: &str,
    machine_gpus: Option<usize>,
) -> Result<DockerLaunch, EngineError> {
    let config_error = |message: String| EngineError::new(instance, ErrorKind::Config, message);
    let resources = spec.resources.clone().unwrap_or_default();
    let (gpus, note) = gpu_request(info, resources.gpus.clone(), machine_gpus);
    let mut notes: Vec<String> = note.into_iter().collect();
    notes.extend(launch.unset_notes(spec));
    let image = spec
        .image
        .clone()
        .or_else(|| {
            gpus.as_ref()
                .and(launch.container.gpu_image)
                .map(str::to_string)
        })
        .or_else(|| info.default_image.clone())
        .ok_or_else(|| config_error("docker mode needs an `image`".into()))?;
    let mut mounts = Vec::new();
    let (model_mount, model_arg) = container_model(spec)?;
    mounts.extend(model_mount);
    // Files named by path settings (a draft model) are mounted read-only too.
    let mut spec = spec.clone();
    for (key, setting) in launch.settings {
        if let (Setting::Path(_), Some(Value::String(path))) = (setting, spec.config.get(*key))
            && is_local_path(path)
        {
            let (mount, inside) = mount_file(instance, path, &format!("/inputs/{key}"))?;
            mounts.push(mount);
            spec.config.insert(key.to_string(), Value::String(inside));
        }
    }
    if let Some(cache) = &spec.weights_cache
        && let Some((host_cache, inside)) = launch.container.weights
    {
        let host = match cache {
            WeightsCache::Path(p) => std::path::PathBuf::from(p),
            WeightsCache::Enabled(true) => default_cache_dir(host_cache).ok_or_else(|| {
                config_error("cannot tell the home directory for the weights cache".into())
            })?,
            WeightsCache::Enabled(false) => std::path::PathBuf::new(),
        };
        if !host.as_os_str().is_empty() {
            std::fs::create_dir_all(&host)
                .map_err(|e| config_error(format!("weights cache {}: {e}", host.display())))?;
            mounts.push(Mount {
                host: host.display().to_string(),
                container: inside.to_string(),
                read_only: false,
            });
        }
    }
    let command = launch.command(
        &spec,
        &Placement {
            host: "0.0.0.0",
            port: info.container_port,
            model: model_arg.as_deref(),
            native: false,
        },
    );
    let size = |text: &str| {
        docker::parse_size(text).ok_or_else(|| config_error(format!("`{text}` is not a size")))
    };
    let shm_size = match (&resources.shm_size, launch.container.shm_size) {
        (Some(text), _) => Some(size(text)?),
        (None, Some(text)) => Some(size(text)?),
        (None, None) => None,
    };
    let ipc_mode = match resources.ipc {
        Some(mode) => Some(mode.to_string()),
        None => launch.container.ipc_host.then(|| "host".to_string()),
    };
    let mut ulimits: Vec<(String, i64, i64)> = launch
        .container
        .ulimits
        .iter()
        .map(|(n, soft, hard)| (n.to_string(), *soft, *hard))
        .collect();
    for (name, limit) in &resources.ulimits {
        let (soft, hard) = limit.soft_hard();
        ulimits.retain(|(n, _, _)| n != name);
        ulimits.push((name.clone(), soft, hard));
    }
    let remote = spec
        .docker_host
        .as_deref()
        .is_some_and(|h| !h.starts_with("unix://"));
    let model = served_name(launch, &spec, model_arg.as_deref());
    Ok(DockerLaunch {
        container: ContainerSpec {
            image,
            entrypoint: launch
                .container
                .entrypoint
                .iter()
                .map(|s| s.to_string())
                .collect(),
            args: command.args,
            env: command.env,
            container_port: info.container_port,
            mounts,
            gpus,
            shm_size,
            ipc_mode,
            ulimits,
            run_id: run_id.to_string(),
            publish_ip: if remote { "0.0.0.0" } else { "127.0.0.1" }.into(),
            docker_host: spec.docker_host.clone(),
        },
        model,
        notes,
    })
}

/// The host directory of a weights cache kind.
fn default_cache_dir(kind: HostCache) -> Option<std::path::PathBuf> {
    match kind {
        HostCache::HuggingFace => std::env::var_os("HF_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| dirs::home_dir().map(|h| h.join(".cache/huggingface"))),
        HostCache::Ollama => dirs::home_dir().map(|h| h.join(".ollama")),
    }
}

async fn start_docker(
    instance: &str,
    info: &EngineInfo,
    launch: &ServerLaunch,
    spec: &EngineSpec,
    ctx: &StartContext,
    timeout: Duration,
) -> Result<RunningEngine, EngineError> {
    let remote_host = spec
        .docker_host
        .as_deref()
        .filter(|h| !h.starts_with("unix://"))
        .and_then(host_of);
    // The local daemon's GPUs are this machine's; a remote daemon's are unknown.
    let machine_gpus = match remote_host {
        Some(_) => None,
        None => Some(ctx.machine_gpus()),
    };
    let plan = docker_launch(instance, info, launch, spec, &ctx.run_id, machine_gpus)?;
    let docker_client = docker::connect(instance, spec.docker_host.as_deref()).await?;
    docker::ensure_image(
        &docker_client,
        instance,
        &plan.container.image,
        &ctx.progress,
    )
    .await?;
    let secrets = secrets(instance, spec)?;
    let (container, port) =
        Container::start(&docker_client, instance, &plan.container, &secrets).await?;
    if crate::output::verbosity() == crate::output::Verbosity::Verbose {
        (ctx.progress)(&format!(
            "started a container of {} with `{}{}` on port {port}",
            plan.container.image,
            plan.container
                .entrypoint
                .iter()
                .map(|e| format!("{e} "))
                .collect::<String>(),
            plan.container.args.join(" ")
        ));
    }
    let host = remote_host.unwrap_or_else(|| "127.0.0.1".into());
    let base_url = format!("http://{host}:{port}");
    let health = format!("{base_url}{}", info.health_endpoint);
    let waited = wait_healthy(instance, &health, None, timeout, || container.check_alive()).await;
    if let Err(mut e) = waited {
        if e.log_tail.is_empty() {
            e.log_tail = container.log_tail(20).await;
        }
        container.stop().await;
        return Err(e);
    }
    let engine = finish_start(
        instance,
        info,
        launch,
        spec,
        RuntimeMode::Docker,
        base_url,
        Some(plan.container.image.clone()),
        plan.model,
        Handle::Docker(container),
        ctx,
    )
    .await?;
    Ok(plan
        .notes
        .into_iter()
        .fold(engine, RunningEngine::with_note))
}

/// After the health check: pull the model where the engine needs it, build the client.
#[allow(clippy::too_many_arguments)]
async fn finish_start(
    instance: &str,
    info: &EngineInfo,
    launch: &ServerLaunch,
    spec: &EngineSpec,
    mode: RuntimeMode,
    base_url: String,
    image: Option<String>,
    model: String,
    handle: Handle,
    ctx: &StartContext,
) -> Result<RunningEngine, EngineError> {
    // The tag itself is pulled (a served name is only what requests carry).
    let tag = spec.model.as_deref().unwrap_or(&model);
    if launch.pulls_model
        && let Err(e) = pull_model(instance, &base_url, tag, ctx).await
    {
        handle.stop().await;
        return Err(e);
    }
    let client = match client(instance, spec, &base_url, &model, None) {
        Ok(c) => c,
        Err(e) => {
            handle.stop().await;
            return Err(e);
        }
    };
    Ok(RunningEngine::new(
        instance,
        spec,
        mode,
        base_url,
        image,
        model,
        client,
        Driver::of(info).clone(),
        handle,
    ))
}

/// Ollama: `POST /api/pull` before first use.
async fn pull_model(
    instance: &str,
    base_url: &str,
    model: &str,
    ctx: &StartContext,
) -> Result<(), EngineError> {
    (ctx.progress)(&format!("pulling model {model}"));
    let http = http_client(&ClientOptions {
        read_timeout: Duration::from_secs(3600),
        ..ClientOptions::default()
    })
    .map_err(|e| EngineError::new(instance, ErrorKind::Failed, e.to_string()))?;
    let response = http
        .post(format!("{base_url}/api/pull"))
        .json(&json!({"model": model, "stream": false}))
        .send()
        .await
        .map_err(|e| {
            EngineError::new(
                instance,
                ErrorKind::Failed,
                format!("model pull failed: {e}"),
            )
        })?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(EngineError::new(
            instance,
            ErrorKind::Config,
            format!(
                "cannot pull model `{model}`: HTTP {status}: {}",
                crate::engine::openai::summarize_body(&body)
            ),
        )
        .hint("check the Ollama tag (e.g. llama3.1:8b)"));
    }
    Ok(())
}

/// A read-only mount of the local file or directory `path` at `inside`; the path the
/// server sees.
fn mount_file(instance: &str, path: &str, inside: &str) -> Result<(Mount, String), EngineError> {
    let real = Path::new(path)
        .canonicalize()
        .map_err(|e| EngineError::new(instance, ErrorKind::Config, format!("`{path}`: {e}")))?;
    if real.is_dir() {
        return Ok((
            Mount {
                host: real.display().to_string(),
                container: inside.to_string(),
                read_only: true,
            },
            inside.to_string(),
        ));
    }
    let parent = real.parent().unwrap_or(Path::new("/"));
    let file = real
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((
        Mount {
            host: parent.display().to_string(),
            container: inside.to_string(),
            read_only: true,
        },
        format!("{inside}/{file}"),
    ))
}

/// The read-only mount for a local model and the path the server sees; hub ids and tags
/// pass through unchanged.
fn container_model(spec: &EngineSpec) -> Result<(Option<Mount>, Option<String>), EngineError> {
    let Some(model) = spec.model.as_deref() else {
        return Ok((None, None));
    };
    if !is_local_path(model) {
        return Ok((None, Some(model.to_string())));
    }
    let (mount, inside) = mount_file(&spec.uses, model, CONTAINER_MODEL_DIR)?;
    Ok((Some(mount), Some(inside)))
}

/// Reads the secrets the engine passes through; a missing one is an error naming it. Each
/// value is registered for masking before the engine can print it.
fn secrets(instance: &str, spec: &EngineSpec) -> Result<Vec<(String, String)>, EngineError> {
    spec.secrets
        .iter()
        .map(|name| {
            let value = secret_value(instance, name).map_err(|_| {
                EngineError::new(
                    instance,
                    ErrorKind::Config,
                    format!("secret `{name}` is not set in kitt's environment"),
                )
                .hint(format!("export {name}=... or remove it from `secrets:`"))
            })??;
            Ok((name.clone(), value))
        })
        .collect()
}

/// The value of the secret environment variable `name`, registered for masking in all
/// kitt writes; the outer error is a missing variable, the inner one a value too short to
/// mask.
fn secret_value(
    instance: &str,
    name: &str,
) -> Result<Result<String, EngineError>, std::env::VarError> {
    let value = std::env::var(name)?;
    Ok(match crate::redact::register(name, &value) {
        Ok(()) => Ok(value),
        Err(e) => Err(EngineError::new(instance, ErrorKind::Config, e.to_string())
            .hint("use a real secret value; kitt masks secrets by their value")),
    })
}

/// Registers for masking the secrets every engine of a suite will use that are set now, so
/// nothing printed before an engine starts can show them either.
pub fn register_secrets<'a>(specs: impl IntoIterator<Item = &'a EngineSpec>) {
    for spec in specs {
        for name in spec.secrets.iter().chain(&spec.api_key_env) {
            if let Ok(value) = std::env::var(name) {
                let _ = crate::redact::register(name, &value);
            }
        }
    }
}

/// A free loopback port (the kernel's pick).
/// Starts an engine plugin: its process serves OpenAI-compatible HTTP and answers `start`
/// with the base URL; kitt then waits for the health path as for any server.
async fn start_plugin(
    instance: &str,
    info: &EngineInfo,
    plugin: &std::sync::Arc<crate::plugin::PluginRef>,
    spec: &EngineSpec,
    ctx: &StartContext,
    timeout: Duration,
) -> Result<RunningEngine, EngineError> {
    use crate::plugin::error::PluginError;
    use crate::plugin::subprocess::PluginProcess;
    let fail = |kind, message: String| EngineError::new(instance, kind, message);
    let mut process = PluginProcess::start(&plugin.dir, &plugin.manifest, &ctx.run_dir)
        .await
        .map_err(|e| fail(ErrorKind::Failed, e.to_string()))?;
    let port = free_port().map_err(|e| fail(ErrorKind::Failed, format!("no free port: {e}")))?;
    let request = json!({
        "model": spec.model, "config": spec.config, "args": spec.args,
        "port": port, "run_dir": ctx.run_dir,
    });
    let answer = process
        .call("start", request, timeout, &crate::plugin::host::NoHost)
        .await
        .map_err(|e| match &e {
            PluginError::Reported { error, .. } if error.kind() == "user" => {
                fail(ErrorKind::Config, e.to_string())
            }
            _ => fail(ErrorKind::Failed, e.to_string()),
        })?;
    let Some(base_url) = answer
        .get("base_url")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        process.stop().await;
        return Err(fail(
            ErrorKind::Failed,
            format!(
                "plugin `{}` answered `start` without a `base_url`",
                plugin.manifest.name
            ),
        ));
    };
    let model = answer
        .get("model")
        .and_then(Value::as_str)
        .map_or_else(|| endpoint_name(spec), str::to_string);
    let health = format!("{base_url}{}", info.health_endpoint);
    let waited = {
        let cell = std::sync::Mutex::new(&mut process);
        wait_healthy(instance, &health, None, timeout, || {
            let exited = match cell.lock() {
                Ok(mut p) => p.exit_status().map(|s| (s, p.last_stderr())),
                Err(_) => None,
            };
            async move {
                match exited {
                    Some((status, stderr)) => Err(EngineError::new(
                        instance,
                        ErrorKind::Failed,
                        format!("the plugin process exited ({status}){stderr}"),
                    )),
                    None => Ok(()),
                }
            }
        })
        .await
    };
    if let Err(e) = waited {
        process.stop().await;
        return Err(e);
    }
    let client = client(instance, spec, &base_url, &model, None)?;
    Ok(RunningEngine::new(
        instance,
        spec,
        RuntimeMode::Native,
        base_url,
        None,
        model,
        client,
        Driver::Plugin(plugin.clone()),
        Handle::Plugin(Box::new(process)),
    ))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// The host of `tcp://host:port` or `http://host:port`.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host = rest.split(['/', ':']).next()?;
    (!host.is_empty()).then(|| host.to_string())
}
