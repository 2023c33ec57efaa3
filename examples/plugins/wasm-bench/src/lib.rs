//! wasm-bench: a kitt benchmark plugin for the wasm transport. kitt calls `kitt_call` with a
//! JSON-RPC request in this module's memory (placed there through `kitt_alloc`) and reads
//! the response it returns; during `run` the plugin asks kitt to `generate` on the node's
//! engine through the imported `kitt.host`, so kitt's client measures every request.
//!
//! Two params exist only to exercise kitt's limits: `spin` loops forever (fuel) and
//! `grow_mib` asks for that much memory (the memory limit).

use serde_json::{json, Value};

#[link(wasm_import_module = "kitt")]
extern "C" {
    /// Sends a JSON-RPC message to kitt; returns the answer as `ptr << 32 | len` (0 for
    /// notifications).
    fn host(ptr: i32, len: i32) -> i64;
    /// Milliseconds since kitt started the call.
    fn now_ms() -> f64;
}

/// Allocates `len` bytes for kitt to write into.
#[no_mangle]
pub extern "C" fn kitt_alloc(len: i32) -> i32 {
    let mut buf = Vec::<u8>::with_capacity(len.max(0) as usize);
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr as i32
}

/// Frees what `kitt_alloc` or an answer allocated.
#[no_mangle]
pub extern "C" fn kitt_free(ptr: i32, len: i32) {
    unsafe { drop(Vec::from_raw_parts(ptr as *mut u8, 0, len.max(0) as usize)) };
}

fn read(ptr: i32, len: i32) -> String {
    let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, len as usize) };
    String::from_utf8_lossy(bytes).into_owned()
}

fn leak(text: String) -> i64 {
    let mut bytes = text.into_bytes();
    bytes.shrink_to_fit();
    let (ptr, len) = (bytes.as_mut_ptr() as i64, bytes.len() as i64);
    std::mem::forget(bytes);
    (ptr << 32) | len
}

fn send(message: &Value) -> Option<Value> {
    let text = message.to_string();
    let packed = unsafe { host(text.as_ptr() as i32, text.len() as i32) };
    if packed == 0 {
        return None;
    }
    let (ptr, len) = ((packed >> 32) as i32, (packed & 0xffff_ffff) as i32);
    let answer = read(ptr, len);
    kitt_free(ptr, len);
    serde_json::from_str(&answer).ok()
}

fn notify(method: &str, params: Value) {
    send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
}

fn run(params: &Value) -> Value {
    if params["spin"].as_bool() == Some(true) {
        let mut x: u64 = 0;
        loop {
            x = x.wrapping_add(unsafe { now_ms() } as u64);
            if x == u64::MAX {
                break;
            }
        }
    }
    if let Some(mib) = params["grow_mib"].as_u64() {
        let big = vec![1u8; (mib as usize) << 20];
        notify("log", json!({"level": "info", "message": format!("holding {} bytes", big.len())}));
    }
    let prompts: Vec<&str> = params["prompts"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_else(|| vec!["Say hello."]);
    let max_tokens = params["max_tokens"].as_u64().unwrap_or(16);
    let (mut tokens, mut ttft, mut ok, mut errors) = (0.0, 0.0, 0u32, Vec::new());
    let started = unsafe { now_ms() };
    for (i, prompt) in prompts.iter().enumerate() {
        let request = json!({"jsonrpc": "2.0", "id": i + 1, "method": "generate",
                             "params": {"prompt": prompt, "max_tokens": max_tokens}});
        match send(&request) {
            Some(answer) if answer.get("result").is_some() => {
                ok += 1;
                tokens += answer["result"]["completion_tokens"].as_f64().unwrap_or(0.0);
                ttft += answer["result"]["ttft_ms"].as_f64().unwrap_or(0.0);
                notify("sample", json!({"name": "ttft_ms", "value": answer["result"]["ttft_ms"]}));
            }
            Some(answer) => errors.push(answer["error"]["message"].to_string()),
            None => errors.push("no answer".to_string()),
        }
        notify("progress", json!({"done": i + 1, "total": prompts.len()}));
    }
    let n = f64::from(ok.max(1));
    notify("log", json!({"level": "info",
        "message": format!("{ok} of {} prompts answered in {:.0} ms", prompts.len(), unsafe { now_ms() } - started)}));
    json!({
        "passed": ok > 0,
        "metrics": {"items": f64::from(ok), "completion_tokens_mean": tokens / n, "ttft_mean_ms": ttft / n},
        "outputs": {"items": ok},
        "errors": errors,
    })
}

/// Handles one JSON-RPC request from kitt; returns the response.
#[no_mangle]
pub extern "C" fn kitt_call(ptr: i32, len: i32) -> i64 {
    let text = read(ptr, len);
    kitt_free(ptr, len);
    let request: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let id = request["id"].clone();
    let result = match request["method"].as_str() {
        Some("initialize") => json!({"protocol_version": 1, "features": ["describe", "run"]}),
        Some("describe") => json!({"metrics": {
            "items": {"unit": "count", "direction": "higher"},
            "completion_tokens_mean": {"unit": "tokens", "direction": "higher"},
            "ttft_mean_ms": {"unit": "ms", "direction": "lower"}}}),
        Some("run") => run(&request["params"]["params"]),
        other => {
            return leak(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601,
                "message": format!("no method {other:?}"), "data": {"kind": "plugin", "retryable": false}}})
            .to_string())
        }
    };
    leak(json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string())
}
