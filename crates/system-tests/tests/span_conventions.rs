//! The SERVER and CLIENT spans follow the HTTP semantic conventions and record nothing they
//! should not: no query value, no empty attribute, no made-up method as a name, no key twice
//! (the trace-store refuses such a span, and `System::trace` fails on it), and `error.type`
//! on every failed request.

use std::time::Duration;

use serde_json::json;
use system_tests::{
    AttributeValue, ORDER_SPANS, Service, SpanKind, StoredSpan, System, render_tree, send,
};

fn server_span<'a>(trace: &'a [StoredSpan], service: &str) -> &'a StoredSpan {
    trace
        .iter()
        .find(|s| s.kind == SpanKind::Server && s.service_name == service)
        .unwrap_or_else(|| panic!("no SERVER span of {service} in\n{}", render_tree(trace)))
}

/// A system and the trace of one created (fast) order.
async fn created_order() -> (System, Vec<StoredSpan>) {
    let system = System::builder().start().await;
    let answer = system
        .post_order(json!({"item": "book", "quantity": 2, "price": 9.99}))
        .await;
    assert_eq!(answer.status, 201);
    let trace = system
        .trace(&answer.trace_id.expect("X-Trace-Id"), ORDER_SPANS)
        .await;
    (system, trace)
}

#[tokio::test(flavor = "multi_thread")]
async fn http_spans_carry_the_conventions_attributes_and_no_empty_or_made_up_ones() {
    let (_system, trace) = created_order().await;
    for span in &trace {
        for (key, value) in &span.attributes {
            assert!(
                !matches!(value, AttributeValue::String(s) if s.is_empty()),
                "{} {}: empty {key}",
                span.service_name,
                span.name
            );
        }
        assert!(!span.attributes.contains_key("span.type"), "{}", span.name);
        match span.kind {
            SpanKind::Server => {
                assert_eq!(
                    span.str_attribute("url.scheme"),
                    Some("http"),
                    "{}",
                    span.name
                );
                assert!(span.str_attribute("http.route").is_some(), "{}", span.name);
                assert!(span.int_attribute("server.port").is_some(), "{}", span.name);
            }
            SpanKind::Client => {
                assert_eq!(span.str_attribute("url.scheme"), Some("http"));
                assert!(span.int_attribute("server.port").is_some_and(|p| p > 0));
                assert!(
                    !span.attributes.contains_key("error.type"),
                    "a 2xx is no error"
                );
            }
            _ => {}
        }
    }
}

