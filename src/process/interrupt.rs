//! Ctrl-C and SIGTERM: listened for once per process, remembered, and seen by every waiter,
//! so each phase of a command (nodes, engines, reports) can stop when asked.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

static SEEN: AtomicBool = AtomicBool::new(false);
static CHANNEL: OnceLock<watch::Sender<bool>> = OnceLock::new();

/// Starts listening for SIGINT and SIGTERM (on the current tokio runtime), once.
fn listen() -> &'static watch::Sender<bool> {
    CHANNEL.get_or_init(|| {
        let (tx, _) = watch::channel(false);
        let notify = tx.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return; // no handlers: the default action (exit) still applies
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            SEEN.store(true, Ordering::SeqCst);
            let _ = notify.send(true);
            // Keep the handlers installed: a second Ctrl-C must not kill kitt mid-cleanup.
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
        });
        tx
    })
}

/// Starts listening now, so a signal that arrives before anyone waits is not lost.
pub fn install() {
    listen();
}

/// Whether Ctrl-C or SIGTERM has arrived.
pub fn seen() -> bool {
    SEEN.load(Ordering::SeqCst)
}

/// Resolves once Ctrl-C or SIGTERM has arrived (at once if it already has).
pub async fn interrupted() {
    let mut rx = listen().subscribe();
    let _ = rx.wait_for(|seen| *seen).await;
}
