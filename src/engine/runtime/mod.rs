//! Runtimes: where an engine runs and how it is torn down. Cleanup belongs to the runtime,
//! never to an engine: `Handle::stop` on the normal path, `Drop` on every other one.

pub mod docker;
pub mod health;
pub mod memory;
pub mod native;

use std::path::PathBuf;
use std::time::Duration;

use crate::engine::simulator::Simulator;

/// What a run gives the engines it starts.
#[derive(Clone)]
pub struct StartContext {
    /// Labels containers and names the log directory.
    pub run_id: String,
    /// Engine logs go here.
    pub run_dir: PathBuf,
    /// Health wait limit when the engine sets no `startup_timeout`.
    pub default_startup_timeout: Duration,
    /// Progress lines (image pulls, model pulls).
    pub progress: docker::Progress,
    /// GPUs of this machine (nvidia-smi), when already known; detected on first need.
    pub gpus: Option<usize>,
}

impl StartContext {
    /// A context with a fresh run id and a run directory under the user's data directory,
    /// reporting progress on stderr.
    pub fn new_run() -> Self {
        let run_id = new_run_id();
        let run_dir = crate::paths::data_dir().join("runs").join(&run_id);
        StartContext {
            run_id,
            run_dir,
            default_startup_timeout: Duration::from_secs(600),
            progress: std::sync::Arc::new(|line: &str| crate::errln!("  {line}")),
            gpus: None,
        }
    }

    /// This machine's GPUs: as given, else counted with nvidia-smi (0 without it).
    pub fn machine_gpus(&self) -> usize {
        self.gpus
            .unwrap_or_else(|| crate::fingerprint::Fingerprint::detect().gpus.len())
    }
}

/// A run id: Unix time in seconds, the process id and a counter, sortable and unique per host.
pub fn new_run_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{}-{n}", now.as_secs(), std::process::id())
}

/// A started engine's runtime resources.
#[derive(Debug)]
pub enum Handle {
    Native(native::NativeProcess),
    Docker(docker::Container),
    Simulator(Simulator),
    /// An engine plugin's process (asked to `stop`, then its group is killed).
    Plugin(Box<crate::plugin::subprocess::PluginProcess>),
    /// Nothing was started.
    External,
}

impl Handle {
    /// Tears the engine down: SIGTERM then SIGKILL, container stop and removal, or server
    /// shutdown. Dropping a handle does the same without the grace period.
    pub async fn stop(self) {
        match self {
            Handle::Native(p) => p.stop().await,
            Handle::Docker(c) => c.stop().await,
            Handle::Simulator(s) => s.stop().await,
            Handle::Plugin(mut p) => {
                let _ = p
                    .call(
                        "stop",
                        serde_json::json!({}),
                        Duration::from_secs(30),
                        &crate::plugin::host::NoHost,
                    )
                    .await;
                p.stop().await;
            }
            Handle::External => {}
        }
    }
}
