//! The docker runtime against the real daemon, with images these tests build themselves
//! (`FROM scratch` plus llama-server and the shared libraries it needs): create, port
//! mapping, health wait, generate, stop and remove; a container that dies at start; a
//! missing image; Ctrl-C during the health wait; `kitt engines gc`. Every test checks by
//! label that no container is left behind.

mod common;
#[path = "common/bench.rs"]
mod harness;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use kitt::engine::error::ErrorKind;
use kitt::engine::generation::{CountSource, GenerationRequest};
use kitt::engine::runtime::StartContext;
use kitt::engine::runtime::docker::{LABEL_ENGINE, LABEL_OWNER, LABEL_RUN, connect};
use kitt::suite::model::{EngineSpec, RuntimeMode, Sampling};

use common::images::{LLAMA_IMAGE, STALL_IMAGE, images};

async fn docker() -> Docker {
    connect("test", None).await.unwrap_or_else(|e| {
        panic!(
            "Docker must be reachable for these tests (KITT_SKIP=docker skips them locally): {e}"
        )
    })
}

async fn containers_with(docker: &Docker, label: &str, value: &str) -> Vec<String> {
    let filter = format!("{label}={value}");
    let filters = HashMap::from([("label", vec![filter.as_str()])]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .expect("list containers")
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

fn context(dir: &Path) -> StartContext {
    common::supervisor();
    StartContext {
        run_dir: dir.to_path_buf(),
        default_startup_timeout: Duration::from_secs(60),
        ..StartContext::new_run()
    }
}

fn llama_spec(image: &str, args: &[&str]) -> EngineSpec {
    EngineSpec {
        uses: "llama.cpp".into(),
        mode: Some(RuntimeMode::Docker),
        image: Some(image.into()),
        model: Some(common::test_model().display().to_string()),
        args: args.iter().map(|s| s.to_string()).collect(),
        ..EngineSpec::default()
    }
}

#[tokio::test]
async fn llama_server_in_a_container_generates_and_is_removed() {
    if common::skipped("docker") {
        return;
    }
    images();
    let docker = docker().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(dir.path());
    let spec = llama_spec(LLAMA_IMAGE, &["--threads", "2"]);
    let engine = kitt::engine::initialize(&kitt::assemble::builtins(), "boxed", &spec, &ctx)
        .await
        .unwrap_or_else(|e| panic!("container starts: {e}"));
    let id = engine.container_id().expect("container id").to_string();
    assert_eq!(
        containers_with(&docker, LABEL_RUN, &ctx.run_id).await,
        vec![id.clone()]
    );
    assert_eq!(
        containers_with(&docker, LABEL_ENGINE, "boxed").await.len(),
        1
    );
    let inspect = docker.inspect_container(&id, None).await.expect("inspect");
    let mounts = inspect.mounts.unwrap_or_default();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].rw, Some(false), "the model is mounted read-only");
    assert!(engine.base_url.starts_with("http://127.0.0.1:"));

    let req = GenerationRequest {
        sampling: Sampling {
            max_tokens: Some(12),
            temperature: Some(0.0),
            ..Sampling::default()
        },
        ..GenerationRequest::chat("Name three colors.")
    };
    let r = engine.generate(&req).await.expect("generation");
    let timings = r.server_timings.expect("timings");
    assert_eq!(r.count_source, CountSource::ServerUsage);
    assert_eq!(Some(r.completion_tokens), timings.predicted_n);
    assert!(r.ttft.expect("ttft").as_secs_f64() * 1e3 >= timings.prompt_ms.expect("prompt_ms"));
    // The memory benchmark reads the container's own stats.
    let memory = harness::run(
        &engine,
        "memory",
        serde_json::json!({"requests": 4, "concurrency": 2, "input_tokens": 16,
                           "output_tokens": 8, "interval": "100ms"}),
    )
    .await;
    assert!(memory.passed, "{:?}", memory.errors);
    assert!(
        memory.outputs["memory_source"]
            .as_str()
            .is_some_and(|s| s.contains("container")),
        "{:?}",
        memory.outputs
    );
    assert!(harness::metric(&memory, "memory_peak_mib") > 5.0);
    assert!(harness::metric(&memory, "memory_samples") >= 1.0);
    engine.cleanup().await;
    assert!(
        containers_with(&docker, LABEL_RUN, &ctx.run_id)
            .await
            .is_empty(),
        "container left behind"
    );
}

