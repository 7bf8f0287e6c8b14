//! A small trace backend kept in memory: the embedded default of the demo, and what the tests
//! read traces (and the log lines linked to them) from.
//!
//! It receives both OTLP transports with opentelemetry-proto's generated types (no hand-written
//! protobuf): gRPC through tonic and HTTP/protobuf through axum. It keeps a flattened,
//! easy-to-assert form of each span ([`StoredSpan`]), at most a fixed number of them (oldest
//! traces are evicted first), and answers a subset of Tempo's HTTP API, so that
//! [`TempoClient`] reads traces the same way from it and from a real Tempo.
//!
//! # Layout
//! - `store`: [`TraceStore`], the shared in-memory store, and [`StoredSpan`].
//! - `grpc`: the `TraceService` and `LogsService` gRPC receivers.
//! - `http`: the `POST /v1/traces` and `POST /v1/logs` HTTP/protobuf receivers.
//! - `logs`: the log records received ([`StoredLog`]), bounded, found by trace id.
//! - `local`: [`start_local`], both receivers on ephemeral 127.0.0.1 ports.
//! - `query`: the Tempo-compatible query API ([`query_router`]).
//! - [`tempo`]: Tempo's JSON for traces and search results, both ways.
//! - `client`: [`TempoClient`], for this API or a real Tempo's.
//! - `connectors`: [`ConnectorMetrics`], the span metrics and service graph the compose
//!   stack's Collector computes, from every span received, on `GET /metrics`.

mod client;
mod connectors;
mod grpc;
mod http;
mod local;
mod logs;
mod query;
mod store;
pub mod tempo;

pub use client::{Search, TempoClient, TempoError};
pub use connectors::{ConnectorConfig, ConnectorMetrics, metrics_router};
pub use grpc::serve_grpc;
pub use http::{http_router, serve_http};
pub use local::{LocalStore, serve_local, start_local};
pub use logs::{DEFAULT_MAX_LOGS, StoredLog};
pub use query::{query_router, serve_query};
pub use store::{
    AttributeValue, DEFAULT_MAX_SPANS, Ingested, SpanEvent, SpanKind, SpanStatus, StoreStats,
    StoredSpan, TraceStore,
};
