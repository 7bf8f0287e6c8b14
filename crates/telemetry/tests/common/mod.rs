//! A trace-store on 127.0.0.1 and a telemetry config pointing at it.

use std::time::Instant;

use telemetry::{ServiceInfo, TelemetryConfig};
use trace_store::TraceStore;

/// Starts a store (gRPC and HTTP) in the current runtime; returns it with a config whose
/// exporter points at it over `protocol` (`grpc` or `http/protobuf`).
pub async fn store_and_config(protocol: &str) -> (TraceStore, TelemetryConfig) {
    let local = trace_store::start_local().await.expect("store starts");
    let addr = match protocol {
        "grpc" => local.grpc,
        _ => local.http,
    };
    let store = local.store;
    let endpoint = format!("http://{addr}");
    let protocol = protocol.to_owned();
    let config = TelemetryConfig::from_lookup(
        &ServiceInfo {
            name: "flush-test",
            version: "0.0.0",
        },
        move |name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(endpoint.clone()),
            "OTEL_EXPORTER_OTLP_PROTOCOL" => Some(protocol.clone()),
            _ => None,
        },
    )
    .expect("valid config");
    (store, config)
}

/// Emits one span, shuts telemetry down, and checks that the span arrived through the flush
/// (the batch processor's default 5 s delay has not passed) and that shutdown did not hang.
// Each test binary compiles this module whole and uses part of it.
#[allow(dead_code)]
pub async fn span_is_flushed_at_shutdown(protocol: &str) {
    let (store, config) = store_and_config(protocol).await;
    let guard = telemetry::init_with(&config).expect("telemetry starts");
    tracing::info_span!("work_before_exit").in_scope(|| tracing::info!("working"));

    let started = Instant::now();
    guard.shutdown().await;
    let took = started.elapsed();
    assert!(
        took < telemetry::FLUSH_TIMEOUT,
        "shutdown took {took:?}: it timed out instead of flushing"
    );
    let names: Vec<String> = store
        .trace_ids()
        .iter()
        .flat_map(|id| store.trace(id))
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["work_before_exit".to_owned()]);
}