#[tokio::test]
async fn container_that_exits_at_start_fails_with_its_logs_and_is_removed() {
    if common::skipped("docker") {
        return;
    }
    images();
    let docker = docker().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(dir.path());
    // SAFETY: set before any thread of this test reads it; the name is unique to this test.
    unsafe { std::env::set_var("KITT_TEST_SECRET_TOKEN", "s3cr3t-do-not-print") };
    let mut spec = llama_spec(LLAMA_IMAGE, &["--no-such-flag"]);
    spec.secrets = vec!["KITT_TEST_SECRET_TOKEN".into()];
    let started = Instant::now();
    let err = kitt::engine::initialize(&kitt::assemble::builtins(), "dies", &spec, &ctx)
        .await
        .expect_err("the container exits");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited for the deadline"
    );
    assert_eq!(err.kind, ErrorKind::Failed);
    let text = err.to_string();
    assert!(text.contains("exited"), "{text}");
    assert!(
        text.contains("no-such-flag"),
        "the container's log is shown: {text}"
    );
    assert!(
        !text.contains("s3cr3t-do-not-print"),
        "a secret leaked: {text}"
    );
    assert!(
        containers_with(&docker, LABEL_RUN, &ctx.run_id)
            .await
            .is_empty(),
        "container left behind"
    );
}

#[tokio::test]
async fn missing_image_is_a_clear_error_and_starts_nothing() {
    if common::skipped("docker") {
        return;
    }
    let docker = docker().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(dir.path());
    let mut spec = llama_spec("kitt-test/does-not-exist:0", &[]);
    // The per-engine daemon address, pointed at the local daemon's socket.
    spec.docker_host = Some("unix:///var/run/docker.sock".into());
    let err = kitt::engine::initialize(&kitt::assemble::builtins(), "ghost", &spec, &ctx)
        .await
        .expect_err("no such image");
    let text = err.to_string();
    assert!(text.contains("kitt-test/does-not-exist:0"), "{text}");
    assert!(text.contains("hint:"), "{text}");
    assert!(
        containers_with(&docker, LABEL_RUN, &ctx.run_id)
            .await
            .is_empty()
    );
}

/// Waits until `check` holds, for at most `limit`.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `kitt engines try` waiting on a container that never becomes healthy.
struct Stalled {
    kitt: std::process::Child,
    docker: Docker,
    /// The owner label's `:pid:` part (the label is `host:pid:start`).
    owner_part: String,
    _dir: tempfile::TempDir,
}

impl Stalled {
    /// Starts kitt and waits until its container exists.
    async fn start() -> Stalled {
        images();
        let dir = tempfile::tempdir().expect("tempdir");
        let kitt = Command::new(env!("CARGO_BIN_EXE_kitt"))
            .args([
                "engines",
                "try",
                "llama.cpp",
                "--mode",
                "docker",
                "--image",
                STALL_IMAGE,
            ])
            .arg("--model")
            .arg(common::test_model())
            .args(["--startup-timeout", "5m"])
            .env("KITT_DATA_DIR", dir.path())
            .spawn()
            .expect("kitt runs");
        let stalled = Stalled {
            owner_part: format!(":{}:", kitt.id()),
            kitt,
            docker: docker().await,
            _dir: dir,
        };
        assert!(
            eventually(Duration::from_secs(30), async || !stalled
                .containers()
                .await
                .is_empty())
            .await,
            "the container never appeared"
        );
        stalled
    }

    /// The containers this kitt owns.
    async fn containers(&self) -> Vec<String> {
        let filters = HashMap::from([("label", vec![LABEL_OWNER])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        self.docker
            .list_containers(Some(options))
            .await
            .expect("list")
            .into_iter()
            .filter(|c| {
                c.labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_OWNER))
                    .is_some_and(|o| o.contains(&self.owner_part))
            })
            .filter_map(|c| c.id)
            .collect()
    }
}

#[tokio::test]
async fn ctrl_c_during_the_health_wait_removes_the_container() {
    if common::skipped("docker") {
        return;
    }
    let mut s = Stalled::start().await;
    assert_eq!(common::interrupt(&mut s.kitt), Some(130));
    assert!(
        s.containers().await.is_empty(),
        "container left behind after Ctrl-C"
    );
}

