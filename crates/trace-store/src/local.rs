//! A store with its receivers and query API on ephemeral 127.0.0.1 ports, for tests.

use std::{io, net::SocketAddr};

use tokio::net::TcpListener;

use crate::TraceStore;

/// A store served on 127.0.0.1. Everything stops when the runtime does.
pub struct LocalStore {
    /// The spans received.
    pub store: TraceStore,
    /// The OTLP/gRPC receiver.
    pub grpc: SocketAddr,
    /// The OTLP/HTTP receiver.
    pub http: SocketAddr,
    /// The Tempo-compatible query API.
    pub api: SocketAddr,
    /// `GET /metrics`: the span metrics and service graph, where the Collector's Prometheus
    /// exporter would be.
    pub metrics: SocketAddr,
}

/// Serves a new store of default capacity; see [`serve_local`].
pub async fn start_local() -> io::Result<LocalStore> {
    serve_local(TraceStore::new()).await
}

/// Serves `store` on four ephemeral ports in the current runtime.
pub async fn serve_local(store: TraceStore) -> io::Result<LocalStore> {
    let grpc = TcpListener::bind("127.0.0.1:0").await?;
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let api = TcpListener::bind("127.0.0.1:0").await?;
    let metrics = TcpListener::bind("127.0.0.1:0").await?;
    let local = LocalStore {
        store: store.clone(),
        grpc: grpc.local_addr()?,
        http: http.local_addr()?,
        api: api.local_addr()?,
        metrics: metrics.local_addr()?,
    };
    let never = std::future::pending::<()>;
    tokio::spawn(crate::serve_grpc(grpc, store.clone(), never()));
    tokio::spawn(crate::serve_http(http, store.clone(), never()));
    let connectors = crate::metrics_router(store.connectors().clone());
    tokio::spawn(crate::serve_query(api, store, never()));
    tokio::spawn(async move { axum::serve(metrics, connectors).await });
    Ok(local)
}