/// What tracing-opentelemetry adds by default and is no convention, only bytes to encode and
/// ship for every span (issue 11's cost work turned each off): `target`, `busy_ns`/`idle_ns`,
/// `code.*`, `thread.*`; and log lines copied into their span as events (they are log records,
/// and reach the backend as such). An `exception` event is still recorded on a failure.
#[tokio::test(flavor = "multi_thread")]
async fn spans_carry_no_layer_bookkeeping_and_log_lines_are_not_span_events() {
    let (system, trace) = created_order().await;
    // The order's own log lines ("order created", "stock reserved") were written meanwhile.
    let logs = system.process(Service::Order).stdout();
    assert!(logs.contains("order created"), "{logs}");
    for span in &trace {
        for key in span.attributes.keys() {
            assert!(
                !matches!(key.as_str(), "target" | "busy_ns" | "idle_ns" | "level")
                    && !key.starts_with("code.")
                    && !key.starts_with("thread."),
                "{} {}: {key}",
                span.service_name,
                span.name
            );
        }
        assert!(
            span.events.is_empty(),
            "{} {}: {:?}",
            span.service_name,
            span.name,
            span.events
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_is_recorded_with_its_values_redacted() {
    let system = System::builder().start().await;
    let request = system
        .client()
        .post(format!(
            "{}/orders?token=s3cr3t-t0ken&debug",
            system.url(Service::Order)
        ))
        .json(&json!({"item": "book", "quantity": 1, "price": 1}));
    let answer = send(request).await;
    assert_eq!(answer.status, 201);
    let trace = system
        .trace(&answer.trace_id.expect("X-Trace-Id"), ORDER_SPANS)
        .await;
    let server = server_span(&trace, "order-service");
    assert_eq!(
        server.str_attribute("url.query"),
        Some("token=REDACTED&debug")
    );
    let everything = format!("{trace:?}");
    assert!(!everything.contains("s3cr3t"), "the secret was recorded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_made_up_method_is_other_and_a_rejected_item_is_recorded_nowhere() {
    let system = System::builder().start().await;
    let method = reqwest::Method::from_bytes(b"BREW").expect("a method");
    let answer = send(
        system
            .client()
            .request(method, format!("{}/orders", system.url(Service::Order))),
    )
    .await;
    let trace = system.trace(&answer.trace_id.expect("X-Trace-Id"), 1).await;
    let server = server_span(&trace, "order-service");
    // Semantic conventions (http-spans, "Name"): `HTTP` for the method, the route as known.
    assert_eq!(server.name, "HTTP /orders");
    assert_eq!(server.str_attribute("http.request.method"), Some("_OTHER"));
    assert_eq!(
        server.str_attribute("http.request.method_original"),
        Some("BREW")
    );

    // A 10 KiB item name is refused (400) and stored in no span.
    let long = "x".repeat(10 * 1024);
    let answer = system
        .post_order(json!({"item": long, "quantity": 1, "price": 1}))
        .await;
    assert_eq!(answer.status, 400);
    let trace = system.trace(&answer.trace_id.expect("X-Trace-Id"), 3).await;
    assert!(
        !format!("{trace:?}").contains(&"x".repeat(100)),
        "{}",
        render_tree(&trace)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_requests_carry_error_type_on_server_and_client_spans() {
    let system = System::builder().without(Service::Payment).start().await;
    let answer = system
        .post_order(json!({"item": "book", "quantity": 1, "price": 9.99}))
        .await;
    assert_eq!(answer.status, 502);
    let trace_id = answer.trace_id.expect("X-Trace-Id");
    let trace = system
        .store
        .wait_for(&trace_id, Duration::from_secs(10), |spans| {
            // The SERVER span ends after the order's steps, and may come in a later batch.
            spans.iter().any(|s| s.name == "release_inventory")
                && spans
                    .iter()
                    .any(|s| s.kind == SpanKind::Server && s.service_name == "order-service")
        })
        .await;
    let server = server_span(&trace, "order-service");
    assert_eq!(server.str_attribute("error.type"), Some("502"));
    let refused = trace
        .iter()
        .find(|s| s.kind == SpanKind::Client && s.str_attribute("error.type").is_some())
        .unwrap_or_else(|| panic!("no failed CLIENT span in\n{}", render_tree(&trace)));
    assert_eq!(refused.str_attribute("error.type"), Some("connect"));
    // The calls that worked are not marked.
    let reserve = trace
        .iter()
        .filter(|s| s.kind == SpanKind::Client)
        .filter(|s| s.int_attribute("http.response.status_code") == Some(200))
        .count();
    assert!(reserve >= 2, "{}", render_tree(&trace));
    assert!(
        trace
            .iter()
            .filter(|s| s.int_attribute("http.response.status_code") == Some(200))
            .all(|s| !s.attributes.contains_key("error.type"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn string_values_are_cut_to_the_attribute_length_limit() {
    for (limit, expected) in [(None, 1024), (Some("100"), 100)] {
        let mut builder = System::builder();
        if let Some(limit) = limit {
            builder = builder.env("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", limit);
        }
        let system = builder.start().await;
        let agent = "A".repeat(20 * 1024);
        let request = system
            .client()
            .post(format!("{}/orders", system.url(Service::Order)))
            .header("user-agent", &agent)
            .json(&json!({"item": "book", "quantity": 1, "price": 1}));
        let answer = send(request).await;
        assert_eq!(answer.status, 201);
        let trace = system
            .trace(&answer.trace_id.expect("X-Trace-Id"), ORDER_SPANS)
            .await;
        let recorded = server_span(&trace, "order-service")
            .str_attribute("user_agent.original")
            .expect("user_agent.original")
            .len();
        assert_eq!(recorded, expected, "limit {limit:?}");
    }
}
