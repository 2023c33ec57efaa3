//! Waiting for an engine to become healthy: poll its health path with backoff until it
//! answers 2xx, the deadline passes, or the engine is found dead.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::engine::client::{ClientOptions, http_client};
use crate::engine::error::{EngineError, ErrorKind};

/// Polls `url` until it answers 2xx. Before each poll `alive` checks that the engine is
/// still running, so a crashed engine fails at once rather than at the deadline.
pub async fn wait_healthy<F, Fut>(
    engine: &str,
    url: &str,
    api_key: Option<&str>,
    timeout: Duration,
    mut alive: F,
) -> Result<(), EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), EngineError>>,
{
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    };
    let http = http_client(&options)
        .map_err(|e| EngineError::new(engine, ErrorKind::Failed, e.to_string()))?;
    let start = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        alive().await?;
        let mut request = http.get(url).timeout(Duration::from_secs(5));
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        let last = match request.send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => format!("HTTP {}", r.status()),
            Err(e) if e.is_connect() => "connection refused".to_string(),
            Err(e) => e.to_string(),
        };
        if start.elapsed() >= timeout {
            return Err(EngineError::new(
                engine,
                ErrorKind::Failed,
                format!("not healthy after {timeout:?} at {url} (last answer: {last})"),
            )
            .hint("raise the engine's `startup_timeout`, or check the engine's log"));
        }
        tokio::time::sleep(delay.min(timeout.saturating_sub(start.elapsed()))).await;
        delay = (delay * 3 / 2).min(Duration::from_secs(1));
    }
}
