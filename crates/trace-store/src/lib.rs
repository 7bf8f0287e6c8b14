//! An OTLP trace receiver that keeps spans in memory, for tests and the embedded demo.
//!
//! It speaks both OTLP transports with opentelemetry-proto's generated types (no hand-written
//! protobuf): gRPC through tonic and HTTP/protobuf through axum. What it stores is a flattened,
//! easy-to-assert form of each span ([`StoredSpan`]).
//!
//! # Layout
//! - `store`: [`TraceStore`], the shared in-memory store, and [`StoredSpan`].
//! - `grpc`: the `TraceService` gRPC receiver.
//! - `http`: the `POST /v1/traces` HTTP/protobuf receiver.
//! - `local`: [`start_local`], both receivers on ephemeral 127.0.0.1 ports.

mod grpc;
mod http;
mod local;
mod store;

pub use grpc::serve_grpc;
pub use http::{http_router, serve_http};
pub use local::{LocalStore, start_local};
pub use store::{AttributeValue, SpanEvent, SpanKind, SpanStatus, StoredSpan, TraceStore};
