//! `OTEL_EXPORTER_OTLP_TRACES_*` and `_LOGS_*` send each signal where it says, over the
//! protocol it says, whatever the generic variables say: spans over OTLP/HTTP to a URL taken as
//! it is, log records over gRPC, while the generic endpoint leads nowhere.
//! (One test per file: telemetry installs a process-wide subscriber.)

use telemetry::{ServiceInfo, TelemetryConfig};

#[tokio::test(flavor = "multi_thread")]
async fn spans_and_log_records_go_to_their_own_endpoints_over_their_own_protocols() {
    let local = trace_store::start_local().await.expect("store starts");
    // Nothing listens on port 9 (discard) here: anything sent by the generic settings is lost.
    let vars = [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:9".to_owned(),
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("http://{}/v1/traces", local.http),
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "http/protobuf".to_owned(),
        ),
        (
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
            format!("http://{}", local.grpc),
        ),
    ];
    let config = TelemetryConfig::from_lookup(
        &ServiceInfo {
            name: "per-signal-test",
            version: "0.0.0",
        },
        |name| {
            vars.iter()
                .find(|(variable, _)| *variable == name)
                .map(|(_, value)| value.clone())
        },
    )
    .expect("valid config");

    let guard = telemetry::init_with(&config).expect("telemetry starts");
    tracing::info_span!("reserve_stock").in_scope(|| tracing::info!("stock reserved"));
    guard.shutdown().await;

    let store = local.store;
    let trace_ids = store.trace_ids();
    assert_eq!(
        trace_ids.len(),
        1,
        "one trace over OTLP/HTTP: {trace_ids:?}"
    );
    let spans = store.trace(&trace_ids[0]);
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["reserve_stock"]);
    let bodies: Vec<String> = store
        .logs(&trace_ids[0])
        .into_iter()
        .map(|record| record.body)
        .collect();
    assert_eq!(bodies, ["stock reserved"], "the record over gRPC");
}
