//! Binding, serving and graceful shutdown.
//!
//! Connections are served with hyper-util's connection builder rather than `axum::serve`,
//! which offers no timer: without one hyper never times out a connection, so a client that
//! sends half a request head, or keeps a connection open and idle, holds its buffers (about
//! 29 KiB a connection in order-service) for as long as it likes. Here both are closed after
//! `HTTP_IDLE_TIMEOUT_MS` (default [`IDLE_CONNECTION_TIMEOUT`]), and a request whose body stops
//! arriving for as long is answered 408.

use std::{io, net::SocketAddr, time::Duration};

use axum::{Router, serve::Listener};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::RequestBodyTimeout;

/// How long a connection may wait for the head of its next request (idle between requests, or
/// a head arriving byte by byte) before the server closes it, unless `HTTP_IDLE_TIMEOUT_MS`
/// says otherwise: hyper's `header_read_timeout`, whose clock starts when the connection is
/// ready for a request. Node.js's and uvicorn's default keep-alive timeout. A proxy in front
/// that keeps its upstream connections idle for longer would race the close: set its
/// keep-alive below this, or this above it.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// How long in-flight requests may take to finish after SIGTERM/SIGINT before the server stops
/// waiting for them. Orders take well under a second.
pub const DRAIN_TIMEOUT: Duration = Duration::from_millis(1500);

/// How long fire-and-forget work (a notification, with its own 0.5 s timeout) may take to
/// finish once the server has stopped.
pub const BACKGROUND_TIMEOUT: Duration = Duration::from_millis(600);

// Drain, background work and the span flush together stay inside the 5 s a container
// orchestrator gives between SIGTERM and SIGKILL by default (Docker: 10 s, Kubernetes: 30 s).
const _: () = assert!(
    DRAIN_TIMEOUT.as_millis()
        + BACKGROUND_TIMEOUT.as_millis()
        + telemetry::FLUSH_TIMEOUT.as_millis()
        < 5000
);

/// How long a stopping service waits: for requests in flight, then for background work.
#[derive(Debug, Clone, Copy)]
pub struct Grace {
    /// In-flight requests, after SIGTERM/SIGINT.
    pub drain: Duration,
    /// Fire-and-forget work, once the server has stopped.
    pub background: Duration,
}

impl Default for Grace {
    fn default() -> Self {
        Self {
            drain: DRAIN_TIMEOUT,
            background: BACKGROUND_TIMEOUT,
        }
    }
}

/// Binds `addr`, with a message that says which address failed.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves `app` until `stop` is cancelled, then stops accepting connections, closes idle ones,
/// and waits up to `drain` for in-flight requests to finish. A connection is closed once it
/// has waited `idle_timeout` for a request head.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    idle_timeout: Duration,
    stop: CancellationToken,
    drain: Duration,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let connections = accept_until(listener, app, idle_timeout, stop).await;
    tokio::select! {
        () = connections.shutdown() => Ok(()),
        () = tokio::time::sleep(drain) => {
            tracing::warn!("in-flight requests did not finish within {drain:?}; stopping");
            Ok(())
        }
    }
}