/// kitt killed with SIGKILL cannot clean up: the container's guard removes it.
#[tokio::test]
async fn sigkill_of_kitt_still_removes_the_container() {
    if common::skipped("docker") {
        return;
    }
    let mut s = Stalled::start().await;
    // Its guard's command line: `kitt __guard-container <kitt's pid> <container id>`.
    let guard = format!(
        "{}\0{}\0",
        kitt::engine::runtime::docker::GUARD_ARG,
        s.kitt.id()
    );
    assert!(
        !common::processes_with(&guard).is_empty(),
        "a guard watches kitt"
    );
    s.kitt.kill().expect("SIGKILL");
    s.kitt.wait().expect("reaped");
    assert!(
        eventually(Duration::from_secs(15), async || s
            .containers()
            .await
            .is_empty())
        .await,
        "container left behind after SIGKILL"
    );
    assert!(
        eventually(Duration::from_secs(5), async || common::processes_with(
            &guard
        )
        .is_empty())
        .await,
        "the guard ended"
    );
}

#[tokio::test]
async fn gc_removes_containers_of_dead_runs_only() {
    if common::skipped("docker") {
        return;
    }
    images();
    let docker = docker().await;
    let host = nix::unistd::gethostname()
        .expect("hostname")
        .into_string()
        .expect("utf-8");
    let create = async |name: &str, owner: String| -> String {
        let mut labels = HashMap::from([
            (LABEL_RUN.to_string(), "gc-test".to_string()),
            (LABEL_ENGINE.to_string(), name.to_string()),
            (LABEL_OWNER.to_string(), owner.clone()),
        ]);
        if owner.is_empty() {
            labels.remove(LABEL_OWNER);
        }
        let body = ContainerCreateBody {
            image: Some(STALL_IMAGE.into()),
            labels: Some(labels),
            ..ContainerCreateBody::default()
        };
        docker
            .create_container(None, body)
            .await
            .expect("create")
            .id
    };
    // A pid that is not running: the largest pid value, never handed out by default.
    let dead = create("dead", format!("{host}:4194303")).await;
    let alive = create("alive", format!("{host}:{}", std::process::id())).await;
    // Someone else's container that happens to carry `kitt.run`, with no kitt owner.
    let foreign = create("foreign", String::new()).await;
    // The owner label as kitt writes it now (host, pid, start time), of a process long gone.
    let reused = create("reused", format!("{host}:{}:1", std::process::id())).await;
    let out = Command::new(env!("CARGO_BIN_EXE_kitt"))
        .args(["engines", "gc"])
        .output()
        .expect("kitt gc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("engine `dead`"), "{stdout}");
    assert!(stdout.contains("engine `reused`"), "{stdout}");
    assert!(!stdout.contains("engine `alive`"), "{stdout}");
    assert!(!stdout.contains("engine `foreign`"), "{stdout}");
    let left = containers_with(&docker, LABEL_RUN, "gc-test").await;
    assert!(!left.contains(&dead), "gc kept the dead run's container");
    assert!(
        !left.contains(&reused),
        "a live pid with another start time is not the owner"
    );
    assert!(left.contains(&alive), "gc removed a live run's container");
    assert!(
        left.contains(&foreign),
        "gc removed a container kitt does not own"
    );
    for id in [alive, foreign] {
        let rm = RemoveContainerOptionsBuilder::default().force(true).build();
        docker
            .remove_container(&id, Some(rm))
            .await
            .expect("remove");
    }
}

/// What kitt plans for each engine is what the daemon creates: the container is created
/// (not started: the GPU engines' device requests need an NVIDIA runtime this machine does
/// not have) from a self-built image, then inspected through bollard.
#[tokio::test]
async fn created_containers_have_the_planned_settings() {
    if common::skipped("docker") {
        return;
    }
    images();
    common::supervisor();
    let docker = docker().await;
    let registry = kitt::assemble::builtins();
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("hf-cache");
    let cases = [
        (
            "vllm",
            serde_json::json!({"uses": "vllm", "model": "org/m", "resources": {"gpus": 2, "shm_size": "2g"},
                "weights_cache": cache.display().to_string(),
                "config": {"context_length": 4096, "enable_prefix_caching": false}}),
        ),
        (
            "sglang",
            serde_json::json!({"uses": "sglang", "model": "org/m", "config": {"radix_cache": false}}),
        ),
        (
            "tgi",
            serde_json::json!({"uses": "tgi", "model": "org/m", "resources": {"ipc": "shareable", "ulimits": {"nofile": {"soft": 4096, "hard": 8192}}},
                "config": {"max_concurrent_requests": 256}}),
        ),
        (
            "ollama",
            serde_json::json!({"uses": "ollama", "model": "llama3.2:1b", "config": {"context_length": 8192, "keep_alive": "30m"}}),
        ),
    ];
    for (name, spec) in cases {
        let spec: EngineSpec = serde_json::from_value(spec).expect("spec");
        let entry = registry.engines.get(name).expect("engine");
        let kitt::engine::launch::Driver::Server(launch) =
            kitt::engine::launch::Driver::of(&entry.info)
        else {
            panic!("server engine");
        };
        let run_id = format!("inspect-{}-{name}", std::process::id());
        let plan =
            kitt::engine::start::docker_launch(name, &entry.info, launch, &spec, &run_id, Some(1))
                .expect("plan");
        let mut planned = plan.container.clone();
        planned.image = STALL_IMAGE.into();
        let container = kitt::engine::runtime::docker::Container::create(
            &docker,
            name,
            &planned,
            &[("SECRET_FOR_INSPECT".into(), "s3cr3t-inspect".into())],
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let inspect = docker
            .inspect_container(container.id(), None)
            .await
            .expect("inspect");
        let config = inspect.config.expect("config");
        let host = inspect.host_config.expect("host config");
        assert_eq!(config.cmd.unwrap_or_default(), planned.args, "{name}: Cmd");
        if !planned.entrypoint.is_empty() {
            assert_eq!(
                config.entrypoint,
                Some(planned.entrypoint.clone()),
                "{name}"
            );
        }
        let env = config.env.unwrap_or_default();
        for (k, v) in &planned.env {
            assert!(env.contains(&format!("{k}={v}")), "{name}: {k} in {env:?}");
        }
        assert!(env.contains(&"SECRET_FOR_INSPECT=s3cr3t-inspect".to_string()));
        // Without a size the daemon reports its default, 64 MiB.
        let shm = planned.shm_size.or(Some(64 << 20));
        assert_eq!(host.shm_size, shm, "{name}: shm");
        // Without a mode the daemon reports its default (private, or shareable by config).
        match &planned.ipc_mode {
            Some(mode) => assert_eq!(host.ipc_mode.as_ref(), Some(mode), "{name}: ipc"),
            None => assert_ne!(host.ipc_mode.as_deref(), Some("host"), "{name}: ipc"),
        }
        let ulimits: Vec<(String, i64, i64)> = host
            .ulimits
            .unwrap_or_default()
            .into_iter()
            .map(|u| {
                (
                    u.name.unwrap_or_default(),
                    u.soft.unwrap_or(0),
                    u.hard.unwrap_or(0),
                )
            })
            .collect();
        assert_eq!(ulimits, planned.ulimits, "{name}: ulimits");
        let gpus = host.device_requests.unwrap_or_default();
        match &planned.gpus {
            None => assert!(gpus.is_empty(), "{name}: no GPU requested"),
            Some(_) => {
                assert_eq!(gpus.len(), 1, "{name}");
                assert_eq!(gpus[0].driver.as_deref(), Some("nvidia"));
            }
        }
        let binds = host.binds.unwrap_or_default();
        for m in &planned.mounts {
            let mode = if m.read_only { ":ro" } else { "" };
            assert!(
                binds.contains(&format!("{}:{}{mode}", m.host, m.container)),
                "{name}: {m:?} in {binds:?}"
            );
        }
        // What the engines were asked for reached the container.
        match name {
            "vllm" => {
                assert_eq!(gpus[0].count, Some(2));
                assert!(
                    planned
                        .args
                        .contains(&"--disable-prefix-caching".to_string())
                );
                assert!(
                    binds
                        .iter()
                        .any(|b| b.ends_with(":/root/.cache/huggingface"))
                );
                assert_eq!(host.ipc_mode.as_deref(), Some("host"));
            }
            "sglang" => {
                assert_eq!(
                    config.entrypoint.clone().unwrap_or_default(),
                    vec!["python3", "-m", "sglang.launch_server"]
                );
                assert_eq!(gpus[0].count, Some(-1), "all GPUs by default");
                assert!(ulimits.iter().any(|u| u.0 == "memlock" && u.1 == -1));
            }
            "tgi" => {
                assert_eq!(host.ipc_mode.as_deref(), Some("shareable"));
                assert_eq!(host.shm_size, Some(1 << 30), "TGI's default shm");
                assert!(ulimits.contains(&("nofile".into(), 4096, 8192)));
            }
            "ollama" => {
                assert!(env.contains(&"OLLAMA_CONTEXT_LENGTH=8192".to_string()));
                assert!(env.contains(&"OLLAMA_KEEP_ALIVE=30m".to_string()));
                assert!(env.contains(&"OLLAMA_HOST=0.0.0.0:11434".to_string()));
            }
            _ => unreachable!(),
        }
        drop(container);
        assert!(
            containers_with(&docker, LABEL_RUN, &run_id)
                .await
                .is_empty(),
            "{name}: removed"
        );
    }
}
