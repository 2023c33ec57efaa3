//! Subprocess reporter plugins: the report document goes to the plugin in a `report` call
//! (with the suite's report params), under the plugin transport's isolation and a deadline;
//! the plugin may send it anywhere and answers with the text kitt writes to the output.

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::render::RenderError;
use crate::plugin::host::NoHost;
use crate::plugin::manifest::Manifest;
use crate::plugin::subprocess::PluginProcess;

/// How long `report` may take unless the manifest's `[reporter] timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the reporter plugin in `dir` over `report`; its stderr goes to `log_dir`. `cancel`
/// resolving stops it (its process group is killed).
pub async fn render(
    name: &str,
    dir: &Path,
    report: &impl serde::Serialize,
    params: &Map<String, Value>,
    log_dir: &Path,
    cancel: impl std::future::Future<Output = ()>,
) -> Result<String, RenderError> {
    let fail = |detail: String| RenderError {
        reporter: name.to_string(),
        detail,
    };
    let manifest = Manifest::load(dir).map_err(|e| fail(e.to_string()))?;
    let deadline = manifest
        .reporter
        .as_ref()
        .and_then(|r| r.timeout)
        .map_or(DEFAULT_TIMEOUT, |d| d.0);
    let document = serde_json::to_value(report).map_err(|e| fail(e.to_string()))?;
    let work = async {
        let mut process = PluginProcess::start(dir, &manifest, log_dir)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let answer = process
            .call(
                "report",
                json!({"report": document, "params": params}),
                deadline,
                &NoHost,
            )
            .await;
        process.stop().await;
        let answer = answer.map_err(|e| fail(e.to_string()))?;
        match answer.get("text") {
            Some(Value::String(text)) if text.len() <= super::sandbox::OUTPUT_LIMIT => {
                Ok(text.clone())
            }
            Some(Value::String(_)) => Err(fail(format!(
                "the plugin's text is over the {} MiB limit",
                super::sandbox::OUTPUT_LIMIT >> 20
            ))),
            _ => Err(fail(format!(
                "the plugin answered `report` without a string `text`: {}",
                answer.to_string().chars().take(200).collect::<String>()
            ))),
        }
    };
    tokio::select! {
        done = work => done,
        () = cancel => Err(fail("interrupted; the plugin was stopped".into())),
    }
}
