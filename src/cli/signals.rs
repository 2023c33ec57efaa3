//! Ctrl-C and SIGTERM as one future, for commands that stop cleanly when asked to.

/// Resolves at the first SIGINT or SIGTERM (never, if the handlers cannot be installed).
pub async fn interrupted() {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    match term {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
