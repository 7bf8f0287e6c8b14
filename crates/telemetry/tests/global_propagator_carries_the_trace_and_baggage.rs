//! Code outside the SERVER and CLIENT spans (a queue's producer, a request made by hand)
//! propagates through the global propagator, which the SDK never sets by itself: it ignores
//! `OTEL_PROPAGATORS`, and without `set_text_map_propagator` injection writes nothing
//! (OTEL-RUST-TRAPS.md). The SERVER and CLIENT spans call the same two propagators directly
//! (`propagation`), so the order's trace would not show this trap: this test does. (One test
//! per file: telemetry installs a process-wide subscriber.)

use std::collections::HashMap;

use opentelemetry::{
    Context, KeyValue,
    baggage::BaggageExt as _,
    global,
    trace::{SpanContext, TraceContextExt as _, TraceFlags, TraceState},
};
use telemetry::{ServiceInfo, TelemetryConfig};

#[tokio::test]
async fn after_init_the_global_propagator_writes_and_reads_traceparent_and_baggage() {
    let config = TelemetryConfig::from_lookup(
        &ServiceInfo {
            name: "global-propagator-test",
            version: "0.0.0",
        },
        |name| match name {
            // Nothing listens there: this test exports nothing.
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:9".to_owned()),
            "OTEL_LOGS_EXPORTER" => Some("none".to_owned()),
            _ => None,
        },
    )
    .expect("valid config");
    let _guard = telemetry::init_with(&config).expect("telemetry starts");

    let span = SpanContext::new(
        0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736.into(),
        0x00f0_67aa_0ba9_02b7.into(),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let context = Context::new()
        .with_remote_span_context(span.clone())
        .with_baggage([KeyValue::new("tenant", "acme")]);
    let mut carrier = HashMap::new();
    global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut carrier));
    assert_eq!(
        carrier.get("traceparent").map(String::as_str),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        "{carrier:?}"
    );
    assert_eq!(
        carrier.get("baggage").map(String::as_str),
        Some("tenant=acme")
    );

    let back = global::get_text_map_propagator(|propagator| propagator.extract(&carrier));
    assert_eq!(back.span().span_context(), &span);
    assert_eq!(
        back.baggage().get("tenant").map(|v| v.as_str()),
        Some("acme")
    );
}
