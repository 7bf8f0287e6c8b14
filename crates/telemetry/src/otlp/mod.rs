//! The OTLP export of spans and log records: encoded in one pass from the SDK's own records,
//! one at a time as each span ends or each record is written (`processor`), and sent over gRPC
//! or HTTP/protobuf.
//!
//! They replace opentelemetry-otlp 0.33's exporters for cost alone: its span exporter clones
//! the whole batch for every attempt (opentelemetry-rust #3368), and both convert a batch into
//! opentelemetry-proto's structs (a `String` per key and value) that prost then walks twice.
//! That was two thirds of the instructions of an exported span (BENCHMARKS.md). What goes on
//! the wire is the same: `spans.rs` and `log_records.rs` test their output against
//! opentelemetry-proto's conversion of the same batch. The settings opentelemetry-otlp read from
//! the environment (`OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`, `_COMPRESSION`) are read in
//! `config`.

mod common;
mod grpc;
mod log_records;
mod processor;
mod request;
mod spans;
mod transport;
mod wire;

pub(crate) use processor::{OtlpLogProcessor, OtlpSpanProcessor};

use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkError;

use crate::config::{ExportSettings, TelemetryConfig};
use request::Request;
use transport::Transport;

/// The gRPC methods of the trace and logs services.
const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// Where one signal goes.
#[derive(Debug)]
struct Destination {
    transport: Transport,
    timeout: Duration,
    value_limit: usize,
}

impl Destination {
    fn new(
        config: &TelemetryConfig,
        grpc_path: &'static str,
        settings: &ExportSettings,
    ) -> Result<Self, String> {
        Ok(Self {
            transport: Transport::new(settings, grpc_path)?,
            timeout: settings.timeout,
            value_limit: config.attribute_value_limit,
        })
    }

    /// Sends `request`; returns the response body.
    async fn send(&self, request: Request) -> Result<bytes::Bytes, OTelSdkError> {
        self.transport
            .send(request, self.timeout)
            .await
            .map_err(OTelSdkError::InternalFailure)
    }
}
