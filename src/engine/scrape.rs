//! One scrape of a server's Prometheus page: a GET bounded in time and size, parsed under the
//! page limits. A server that stalls, sends too much, answers garbage or is gone gives a
//! typed error within the deadline, never a hang: a scrape is an observation beside the
//! measurement, and its failure is a gap in the series, not a failed leg.

use std::time::Duration;

use super::client::{ClientError, transport_error};
use super::prometheus::{self, Limits, Page, ParseError};

/// Why a scrape got no page.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("{url}: no answer within {timeout:?}")]
    TimedOut { url: String, timeout: Duration },
    /// Could not connect, or the connection failed mid-page.
    #[error(transparent)]
    Transport(ClientError),
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: the page is over {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: the page is not UTF-8")]
    NotText { url: String },
    #[error("{url}: {error}")]
    Parse { url: String, error: ParseError },
}

/// Fetches and parses `url`, all of it within `timeout`.
pub async fn scrape(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    limits: Limits,
) -> Result<Page, ScrapeError> {
    match tokio::time::timeout(timeout, fetch(http, url, timeout, limits)).await {
        Ok(result) => result,
        Err(_) => Err(ScrapeError::TimedOut {
            url: url.to_string(),
            timeout,
        }),
    }
}

async fn fetch(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    limits: Limits,
) -> Result<Page, ScrapeError> {
    let unreachable = |e: reqwest::Error| ScrapeError::Transport(transport_error(url, e, timeout));
    let mut response = http.get(url).send().await.map_err(unreachable)?;
    let status = response.status();
    if !status.is_success() {
        return Err(ScrapeError::Status {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    let too_large = || ScrapeError::TooLarge {
        url: url.to_string(),
        limit: limits.bytes,
    };
    if response
        .content_length()
        .is_some_and(|n| n > limits.bytes as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > limits.bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(body).map_err(|_| ScrapeError::NotText {
        url: url.to_string(),
    })?;
    prometheus::parse(&text, limits).map_err(|error| ScrapeError::Parse {
        url: url.to_string(),
        error,
    })
}
