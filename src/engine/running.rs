//! A started, healthy engine: where it listens, how to ask it, and its runtime handle.

use crate::engine::client::{Client, ClientError};
use crate::engine::generation::{GenerationRequest, GenerationResult};
use crate::engine::launch::Driver;
use crate::engine::runtime::Handle;
use crate::suite::model::{EngineSpec, RuntimeMode};

/// An engine that answered its health check. Dropping it tears it down without grace;
/// `cleanup` does it gracefully.
#[derive(Debug)]
pub struct RunningEngine {
    /// The instance name (the suite's engine key).
    pub name: String,
    /// The registered engine it uses.
    pub uses: String,
    pub mode: RuntimeMode,
    pub base_url: String,
    /// The image it runs, in docker mode.
    pub image: Option<String>,
    /// The model name sent in requests.
    pub model: String,
    client: Client,
    driver: Driver,
    spec: EngineSpec,
    handle: Option<Handle>,
}

impl RunningEngine {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        name: &str,
        spec: &EngineSpec,
        mode: RuntimeMode,
        base_url: String,
        image: Option<String>,
        model: String,
        client: Client,
        driver: Driver,
        handle: Handle,
    ) -> Self {
        RunningEngine {
            name: name.to_string(),
            uses: spec.uses.clone(),
            mode,
            base_url,
            image,
            model,
            client,
            driver,
            spec: spec.clone(),
            handle: Some(handle),
        }
    }

    /// Sends one request through the shared measuring client, with this engine's mapping of
    /// sampling settings (`ignore_eos`, `min_tokens`, options) added.
    pub async fn generate(&self, req: &GenerationRequest) -> Result<GenerationResult, ClientError> {
        let extra = match &self.driver {
            Driver::Server(launch) => launch.extra_body(&req.sampling, &self.spec),
            // The simulator and generic endpoints take the vLLM-style fields.
            Driver::Simulator | Driver::Endpoint | Driver::Plugin(_) => {
                let mut extra = serde_json::Map::new();
                if req.sampling.ignore_eos == Some(true) {
                    extra.insert("ignore_eos".into(), serde_json::json!(true));
                }
                extra
            }
        };
        self.client.generate_with(req, &extra).await
    }

    /// The measuring client, for probes that are not generations.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The engine's current memory use and where the figure comes from.
    pub async fn memory(&self) -> Result<crate::engine::runtime::memory::Sample, String> {
        match &self.handle {
            Some(handle) => crate::engine::runtime::memory::sample(handle).await,
            None => Err("the engine was stopped".into()),
        }
    }

    /// The id (`sha256:…`) of the image a docker engine runs, as the daemon reports it.
    pub async fn image_digest(&self) -> Option<String> {
        match (&self.handle, &self.image) {
            (Some(Handle::Docker(c)), Some(image)) => c.image_id(image).await,
            _ => None,
        }
    }

    /// The process id of a native engine (for tests and diagnostics).
    pub fn pid(&self) -> Option<i32> {
        match &self.handle {
            Some(Handle::Native(p)) => Some(p.pid()),
            _ => None,
        }
    }

    /// The container id of a docker engine.
    pub fn container_id(&self) -> Option<&str> {
        match &self.handle {
            Some(Handle::Docker(c)) => Some(c.id()),
            _ => None,
        }
    }

    /// Stops the engine and releases everything its runtime holds.
    pub async fn cleanup(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.stop().await;
        }
    }
}
