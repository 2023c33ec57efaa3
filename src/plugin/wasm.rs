//! The wasm transport: a module checked against the manifest's sha256, run in kitt's process
//! by wasmi under the manifest's fuel and memory limits, with no filesystem, network or
//! environment. The JSON-RPC messages are the subprocess transport's, passed through a small
//! ABI: kitt writes a request into the module's memory (`kitt_alloc`), calls `kitt_call`,
//! reads the answer from the returned `ptr << 32 | len`; the module talks back through the
//! imports `kitt.host` (a JSON-RPC message; the answer comes back the same way) and
//! `kitt.now_ms`.
//!
//! The module runs on its own thread; its `generate` requests travel over a channel to the
//! calling task, which serves them through the node's engine, so kitt's client measures them.

use std::path::Path;
use std::sync::mpsc as blocking;
use std::time::Instant;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use wasmi::{Caller, Config, Engine, Extern, Linker, Module, Store};

use super::error::{PluginError, outcome};
use super::host::{Host, Served};
use super::manifest::{Manifest, Runtime};
use super::protocol::{self, HostCall, Message};

/// A message from the module to the host, with where to send the answer (requests only).
struct FromModule {
    message: Message,
    reply: Option<blocking::SyncSender<Message>>,
}

/// The manifest's memory limit, remembering when it refused to grow.
struct MemoryCap {
    max: usize,
    refused: Option<usize>,
}

impl wasmi::core::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi::core::LimiterError> {
        if desired > self.max {
            self.refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, wasmi::core::LimiterError> {
        Ok(desired <= 1_000_000)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

struct State {
    limits: MemoryCap,
    calls: mpsc::Sender<FromModule>,
    started: Instant,
}

/// A compiled plugin module.
pub struct WasmPlugin {
    name: String,
    engine: Engine,
    module: Module,
    memory_bytes: usize,
    fuel: u64,
    /// Log lines of the current call and every sample sent.
    served: Served,
}

fn start_error(name: &str, reason: String) -> PluginError {
    PluginError::Start {
        plugin: name.to_string(),
        reason,
    }
}

impl WasmPlugin {
    /// Reads, checks (sha256) and compiles the module the manifest names.
    pub fn load(dir: &Path, manifest: &Manifest) -> Result<WasmPlugin, PluginError> {
        let name = &manifest.name;
        let Runtime::Wasm {
            module,
            sha256,
            memory_mib,
            fuel,
        } = &manifest.runtime
        else {
            return Err(start_error(name, "it is not a wasm plugin".into()));
        };
        let path = Manifest::file(dir, module, "module").map_err(|e| start_error(name, e))?;
        let bytes = crate::fsio::read_bytes(&path, crate::plugin::manifest::MAX_MODULE)
            .map_err(|e| start_error(name, format!("cannot read {}: {e}", path.display())))?;
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !digest.eq_ignore_ascii_case(sha256) {
            return Err(start_error(
                name,
                format!(
                    "{} has sha256 {digest}, the manifest says {sha256}; the module is not the one the manifest was written for",
                    path.display()
                ),
            ));
        }
        let mut config = Config::default();
        config.consume_fuel(true);
        let engine = Engine::new(&config);
        let module = Module::new(&engine, &bytes)
            .map_err(|e| start_error(name, format!("not a valid wasm module: {e}")))?;
        Ok(WasmPlugin {
            name: name.clone(),
            engine,
            module,
            memory_bytes: (*memory_mib as usize) << 20,
            fuel: *fuel,
            served: Served::default(),
        })
    }

    /// Sends `initialize` then `method`, serving the module's requests through `host`.
    pub async fn call<H: Host>(
        &mut self,
        method: &str,
        params: Value,
        host: &H,
    ) -> Result<Value, PluginError> {
        self.served.begin();
        let (tx, mut rx) = mpsc::channel::<FromModule>(16);
        let engine = self.engine.clone();
        let module = self.module.clone();
        let (name, memory_bytes, fuel) = (self.name.clone(), self.memory_bytes, self.fuel);
        let method_name = method.to_string();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let outcome = run_module(
                &engine,
                &module,
                &name,
                memory_bytes,
                fuel,
                &method_name,
                params,
                tx,
            );
            let _ = done_tx.send(outcome);
        });
        // Serve the module until its thread ends (the channel closes with it).
        while let Some(sent) = rx.recv().await {
            let answer = match HostCall::from_message(sent.message) {
                Ok(call) => self.served.serve(&self.name, host, call).await,
                Err(_response) => None,
            };
            if let (Some(reply), Some(answer)) = (sent.reply, answer) {
                let _ = reply.send(answer);
            }
        }
        self.served.end(&self.name, host);
        let answer = done_rx.await.map_err(|_| PluginError::Protocol {
            plugin: self.name.clone(),
            method: method.into(),
            reason: "its thread ended without an answer".into(),
            stderr: String::new(),
        })?;
        outcome(&self.name, method, answer?)
    }

    /// The samples the module sent so far (`sample` notifications), handed over once.
    pub fn take_samples(&mut self) -> Vec<(String, f64)> {
        self.served.take_samples()
    }
}

/// Why the module stopped, in words; `refused` is memory the limit denied it.
fn trap(
    name: &str,
    method: &str,
    e: &wasmi::Error,
    refused: Option<usize>,
    max: usize,
) -> PluginError {
    let reason = match (e.as_trap_code(), refused) {
        (Some(wasmi::core::TrapCode::OutOfFuel), _) => {
            "it ran out of fuel (the manifest's `fuel` limit): it looped or worked too long"
                .to_string()
        }
        (_, Some(wanted)) => format!(
            "it asked for {} MiB of memory, over the manifest's limit of {} MiB, and then trapped ({e})",
            wanted >> 20,
            max >> 20
        ),
        _ => format!("it trapped: {e}"),
    };
    PluginError::Trapped {
        plugin: name.to_string(),
        method: method.to_string(),
        reason,
    }
}

/// Reads `len` bytes at `ptr` of the module's memory.
fn read_memory(caller: &Caller<'_, State>, ptr: i32, len: i32) -> Result<Vec<u8>, wasmi::Error> {
    let memory = caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| wasmi::Error::new("the module exports no `memory`"))?;
    let mut buf = vec![0u8; len.max(0) as usize];
    memory
        .read(caller, ptr as usize, &mut buf)
        .map_err(|e| wasmi::Error::new(format!("bad pointer from the module: {e}")))?;
    Ok(buf)
}

