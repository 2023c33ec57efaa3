//! Hugging Face datasets, fetched once through the datasets-server rows API into a JSONL
//! file in kitt's cache; later runs read the cached file and never touch the network.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The rows API's base address (`KITT_HF_DATASETS_URL` overrides it, e.g. for a mirror).
fn endpoint() -> String {
    std::env::var("KITT_HF_DATASETS_URL")
        .unwrap_or_else(|_| "https://datasets-server.huggingface.co".into())
        .trim_end_matches('/')
        .to_string()
}

/// Rows asked for per page (the API's maximum).
const PAGE: usize = 100;

/// The cached JSONL file of a dataset split, downloading it first when missing.
pub async fn cached(
    id: &str,
    config: &str,
    split: &str,
    cache_dir: &Path,
) -> Result<PathBuf, String> {
    cached_from(&endpoint(), id, config, split, cache_dir).await
}

/// Like `cached`, from the rows API at `base`.
pub async fn cached_from(
    base: &str,
    id: &str,
    config: &str,
    split: &str,
    cache_dir: &Path,
) -> Result<PathBuf, String> {
    let safe = |s: &str| s.replace(['/', '\\', ':'], "__");
    let file = cache_dir
        .join("hf")
        .join(safe(id))
        .join(safe(config))
        .join(format!("{}.jsonl", safe(split)));
    if file.exists() {
        return Ok(file);
    }
    let parent = file.parent().unwrap_or(cache_dir);
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create the cache {}: {e}", parent.display()))?;
    let rows = download(base, id, config, split).await?;
    let partial = file.with_extension("jsonl.partial");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&partial)
            .map_err(|e| format!("cannot write {}: {e}", partial.display()))?,
    );
    for row in &rows {
        serde_json::to_writer(&mut out, row).map_err(|e| e.to_string())?;
        out.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    drop(out);
    std::fs::rename(&partial, &file).map_err(|e| format!("cannot finish the cache file: {e}"))?;
    Ok(file)
}

/// Every row of a split, page by page.
async fn download(base: &str, id: &str, config: &str, split: &str) -> Result<Vec<Value>, String> {
    let options = crate::engine::client::ClientOptions::default();
    let http = crate::engine::client::http_client(&options).map_err(|e| e.to_string())?;
    let token = std::env::var("HF_TOKEN").ok();
    let mut rows = Vec::new();
    loop {
        let url = format!("{base}/rows");
        let offset = rows.len().to_string();
        let length = PAGE.to_string();
        let page_url = reqwest::Url::parse_with_params(
            &url,
            &[
                ("dataset", id),
                ("config", config),
                ("split", split),
                ("offset", &offset),
                ("length", &length),
            ],
        )
        .map_err(|e| format!("bad dataset address {url}: {e}"))?;
        let mut request = http.get(page_url);
        if let Some(t) = &token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.map_err(|e| {
            format!("cannot download from {base}: {e} (set KITT_HF_DATASETS_URL for a mirror, or use a local `path`)")
        })?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| format!("{url} sent something that is not JSON: {e}"))?;
        if !status.is_success() {
            let message = body.get("error").and_then(Value::as_str).unwrap_or("");
            return Err(format!(
                "{url} answered HTTP {status} for {id} (config {config}, split {split}): {message}"
            ));
        }
        let page = body
            .get("rows")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{url} answered without `rows`"))?;
        let total = body.get("num_rows_total").and_then(Value::as_u64);
        for item in page {
            rows.push(item.get("row").cloned().unwrap_or_else(|| item.clone()));
        }
        let done = match total {
            Some(total) => rows.len() as u64 >= total,
            None => page.len() < PAGE,
        };
        if done || page.is_empty() {
            return Ok(rows);
        }
    }
}
