//! The tracer provider: OTLP exporter, batch processor, sampler and resource (shared with the
//! logger provider of `logs`).

use opentelemetry::KeyValue;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    trace::{BatchSpanProcessor, SdkTracerProvider},
};

use crate::config::{Protocol, TelemetryConfig};

/// A failure to build the exporter (a transport that cannot be set up).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the OTLP exporter for {endpoint}: {source}")]
pub struct ExporterError {
    endpoint: String,
    source: opentelemetry_otlp::ExporterBuildError,
}

impl ExporterError {
    pub(crate) fn new(endpoint: String, source: opentelemetry_otlp::ExporterBuildError) -> Self {
        Self { endpoint, source }
    }
}

/// Builds the provider described by `config`.
///
/// The transport is chosen explicitly (`with_tonic` / `with_http`) from the validated protocol,
/// and the endpoint is passed explicitly, so nothing depends on which variables the SDK happens
/// to read. The sampler is set in code from our own parse of `OTEL_TRACES_SAMPLER`, because a
/// sampler set in code makes the SDK ignore that variable. The batch processor keeps its
/// defaults and reads `OTEL_BSP_*` itself; it exports from its own thread, which is why the
/// HTTP transport is the blocking reqwest client (see the workspace `Cargo.toml`).
pub fn build(config: &TelemetryConfig) -> Result<SdkTracerProvider, ExporterError> {
    let builder = SdkTracerProvider::builder()
        .with_sampler(config.sampler.clone())
        .with_resource(resource(config));
    if config.sdk_disabled {
        return Ok(builder.build());
    }
    let endpoint = config.traces_endpoint.to_string();
    let exporter = match config.protocol {
        Protocol::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build(),
        Protocol::HttpProtobuf => SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint.clone())
            .build(),
    }
    .map_err(|source| ExporterError { endpoint, source })?;
    let in_flight = crate::dropped::InFlight::default();
    // The batch processor reads OTEL_BSP_* itself; the queue bound is needed here too.
    let processor = BatchSpanProcessor::builder(crate::dropped::CountingExporter::new(
        exporter,
        in_flight.clone(),
        config.attribute_value_limit,
    ))
    .build();
    Ok(builder
        .with_span_processor(crate::dropped::CountingProcessor::new(
            processor,
            in_flight,
            config.max_queue_size,
        ))
        .build())
}

/// The resource of SPEC §2. `Resource::builder()` adds `telemetry.sdk.*` and whatever
/// `OTEL_RESOURCE_ATTRIBUTES` holds; our defaults fill only what the user did not set, and the
/// service name is set last so the precedence resolved in [`TelemetryConfig`] is the one kept.
pub(crate) fn resource(config: &TelemetryConfig) -> Resource {
    let defaults = [
        ("service.version", config.service_version.clone()),
        ("service.instance.id", uuid::Uuid::new_v4().to_string()),
        ("deployment.environment.name", "development".to_owned()),
    ];
    let attributes = defaults
        .into_iter()
        .filter(|(key, _)| !config.resource_attributes.contains_key(*key))
        .map(|(key, value)| KeyValue::new(key, value))
        .chain(
            config
                .resource_attributes
                .iter()
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
        );
    Resource::builder()
        .with_attributes(attributes)
        .with_service_name(config.service_name.clone())
        .build()
}
