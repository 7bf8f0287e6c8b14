//! The tracer provider: OTLP exporter, batch processor, sampler and resource (shared with the
//! logger provider of `logs`).

use opentelemetry::KeyValue;
use opentelemetry_sdk::{
    Resource,
    trace::{BatchSpanProcessor, SdkTracerProvider},
};

use opentelemetry_otlp::WithExportConfig as _;

use crate::{
    config::{ExporterKind, Protocol, TelemetryConfig},
    otlp::OtlpSpanProcessor,
};

/// A failure to build the exporter (a transport that cannot be set up).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the OTLP exporter for {endpoint}: {reason}")]
pub struct ExporterError {
    endpoint: String,
    reason: String,
}

impl ExporterError {
    pub(crate) fn new(endpoint: String, reason: impl std::fmt::Display) -> Self {
        Self {
            endpoint,
            reason: reason.to_string(),
        }
    }
}

/// Builds the provider described by `config`.
///
/// The processor and exporter are this crate's own (`otlp`), built from the validated settings
/// (`OTEL_BSP_*` included), unless `TELEMETRY_EXPORTER=opentelemetry-otlp` asks for that
/// crate's exporter behind the SDK's batch processor; its transport is then chosen explicitly
/// (`with_tonic` / `with_http`) and the endpoint passed explicitly. The sampler is set in code
/// from our own parse of `OTEL_TRACES_SAMPLER`, because a sampler set in code makes the SDK
/// ignore that variable. The SDK's batch processor exports from a thread of its own, which is
/// why opentelemetry-otlp's HTTP transport is the blocking reqwest client (see the workspace
/// `Cargo.toml`); this crate's senders are async (`otlp::processor`).
pub fn build(config: &TelemetryConfig) -> Result<SdkTracerProvider, ExporterError> {
    let builder = SdkTracerProvider::builder()
        .with_sampler(config.sampler.clone())
        .with_resource(resource(config));
    if config.sdk_disabled || !config.traces_exported {
        return Ok(builder.build());
    }
    let endpoint = config.traces_export.endpoint.to_string();
    if config.exporter == ExporterKind::Direct {
        let processor = OtlpSpanProcessor::new(config)
            .map_err(|reason| ExporterError::new(endpoint, reason))?;
        return Ok(builder.with_span_processor(processor).build());
    }
    let exporter = {
        let builder = opentelemetry_otlp::SpanExporter::builder();
        match config.traces_export.protocol {
            Protocol::Grpc => builder.with_tonic().with_endpoint(&endpoint).build(),
            Protocol::HttpProtobuf => builder.with_http().with_endpoint(&endpoint).build(),
        }
        .map_err(|reason| ExporterError::new(endpoint, reason))?
    };
    // opentelemetry-otlp sends values whole: they are cut before it sees them. The batch
    // processor reads OTEL_BSP_* itself; the queue bound is needed here too.
    let in_flight = crate::dropped::InFlight::default();
    let counting = crate::dropped::CountingExporter::new(
        exporter,
        in_flight.clone(),
        config.attribute_value_limit,
    );
    Ok(builder
        .with_span_processor(crate::dropped::CountingProcessor::new(
            BatchSpanProcessor::builder(counting).build(),
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
        // A random (version 4) UUID, as `service_kit::id` makes them.
        (
            "service.instance.id",
            uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .to_string(),
        ),
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
