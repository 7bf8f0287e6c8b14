//! OpenTelemetry for the four services, in one place.
//!
//! A service calls [`init`] once at start, wraps its router with [`traced`], calls others
//! through [`http_client`], and awaits [`TelemetryGuard::shutdown`] after its server stops.
//! Nothing else in the workspace names an exporter, a propagator or a semantic-convention key.
//! Each function documents the trap of opentelemetry 0.33 / tracing-opentelemetry 0.34 it
//! avoids (`shared/OTEL-RUST-TRAPS.md`).
//!
//! # Layout
//! - [`config`]: every `OTEL_*` variable (and `SERVICE_NAME`, `RUST_LOG`) parsed and validated.
//! - `provider`: the tracer provider: exporter, batch processor, sampler, resource.
//! - `otlp`: the OTLP exporters of spans and log records (gRPC or HTTP/protobuf), encoding each
//!   batch in one pass; opentelemetry-otlp's with `TELEMETRY_EXPORTER=opentelemetry-otlp`.
//! - `subscriber`: the OpenTelemetry layer and the JSON log layer (`log_lines`: the line's format).
//! - `gate`: the subscriber's one filter (spans by level, events by `RUST_LOG`), and which layer
//!   is told about which.
//! - `dropped`: counting spans lost to failed exports (`otel_sdk_spans_dropped_total`).
//! - `logs`: the log lines as OTLP log records, with their span's ids (`otel_sdk_logs_dropped_total`).
//! - `guard`: [`TelemetryGuard`], which flushes spans at shutdown on any runtime flavour.
//! - `server`: [`traced`] (or [`TracedLayer`] in a `tower::ServiceBuilder`), the SERVER span and
//!   `X-Trace-Id` for an axum router.
//! - `client`: [`http_client`], the CLIENT span and W3C context injection for outgoing calls.
//! - `context`: how the SERVER and CLIENT spans (OpenTelemetry API) and a handler's `tracing`
//!   spans find each other; [`in_current_trace`] for a spawned task.
//! - `ids`: trace and span ids as hex, for log lines, exemplars and `X-Trace-Id`.
//! - `propagation`: W3C Trace Context (this crate's, for its cost) and the headers it travels in;
//!   `tracestate`: that header read as W3C asks and held to 512 bytes; `baggage`: W3C Baggage,
//!   read by the SDK's rules from every field and with the whole of each value, injected by
//!   the SDK's propagator.
//! - `errors`: [`record_error`], the ERROR status and `exception` event of a failed span.
//! - [`metrics`]: the Prometheus registry, HTTP duration histograms with trace exemplars,
//!   business counters, and the `/metrics` handler.

pub mod config;
pub mod metrics;

mod baggage;
mod client;
mod context;
mod dropped;
mod errors;
mod gate;
mod guard;
mod ids;
mod log_lines;
mod logs;
mod otlp;
mod propagation;
mod provider;
mod server;
mod subscriber;
mod tracestate;

pub use client::{HttpClient, POOL_IDLE_TIMEOUT, http_client};
pub use config::{ConfigError, ExporterKind, Protocol, ServiceInfo, TelemetryConfig};
pub use context::in_current_trace;
pub use errors::{record_error, record_failure};
pub use guard::{FLUSH_TIMEOUT, TelemetryGuard};
pub use metrics::{CounterVec, counter, metrics_handler};
pub use server::{TRACE_ID_HEADER, Traced, TracedFuture, TracedLayer, traced};

use opentelemetry::{propagation::TextMapCompositePropagator, trace::TracerProvider as _};

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A variable has a value that cannot be used (the service exits with status 2).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The exporter could not be built.
    #[error(transparent)]
    Exporter(#[from] provider::ExporterError),
    /// A global subscriber was installed already.
    #[error("a tracing subscriber is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Sets up tracing for `service` from the environment: the tracer provider exporting over
/// OTLP, W3C TraceContext + Baggage propagation, and the subscriber with JSON logs to stdout.
///
/// Call it from inside the tokio runtime the service runs on. On a runtime of one thread the
/// exporters send from tasks of that runtime, which must then keep running until
/// [`TelemetryGuard::shutdown`]; elsewhere they send from threads of their own.
pub fn init(service: ServiceInfo) -> Result<TelemetryGuard, InitError> {
    let config = TelemetryConfig::from_env(&service)?;
    init_with(&config)
}

/// [`init`] with settings already resolved.
pub fn init_with(config: &TelemetryConfig) -> Result<TelemetryGuard, InitError> {
    if config.tracing_off {
        subscriber::install(config, None, None)?;
        return Ok(TelemetryGuard::none());
    }
    let provider = provider::build(config)?;
    let logger = logs::build(config)?;
    // With the SDK disabled or `OTEL_TRACES_EXPORTER=none`, spans are made but never exported:
    // an exemplar would name a trace no backend will ever have.
    metrics::link_exemplars(!config.sdk_disabled && config.traces_exported);
    // The SDK does not read OTEL_PROPAGATORS: without this call injection writes no header and
    // every service starts its own trace.
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(propagation::TraceContext),
        Box::new(baggage::W3cBaggage::default()),
    ]));
    opentelemetry::global::set_tracer_provider(provider.clone());
    // The instrumentation scope is copied into every span the SDK ends: with a borrowed name
    // that copy allocates nothing. Leaked once a process (or a test's `init_with`).
    let scope: &'static str = Box::leak(config.service_name.clone().into_boxed_str());
    let tracer = provider.tracer(scope);
    context::set_tracer(tracer.clone());
    subscriber::install(config, Some(tracer), logger.as_ref())?;
    Ok(TelemetryGuard::new(provider, logger))
}
