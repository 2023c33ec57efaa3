//! What a plugin may ask of kitt during a call — `generate`, `log`, `progress`, `sample` —
//! served the same way whichever transport (subprocess or wasm) carried the message.

use std::future::Future;

use serde_json::Value;

use super::protocol::{HostCall, Message, RpcError};

/// Most `log` notifications of one call shown on kitt's output; the rest are counted.
pub const LOG_LINES_PER_CALL: u32 = 200;
/// Longest `log` message shown; longer ones are cut.
pub const LOG_MESSAGE_CHARS: usize = 1000;
/// Most `sample` notifications kept over a plugin's life; later ones are dropped.
pub const MAX_SAMPLES: usize = 1_000_000;

/// The side of kitt a plugin talks to during a call.
pub trait Host {
    /// Serves `generate`: a request through the node's engine, measured by kitt's client.
    fn generate(&self, params: &Value) -> impl Future<Output = Result<Value, RpcError>>;
    /// Shows a line to the person running kitt.
    fn say(&self, line: &str);
    /// Work done so far, and how much there will be when known.
    fn progress(&self, done: u64, total: Option<u64>);
}

/// The host outside a benchmark's `run` (handshakes, `describe`, an engine plugin's `start`
/// and `stop`): it shows nothing and refuses `generate`.
pub struct NoHost;

impl Host for NoHost {
    async fn generate(&self, _params: &Value) -> Result<Value, RpcError> {
        Err(RpcError::new(
            -32601,
            "generate is available only during `run`",
            "plugin",
            false,
        ))
    }

    fn say(&self, _line: &str) {}

    fn progress(&self, _done: u64, _total: Option<u64>) {}
}

/// What serving a plugin keeps: the log lines shown and held back in the current call, and
/// every sample it sent.
#[derive(Debug, Default)]
pub struct Served {
    shown: u32,
    held: u64,
    samples: Vec<(String, f64)>,
}

impl Served {
    /// Starts a call: the log limit counts per call.
    pub fn begin(&mut self) {
        self.shown = 0;
        self.held = 0;
    }

    /// Serves one message the plugin sent; returns the answer when it was a request.
    pub async fn serve<H: Host>(
        &mut self,
        plugin: &str,
        host: &H,
        call: HostCall,
    ) -> Option<Message> {
        match call {
            HostCall::Log { message } => {
                self.log(plugin, host, &message);
                None
            }
            HostCall::Progress { done, total } => {
                host.progress(done, total);
                None
            }
            HostCall::Sample { name, value } => {
                if self.samples.len() < MAX_SAMPLES {
                    self.samples.push((name, value));
                }
                None
            }
            HostCall::Generate { id, params } => {
                Some(Message::response(id, host.generate(&params).await))
            }
            HostCall::Invalid { id, method, reason } => id.map(|id| {
                Message::response(
                    id,
                    Err(RpcError::new(
                        -32602,
                        format!("`{method}`: {reason}"),
                        "plugin",
                        false,
                    )),
                )
            }),
            HostCall::Unknown { id, method } => id.map(|id| {
                Message::response(
                    id,
                    Err(RpcError::new(
                        -32601,
                        format!("the host has no method `{method}`"),
                        "plugin",
                        false,
                    )),
                )
            }),
        }
    }

    /// Ends a call: says how many of its log lines were not shown.
    pub fn end<H: Host>(&mut self, plugin: &str, host: &H) {
        if self.held > 0 {
            host.say(&format!(
                "[{plugin}] {} log messages were not shown",
                self.held
            ));
        }
        self.held = 0;
    }

    /// The samples sent so far, handed over once.
    pub fn take_samples(&mut self) -> Vec<(String, f64)> {
        std::mem::take(&mut self.samples)
    }

    fn log<H: Host>(&mut self, plugin: &str, host: &H, text: &str) {
        if self.shown >= LOG_LINES_PER_CALL {
            if self.held == 0 {
                host.say(&format!(
                    "[{plugin}] more log messages not shown (at most {LOG_LINES_PER_CALL} a call; all of them are counted)"
                ));
            }
            self.held += 1;
            return;
        }
        self.shown += 1;
        let mut shown: String = text
            .chars()
            .take(LOG_MESSAGE_CHARS)
            .filter(|c| !c.is_control() || *c == '\t')
            .collect();
        if text.chars().count() > LOG_MESSAGE_CHARS {
            shown.push_str(" …");
        }
        host.say(&format!("[{plugin}] {shown}"));
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use serde_json::json;

    use super::*;

    #[derive(Default)]
    struct Recorder {
        lines: RefCell<Vec<String>>,
        progress: RefCell<Vec<(u64, Option<u64>)>>,
    }

    impl Host for Recorder {
        async fn generate(&self, params: &Value) -> Result<Value, RpcError> {
            Ok(json!({"text": params["prompt"]}))
        }
        fn say(&self, line: &str) {
            self.lines.borrow_mut().push(line.to_string());
        }
        fn progress(&self, done: u64, total: Option<u64>) {
            self.progress.borrow_mut().push((done, total));
        }
    }

    fn call(method: &str, id: Option<u64>, params: Value) -> HostCall {
        let mut m = Message::notification(method, params);
        m.id = id.map(|i| json!(i));
        HostCall::from_message(m).expect("a message with a method")
    }

    fn block<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn every_host_call_is_served_by_the_one_server() {
        let host = Recorder::default();
        let mut served = Served::default();
        block(async {
            let answer = served
                .serve(
                    "p",
                    &host,
                    call("generate", Some(3), json!({"prompt": "hi"})),
                )
                .await
                .unwrap();
            assert_eq!(answer.result, Some(json!({"text": "hi"})));
            assert!(
                served
                    .serve(
                        "p",
                        &host,
                        call("sample", None, json!({"name": "x", "value": 1.5}))
                    )
                    .await
                    .is_none()
            );
            served
                .serve(
                    "p",
                    &host,
                    call("progress", None, json!({"done": 2, "total": 9})),
                )
                .await;
            served
                .serve(
                    "p",
                    &host,
                    call("log", None, json!({"message": "a\u{1b}[2Jb"})),
                )
                .await;
            let refused = served
                .serve("p", &host, call("nosuch", Some(4), json!({})))
                .await
                .unwrap();
            assert_eq!(refused.error.unwrap().code, -32601);
            let bad = served
                .serve("p", &host, call("sample", Some(5), json!({"name": "x"})))
                .await
                .unwrap();
            assert_eq!(bad.error.unwrap().code, -32602);
        });
        assert_eq!(served.take_samples(), [("x".to_string(), 1.5)]);
        assert_eq!(*host.progress.borrow(), [(2, Some(9))]);
        assert_eq!(*host.lines.borrow(), ["[p] a[2Jb"]);
    }

    #[test]
    fn logs_beyond_the_per_call_limit_are_counted_not_shown() {
        let host = Recorder::default();
        let mut served = Served::default();
        block(async {
            for _ in 0..LOG_LINES_PER_CALL + 5 {
                served
                    .serve("p", &host, call("log", None, json!({"message": "y"})))
                    .await;
            }
        });
        served.end("p", &host);
        let lines = host.lines.borrow();
        assert_eq!(lines.len() as u32, LOG_LINES_PER_CALL + 2);
        assert!(
            lines
                .last()
                .unwrap()
                .contains("5 log messages were not shown")
        );
    }
}