/// Accepts connections until `stop` is cancelled, each served on a task of its own; returns
/// them, to be shut down gracefully.
async fn accept_until(
    mut listener: TcpListener,
    app: Router,
    idle_timeout: Duration,
    stop: CancellationToken,
) -> GracefulShutdown {
    let builder = connection_builder(idle_timeout);
    let connections = GracefulShutdown::new();
    loop {
        // axum's `Listener`: it retries failed accepts itself (and waits a second when the
        // process is out of file descriptors) instead of returning the error.
        let (stream, _) = tokio::select! {
            accepted = Listener::accept(&mut listener) => accepted,
            () = stop.cancelled() => return connections,
        };
        // The head's timeout does not cover the body: a body that stops arriving fails the
        // request (408, `ApiError`) once it has sent nothing for as long.
        let service = TowerToHyperService::new(RequestBodyTimeout::new(app.clone(), idle_timeout));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
}

/// HTTP/1.1 and HTTP/2 as `axum::serve` offers them, plus hyper's timer, so the head of each
/// HTTP/1.1 request must arrive within `idle_timeout`.
fn connection_builder(idle_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle_timeout);
    builder
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

/// The life of a service process after its settings are read: telemetry, bind, serve until
/// SIGTERM/SIGINT or until `stop` is cancelled (then in-flight requests get `grace.drain`),
/// let `background` tasks (work that outlives its request) finish for up to
/// `grace.background`, flush spans. Meanwhile memory freed after each burst of requests goes
/// back to the system (`memory`). Returns the process exit status: 0 after a
/// clean stop, 2 for a bad telemetry setting, 1 if the service could not start.
///
/// Started as `<binary> --health-check`, it only probes the running service's `/health`.
pub async fn run(
    service: telemetry::ServiceInfo,
    listen: crate::ListenSettings,
    app: Router,
    background: tokio_util::task::TaskTracker,
    stop: CancellationToken,
    admin: Option<Router>,
    grace: Grace,
) -> std::process::ExitCode {
    use std::process::ExitCode;

    if crate::health::requested() {
        return crate::health::check(listen.addr).await;
    }
    let admin_port = match crate::settings::admin_port() {
        Ok(port) => port,
        Err(e) => return crate::settings::config_error(&service, &e),
    };
    let telemetry = match telemetry::init(service.clone()) {
        Ok(guard) => guard,
        Err(telemetry::InitError::Config(e)) => return crate::settings::config_error(&service, &e),
        Err(e) => {
            eprintln!("{}: {e}", service.name);
            return ExitCode::FAILURE;
        }
    };
    tokio::spawn(crate::memory::release_after_bursts(listen.idle_timeout));
    let served = async {
        let signalled = stop_on_signal()?;
        let either = stop.clone();
        tokio::spawn(async move {
            signalled.cancelled().await;
            either.cancel();
        });
        let listener = bind(listen.addr).await?;
        if let (Some(admin), Some(port)) = (admin, admin_port) {
            // Loopback only, whatever HOST says: faults are for the person at this machine.
            let admin_listener = bind((std::net::Ipv4Addr::LOCALHOST, port).into()).await?;
            tracing::info!(port, "admin endpoint (faults) on 127.0.0.1");
            tokio::spawn(serve(
                admin_listener,
                admin,
                listen.idle_timeout,
                stop.clone(),
                DRAIN_TIMEOUT,
            ));
        }
        serve(listener, app, listen.idle_timeout, stop, grace.drain).await
    }
    .await;
    background.close();
    if tokio::time::timeout(grace.background, background.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks still running at exit");
    }
    telemetry.shutdown().await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}: {e}", service.name);
            ExitCode::FAILURE
        }
    }
}

/// Serves `app` on an ephemeral 127.0.0.1 port in the current runtime, until the runtime stops;
/// returns the address. For in-process tests and for running services inside one process.
pub async fn spawn_local(app: Router) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(accept_until(
        listener,
        app,
        IDLE_CONNECTION_TIMEOUT,
        CancellationToken::new(),
    ));
    Ok(addr)
}

/// [`run`] for a service whose only settings are `HOST`, `PORT` (and its faults).
pub async fn run_from_env(
    service: telemetry::ServiceInfo,
    default_port: u16,
    app: Router,
    stop: CancellationToken,
    admin: Option<Router>,
) -> std::process::ExitCode {
    match crate::ListenSettings::from_env(default_port) {
        Ok(listen) => {
            run(
                service,
                listen,
                app,
                tokio_util::task::TaskTracker::new(),
                stop,
                admin,
                Grace::default(),
            )
            .await
        }
        Err(e) => crate::settings::config_error(&service, &e),
    }
}
