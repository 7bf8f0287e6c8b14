//! A store with both receivers on ephemeral 127.0.0.1 ports, for tests.

use std::{io, net::SocketAddr};

use tokio::net::TcpListener;

use crate::TraceStore;

/// A store served on 127.0.0.1. The receivers stop when the runtime does.
pub struct LocalStore {
    /// The spans received.
    pub store: TraceStore,
    /// The OTLP/gRPC receiver.
    pub grpc: SocketAddr,
    /// The OTLP/HTTP receiver.
    pub http: SocketAddr,
}

/// Starts a store with its gRPC and HTTP receivers in the current runtime.
pub async fn start_local() -> io::Result<LocalStore> {
    let store = TraceStore::new();
    let grpc = TcpListener::bind("127.0.0.1:0").await?;
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let local = LocalStore {
        store: store.clone(),
        grpc: grpc.local_addr()?,
        http: http.local_addr()?,
    };
    tokio::spawn(crate::serve_grpc(
        grpc,
        store.clone(),
        std::future::pending(),
    ));
    tokio::spawn(crate::serve_http(http, store, std::future::pending()));
    Ok(local)
}
