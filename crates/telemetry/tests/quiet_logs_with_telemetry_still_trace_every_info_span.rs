//! With tracing on and `RUST_LOG=warn`, every INFO span is still built (a disabled span cannot
//! take its caller's trace: `set_parent` on it is a silent no-op, OTEL-RUST-TRAPS.md), while an
//! INFO log line is refused at its callsite, and a DEBUG span is never traced. One filter for
//! the whole subscriber decides this (`gate`). (One test per file: telemetry installs a
//! process-wide subscriber.)

use telemetry::{ServiceInfo, TelemetryConfig};
use tracing::{Level, level_filters::LevelFilter};

#[tokio::test]
async fn info_spans_are_built_and_info_lines_refused_when_only_warnings_are_logged() {
    let config = TelemetryConfig::from_lookup(
        &ServiceInfo {
            name: "quiet-traced-test",
            version: "0.0.0",
        },
        |name| match name {
            "RUST_LOG" => Some("warn".to_owned()),
            // Nothing listens there: the spans of this test go nowhere, and that is fine.
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:9".to_owned()),
            "OTEL_LOGS_EXPORTER" => Some("none".to_owned()),
            _ => None,
        },
    )
    .expect("valid config");
    let _guard = telemetry::init_with(&config).expect("telemetry starts");

    assert_eq!(LevelFilter::current(), LevelFilter::INFO);
    assert!(!tracing::info_span!("probe").is_disabled());
    assert!(tracing::debug_span!("verbose probe").is_disabled());
    assert!(!tracing::event_enabled!(Level::INFO));
    assert!(tracing::event_enabled!(Level::WARN));
}
