//! The `tracing` subscriber: one layer that turns spans into OpenTelemetry spans, one that
//! writes JSON log lines to stdout.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::{
    EnvFilter, Layer, filter::LevelFilter, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::config::TelemetryConfig;

/// Installs the global subscriber. Returns an error if one is installed already.
///
/// Each layer has its own filter. `RUST_LOG` decides which log lines are written, and never
/// which spans are traced: an `EnvFilter` such as `warn` applied to the whole subscriber would
/// disable the INFO-level server span, and `set_parent` on a disabled span is a silent no-op,
/// so every incoming trace would be broken. The OpenTelemetry layer always sees INFO and above.
pub fn install(
    config: &TelemetryConfig,
    provider: &SdkTracerProvider,
) -> Result<(), tracing_subscriber::util::TryInitError> {
    let tracer = provider.tracer(config.service_name.clone());
    let traces = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_filter(LevelFilter::INFO);

    let mut logs = json_subscriber::JsonLayer::stdout();
    logs.with_timer("timestamp", tracing_subscriber::fmt::time::SystemTime);
    logs.with_level("level");
    logs.add_static_field(
        "service",
        serde_json::Value::String(config.service_name.clone()),
    );
    logs.with_target("target");
    logs.with_flattened_event();
    logs.with_opentelemetry_ids(true);
    // Validated in `TelemetryConfig`, so this fallback is unreachable in practice.
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));

    tracing_subscriber::registry()
        .with(traces)
        .with(logs.with_filter(filter))
        .try_init()
}
