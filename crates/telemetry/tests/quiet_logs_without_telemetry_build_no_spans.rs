//! With `TELEMETRY=off` and `RUST_LOG=warn`, nothing wants an INFO span, so none is built: the
//! JSON log layer takes events only, and a filter without the right level hint would make the
//! whole subscriber lose its level fast path (every INFO span built for nobody: +62 k
//! instructions an order in order-service, BENCHMARKS.md). (One test per file: telemetry
//! installs a process-wide subscriber.)

use telemetry::{ServiceInfo, TelemetryConfig};

#[test]
fn an_info_span_is_disabled_when_only_warnings_are_logged_and_tracing_is_off() {
    let config = TelemetryConfig::from_lookup(
        &ServiceInfo {
            name: "quiet-test",
            version: "0.0.0",
        },
        |name| match name {
            "TELEMETRY" => Some("off".to_owned()),
            "RUST_LOG" => Some("warn".to_owned()),
            _ => None,
        },
    )
    .expect("valid config");
    let _guard = telemetry::init_with(&config).expect("telemetry starts");
    // The subscriber's level hint is RUST_LOG's: nothing below WARN reaches it at all.
    assert_eq!(
        tracing::level_filters::LevelFilter::current(),
        tracing::level_filters::LevelFilter::WARN
    );
    assert!(tracing::info_span!("probe").is_disabled());
    assert!(!tracing::enabled!(tracing::Level::INFO));
}
