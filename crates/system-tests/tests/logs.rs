//! The third pillar: every log line a service writes inside a request also reaches the
//! collector as an OTLP log record, over either transport, with that request's trace id, the id
//! of the span it was written in, and its service's resource.

use std::{collections::BTreeSet, time::Duration};

use serde_json::json;
use system_tests::{ORDER_SPANS, Otlp, Service, System};
use trace_store::StoredLog;

/// The stdout JSON lines of `service` that belong to `trace_id`: (message, span id).
fn stdout_lines(system: &System, service: Service, trace_id: &str) -> BTreeSet<(String, String)> {
    system
        .process(service)
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["trace_id"] == trace_id)
        .map(|l| {
            let text = |key: &str| l[key].as_str().unwrap_or_default().to_owned();
            (text("message"), text("span_id"))
        })
        .collect()
}

/// Waits until the store holds at least `count` records of `trace_id`.
async fn logs_of(system: &System, trace_id: &str, count: usize) -> Vec<StoredLog> {
    system
        .store
        .wait_for_logs(trace_id, Duration::from_secs(10), |logs| {
            logs.len() >= count
        })
        .await;
    // Anything beyond `count` has arrived by now too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    system.store.logs(trace_id)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_log_line_of_a_request_arrives_over_both_transports_with_its_trace_and_span() {
    for otlp in [Otlp::Grpc, Otlp::HttpProtobuf] {
        let system = System::builder().otlp(otlp).start().await;
        let answer = system
            .post_order(json!({"item": "book", "quantity": 2, "price": 9.99}))
            .await;
        assert_eq!(answer.status, 201);
        let trace_id = answer.trace_id.expect("X-Trace-Id");
        let spans = system.trace(&trace_id, ORDER_SPANS).await;

        let mut expected = BTreeSet::new();
        for service in [
            Service::Order,
            Service::Inventory,
            Service::Payment,
            Service::Notification,
        ] {
            for (message, span_id) in stdout_lines(&system, service, &trace_id) {
                expected.insert((service.name().to_owned(), message, span_id));
            }
        }
        assert!(
            expected.iter().any(|(_, m, _)| m == "stock reserved")
                && expected.iter().any(|(_, m, _)| m == "order created"),
            "{otlp:?}: {expected:?}"
        );
        let logs = logs_of(&system, &trace_id, expected.len()).await;
        let received: BTreeSet<(String, String, String)> = logs
            .iter()
            .map(|l| (l.service_name.clone(), l.body.clone(), l.span_id.clone()))
            .collect();
        assert_eq!(
            received, expected,
            "{otlp:?}: the records are the stdout lines of the trace, with the same span ids"
        );
        for log in &logs {
            let span = spans
                .iter()
                .find(|s| s.span_id == log.span_id)
                .unwrap_or_else(|| panic!("{otlp:?}: {log:?} names no span of the trace"));
            assert_eq!(span.service_name, log.service_name, "{log:?}");
            assert_eq!(log.severity_text, "INFO", "{log:?}");
        }
        let reserved = logs
            .iter()
            .find(|l| l.body == "stock reserved")
            .expect("stock reserved");
        let reserve_stock = spans
            .iter()
            .find(|s| s.name == "reserve_stock")
            .expect("reserve_stock");
        assert_eq!(reserved.span_id, reserve_stock.span_id);
        assert_eq!(reserved.attributes["item"], "book", "{reserved:?}");
        // Written by a handler that opens no span of its own: the line belongs to the SERVER
        // span, an OpenTelemetry span known only through the attached context.
        for (service, message, server_span) in [
            ("payment-service", "charged", "POST /charges"),
            ("notification-service", "notification sent", "POST /notify"),
        ] {
            let line = logs
                .iter()
                .find(|l| l.service_name == service && l.body == message)
                .unwrap_or_else(|| panic!("{otlp:?}: no {message:?} of the trace: {logs:?}"));
            let span = spans
                .iter()
                .find(|s| s.service_name == service && s.name == server_span)
                .unwrap_or_else(|| panic!("{otlp:?}: no {server_span}"));
            assert_eq!(line.span_id, span.span_id, "{otlp:?}: {line:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_log_decides_what_is_exported_and_otel_logs_exporter_none_exports_nothing() {
    let quiet = System::builder().env("RUST_LOG", "warn").start().await;
    let answer = quiet
        .post_order(json!({"item": "book", "quantity": 2, "price": 9.99}))
        .await;
    let trace_id = answer.trace_id.expect("X-Trace-Id");
    quiet.trace(&trace_id, ORDER_SPANS).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        quiet.store.logs(&trace_id),
        Vec::new(),
        "INFO lines under warn"
    );

    let none = System::builder()
        .env("OTEL_LOGS_EXPORTER", "none")
        .start()
        .await;
    let answer = none
        .post_order(json!({"item": "book", "quantity": 2, "price": 9.99}))
        .await;
    let trace_id = answer.trace_id.expect("X-Trace-Id");
    none.trace(&trace_id, ORDER_SPANS).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(none.store.log_count(), 0);
    // stdout is unchanged.
    assert!(!stdout_lines(&none, Service::Order, &trace_id).is_empty());
}
