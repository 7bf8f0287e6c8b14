//! Binding, serving and graceful shutdown.

use std::{io, net::SocketAddr, time::Duration};

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long in-flight requests may take to finish after SIGTERM/SIGINT before the server stops
/// waiting for them. Orders take well under a second; the rest of a 5 s stop budget is for
/// flushing spans.
pub const DRAIN_TIMEOUT: Duration = Duration::from_millis(1500);

/// Binds `addr`, with a message that says which address failed.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves `app` until `stop` is cancelled, then stops accepting connections and waits up to
/// [`DRAIN_TIMEOUT`] for in-flight requests to finish.
pub async fn serve(listener: TcpListener, app: Router, stop: CancellationToken) -> io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let server = axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
    let drain_deadline = async {
        stop.cancelled().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        served = server => served,
        () = drain_deadline => {
            tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}; stopping");
            Ok(())
        }
    }
}

/// A token cancelled on the first SIGTERM or SIGINT.
pub fn stop_on_signal() -> io::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down");
        cancel.cancel();
    });
    Ok(token)
}
