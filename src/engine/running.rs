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
    handle: Option<Handle>,
    /// What the engine's setup could not do as asked, for every result it produces (such as
    /// running on the CPU because no GPU was requested).
    pub notes: Vec<String>,
    /// What the client saw of it, request by request.
    tally: std::sync::Arc<super::tally::ClientTally>,
    /// Its metrics page and names, or why it has none.
    metrics: Result<MetricsPage, String>,
    /// The processors it computes on, for power telemetry.
    devices: super::devices::Devices,
}

/// Where a running engine serves metrics, and what its series mean.
#[derive(Debug, Clone)]
pub struct MetricsPage {
    pub url: String,
    pub names: super::server_metrics::MetricNames,
}

impl RunningEngine {
    /// CPU time an engine running inside kitt's own process has used (the simulator, on its
    /// own thread), so benchmarks can keep it apart from the client's; `None` for every
    /// engine that runs elsewhere.
    pub fn in_process_cpu(&self) -> Option<std::time::Duration> {
        match &self.handle {
            Some(Handle::Simulator(sim)) => sim.cpu_time(),
            _ => None,
        }
    }

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
        let metrics = metrics_page(&driver, spec, &base_url);
        let devices = super::devices::Devices::of(
            &driver,
            spec,
            mode,
            &base_url,
            std::env::var("CUDA_VISIBLE_DEVICES").ok(),
        );
        RunningEngine {
            metrics,
            devices,
            tally: Default::default(),
            name: name.to_string(),
            uses: spec.uses.clone(),
            mode,
            base_url,
            image,
            model,
            client,
            driver,
            handle: Some(handle),
            notes: Vec::new(),
        }
    }

    /// The same engine with a note about its setup.
    pub(crate) fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// The warnings a result of this engine carries for `sampling`: its setup notes, and
    /// the sampling settings it does not apply.
    pub fn warnings(&self, sampling: &crate::suite::model::Sampling) -> Vec<String> {
        let mut out: Vec<String> = self
            .notes
            .iter()
            .map(|n| format!("{}: {n}", self.uses))
            .collect();
        if let Driver::Server(launch) = &self.driver {
            out.extend(
                launch
                    .ignored(sampling)
                    .into_iter()
                    .map(|n| format!("{}: {n}", self.uses)),
            );
        }
        out
    }

    /// Sends one request through the shared measuring client, with this engine's mapping of
    /// sampling settings (`ignore_eos`, `min_tokens`, `top_k`) added; the client's tally
    /// counts it.
    pub async fn generate(&self, req: &GenerationRequest) -> Result<GenerationResult, ClientError> {
        let counted = self.tally.begin();
        let result = self.generate_uncounted(req).await;
        counted.end(
            result
                .as_ref()
                .ok()
                .map(|r| (r.completion_tokens, r.prompt_tokens, r.ttft)),
        );
        result
    }

    /// Embeds `inputs` (`/v1/embeddings`), counted like a generation with its input tokens.
    pub async fn embed(
        &self,
        inputs: &[String],
    ) -> Result<crate::engine::client::Embedded, ClientError> {
        let counted = self.tally.begin();
        let result = self.client.embed(inputs).await;
        counted.end(result.as_ref().ok().map(|r| (0, r.prompt_tokens, None)));
        result
    }

    /// What the client sees of this engine, request by request (shared with samplers).
    pub fn client_tally(&self) -> std::sync::Arc<super::tally::ClientTally> {
        self.tally.clone()
    }

    /// The processors this engine computes on, for power telemetry.
    pub fn devices(&self) -> &super::devices::Devices {
        &self.devices
    }

    /// Where this engine serves Prometheus metrics, or why kitt cannot read any.
    pub fn metrics_page(&self) -> Result<&MetricsPage, &str> {
        self.metrics.as_ref().map_err(String::as_str)
    }

    async fn generate_uncounted(
        &self,
        req: &GenerationRequest,
    ) -> Result<GenerationResult, ClientError> {
        if let Driver::Server(launch) = &self.driver
            && launch.requests.top_p_below_one
            && req.sampling.top_p.is_some_and(|p| p >= 1.0)
        {
            // A top_p of 1 cuts nothing: the same as sending none, which this engine needs.
            let mut adjusted = req.clone();
            adjusted.sampling.top_p = None;
            let extra = launch.extra_body(&adjusted.sampling);
            return self.client.generate_with(&adjusted, &extra).await;
        }
        let extra = match &self.driver {
            Driver::Server(launch) => launch.extra_body(&req.sampling),
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

/// The metrics page of an engine run by `driver` as `spec` configures it.
fn metrics_page(driver: &Driver, spec: &EngineSpec, base_url: &str) -> Result<MetricsPage, String> {
    use super::server_metrics::{ServerMetrics, VLLM, named};
    let declared = spec.telemetry.as_ref().and_then(|t| t.metrics);
    let names = match (declared, driver) {
        (Some(naming), _) => *named(naming),
        (None, Driver::Simulator) => VLLM,
        (None, Driver::Server(launch)) => match launch.metrics {
            ServerMetrics::Served(names) => *names,
            ServerMetrics::None(why) => return Err(why.to_string()),
        },
        (None, Driver::Endpoint | Driver::Plugin(_)) => {
            return Err(format!(
                "`{}` declares no metrics page; say whose names its /metrics uses with `telemetry: {{metrics: vllm}}` (or sglang, tgi, llama.cpp) on the engine",
                spec.uses
            ));
        }
    };
    if let Some(key) = names.enabled_by
        && spec.config.get(key) != Some(&serde_json::Value::Bool(true))
    {
        return Err(format!(
            "`{}` serves metrics only with `config: {{{key}: true}}`",
            spec.uses
        ));
    }
    Ok(MetricsPage {
        url: format!("{}{}", base_url.trim_end_matches('/'), names.path),
        names,
    })
}