/// Copies `bytes` into memory the module allocates; returns `ptr << 32 | len`.
fn write_answer(caller: &mut Caller<'_, State>, bytes: &[u8]) -> Result<i64, wasmi::Error> {
    let alloc = caller
        .get_export("kitt_alloc")
        .and_then(Extern::into_func)
        .ok_or_else(|| wasmi::Error::new("the module exports no `kitt_alloc`"))?
        .typed::<i32, i32>(&*caller)?;
    let ptr = alloc.call(&mut *caller, bytes.len() as i32)?;
    let memory = caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| wasmi::Error::new("the module exports no `memory`"))?;
    memory
        .write(&mut *caller, ptr as usize, bytes)
        .map_err(|e| wasmi::Error::new(format!("cannot write the answer: {e}")))?;
    Ok((i64::from(ptr) << 32) | bytes.len() as i64)
}

#[allow(clippy::too_many_arguments)]
fn run_module(
    engine: &Engine,
    module: &Module,
    name: &str,
    memory_bytes: usize,
    fuel: u64,
    method: &str,
    params: Value,
    calls: mpsc::Sender<FromModule>,
) -> Result<Message, PluginError> {
    let state = State {
        limits: MemoryCap {
            max: memory_bytes,
            refused: None,
        },
        calls,
        started: Instant::now(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    let fail = |store: &Store<State>, method: &str, e: &wasmi::Error| {
        trap(name, method, e, store.data().limits.refused, memory_bytes)
    };
    store
        .set_fuel(fuel)
        .map_err(|e| start_error(name, e.to_string()))?;
    let mut linker = <Linker<State>>::new(engine);
    linker
        .func_wrap("kitt", "now_ms", |caller: Caller<'_, State>| -> f64 {
            caller.data().started.elapsed().as_secs_f64() * 1e3
        })
        .and_then(|l| {
            l.func_wrap(
                "kitt",
                "host",
                |mut caller: Caller<'_, State>, ptr: i32, len: i32| -> Result<i64, wasmi::Error> {
                    let bytes = read_memory(&caller, ptr, len)?;
                    let message: Message = serde_json::from_slice(&bytes).map_err(|e| {
                        wasmi::Error::new(format!(
                            "the module sent something that is not JSON-RPC: {e}"
                        ))
                    })?;
                    let is_request = message.id.is_some();
                    let (reply_tx, reply_rx) = blocking::sync_channel(1);
                    let call = FromModule {
                        message,
                        reply: is_request.then_some(reply_tx),
                    };
                    caller
                        .data()
                        .calls
                        .blocking_send(call)
                        .map_err(|_| wasmi::Error::new("kitt stopped listening"))?;
                    if !is_request {
                        return Ok(0);
                    }
                    let answer = reply_rx
                        .recv()
                        .map_err(|_| wasmi::Error::new("kitt did not answer"))?;
                    let text = serde_json::to_vec(&answer)
                        .map_err(|e| wasmi::Error::new(e.to_string()))?;
                    write_answer(&mut caller, &text)
                },
            )
        })
        .map_err(|e| start_error(name, e.to_string()))?;
    let instance = linker
        .instantiate(&mut store, module)
        .and_then(|pre| pre.start(&mut store))
        .map_err(|e| start_error(name, format!("cannot instantiate it: {e}")))?;
    let mut exchange = |request: Message, method: &str| -> Result<Message, PluginError> {
        let text = serde_json::to_vec(&request).map_err(|e| start_error(name, e.to_string()))?;
        let alloc = instance
            .get_typed_func::<i32, i32>(&store, "kitt_alloc")
            .map_err(|e| {
                start_error(name, format!("it exports no `kitt_alloc(i32) -> i32`: {e}"))
            })?;
        let call = instance
            .get_typed_func::<(i32, i32), i64>(&store, "kitt_call")
            .map_err(|e| {
                start_error(
                    name,
                    format!("it exports no `kitt_call(i32, i32) -> i64`: {e}"),
                )
            })?;
        let memory = instance
            .get_memory(&store, "memory")
            .ok_or_else(|| start_error(name, "it exports no `memory`".into()))?;
        let ptr = alloc
            .call(&mut store, text.len() as i32)
            .map_err(|e| fail(&store, method, &e))?;
        memory
            .write(&mut store, ptr as usize, &text)
            .map_err(|e| fail(&store, method, &wasmi::Error::new(e.to_string())))?;
        let packed = call
            .call(&mut store, (ptr, text.len() as i32))
            .map_err(|e| fail(&store, method, &e))?;
        let (at, len) = ((packed >> 32) as usize, (packed & 0xffff_ffff) as usize);
        let mut buf = vec![0u8; len];
        memory
            .read(&store, at, &mut buf)
            .map_err(|e| fail(&store, method, &wasmi::Error::new(e.to_string())))?;
        serde_json::from_slice(&buf).map_err(|e| PluginError::Protocol {
            plugin: name.to_string(),
            method: method.to_string(),
            reason: format!("its answer is not JSON-RPC: {e}"),
            stderr: String::new(),
        })
    };
    let hello = exchange(Message::initialize(1, name), "initialize")?;
    let result = hello.result.unwrap_or_default();
    protocol::check_handshake(&result).map_err(|reason| PluginError::Protocol {
        plugin: name.to_string(),
        method: "initialize".into(),
        reason,
        stderr: String::new(),
    })?;
    exchange(Message::request(2, method, params), method)
}
