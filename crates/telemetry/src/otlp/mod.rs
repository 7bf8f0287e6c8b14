//! The OTLP export of spans and log records: encoded in one pass from the SDK's own records
//! (spans one at a time as they end, in `processor`; log records a batch at a time) and sent
//! over gRPC or HTTP/protobuf.
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
mod log_records;
mod processor;
mod spans;
mod transport;
mod wire;

pub(crate) use processor::OtlpSpanProcessor;

use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    logs::{LogBatch, LogExporter},
};
use prost::Message as _;

use crate::config::{ExportSettings, TelemetryConfig};
use transport::Transport;

/// The gRPC methods of the trace and logs services.
const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// Where one signal goes, with what the SDK tells an exporter once (the resource).
#[derive(Debug)]
struct Destination {
    transport: Transport,
    timeout: Duration,
    value_limit: usize,
    /// The `Resource` message, encoded once.
    resource: Vec<u8>,
    schema_url: String,
}

impl Destination {
    fn new(
        config: &TelemetryConfig,
        endpoint: &url::Url,
        grpc_path: &'static str,
        settings: &ExportSettings,
    ) -> Result<Self, String> {
        Ok(Self {
            transport: Transport::new(config.protocol, endpoint, grpc_path, settings)?,
            timeout: settings.timeout,
            value_limit: config.attribute_value_limit,
            resource: Vec::new(),
            schema_url: String::new(),
        })
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = common::resource(resource);
        self.schema_url = resource.schema_url().unwrap_or_default().to_owned();
    }

    /// Sends `request`; returns the response body.
    async fn send(&self, request: Vec<u8>) -> Result<bytes::Bytes, OTelSdkError> {
        self.transport
            .send(request.into(), self.timeout)
            .await
            .map_err(OTelSdkError::InternalFailure)
    }
}

/// Exports log records as OTLP, from the SDK's batch log processor.
#[derive(Debug)]
pub(crate) struct OtlpLogExporter(Destination);

impl OtlpLogExporter {
    /// The exporter `config` describes. Must be called on the runtime (see `transport`).
    pub(crate) fn new(config: &TelemetryConfig) -> Result<Self, String> {
        Destination::new(
            config,
            &config.logs_endpoint,
            LOGS_EXPORT,
            &config.logs_export,
        )
        .map(Self)
    }
}

impl LogExporter for OtlpLogExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let to = &self.0;
        let request = log_records::request(&batch, &to.resource, &to.schema_url, to.value_limit);
        let response = to.send(request).await?;
        if let Ok(ExportLogsServiceResponse {
            partial_success: Some(partial),
        }) = ExportLogsServiceResponse::decode(response)
            && (partial.rejected_log_records > 0 || !partial.error_message.is_empty())
        {
            crate::logs::count_rejected(partial.rejected_log_records, &partial.error_message);
        }
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}
