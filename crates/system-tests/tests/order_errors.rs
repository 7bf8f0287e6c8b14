//! Every error of SPEC §1: its status, its JSON body, and what it does to the trace. A 4xx is
//! the caller's mistake and marks no span ERROR; a 5xx marks the failing step, the failed
//! CLIENT span and the server span ERROR, with a description and an exception event.

use serde_json::json;
use system_tests::{
    OrderAnswer, Service, SpanKind, SpanStatus, StoredSpan, System, free_port, render_tree,
};

/// Asserts the status and the `{"error": ...}` body, and returns the trace of the answer once
/// it holds `spans` spans.
async fn expect_error(
    system: &System,
    answer: OrderAnswer,
    status: u16,
    message: &str,
    spans: usize,
) -> Vec<StoredSpan> {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    let error = answer.body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no JSON error body: {:?}", answer.body));
    assert!(
        error.contains(message),
        "{error:?} does not say {message:?}"
    );
    let trace_id = answer.trace_id.expect("X-Trace-Id on an error answer");
    let trace = system.trace(&trace_id, spans).await;
    assert_eq!(trace.len(), spans, "{}", render_tree(&trace));
    trace
}

fn errors(trace: &[StoredSpan]) -> Vec<(&str, &str)> {
    trace
        .iter()
        .filter_map(|s| match &s.status {
            SpanStatus::Error(description) => Some((s.name.as_str(), description.as_str())),
            _ => None,
        })
        .collect()
}

fn find<'a>(trace: &'a [StoredSpan], name: &str, kind: SpanKind) -> &'a StoredSpan {
    trace
        .iter()
        .find(|s| s.name == name && s.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} span {name}:\n{}", render_tree(trace)))
}

/// The one child of `parent`.
fn child_of<'a>(trace: &'a [StoredSpan], parent: &StoredSpan) -> &'a StoredSpan {
    trace
        .iter()
        .find(|s| s.parent_span_id.as_deref() == Some(parent.span_id.as_str()))
        .unwrap_or_else(|| panic!("nothing under {}:\n{}", parent.name, render_tree(trace)))
}

/// ERROR with a description and an `exception` event that says what happened.
fn assert_failed_with_exception(span: &StoredSpan, cause: &str) {
    match &span.status {
        SpanStatus::Error(description) => {
            assert!(!description.is_empty(), "{} has no description", span.name);
        }
        other => panic!("{} is {other:?}, not ERROR", span.name),
    }
    let exception = span
        .events
        .iter()
        .find(|e| e.name == "exception")
        .unwrap_or_else(|| panic!("{} has no exception event: {:?}", span.name, span.events));
    let message = format!("{:?}", exception.attributes.get("exception.message"));
    assert!(
        message.contains(cause),
        "{message} does not mention {cause}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn caller_mistakes_are_4xx_with_json_errors_and_no_error_spans() {
    let system = System::builder()
        .service_env(Service::Inventory, "INVENTORY_STOCK", "book=5,pen=5")
        .start()
        .await;
    // (body, status, message, spans in the trace)
    #[rustfmt::skip]
    let cases = [
        (json!({"item": "book", "quantity": 0, "price": 9.99}), 400, "Quantity must be positive", 3),
        (json!({"item": "book", "quantity": -3, "price": 9.99}), 400, "Quantity must be positive", 3),
        (json!({"item": "book", "quantity": 1, "price": -0.01}), 400, "Price must be non-negative", 3),
        (json!({"item": "../x", "quantity": 1, "price": 1}), 400, "Item must be", 3),
        (json!({"item": "a?b", "quantity": 1, "price": 1}), 400, "Item must be", 3),
        (json!({"item": "", "quantity": 1, "price": 1}), 400, "Item must be", 3),
        (json!({"item": "book", "price": 1}), 422, "missing field `quantity`", 1),
        (json!({"item": "book", "quantity": "two", "price": 1}), 422, "invalid type", 1),
        (json!({"item": 7, "quantity": 1, "price": 1}), 422, "invalid type", 1),
        (json!({"item": "book", "quantity": 1.5, "price": 1}), 422, "invalid type", 1),
        (json!({"item": "unicorn", "quantity": 1, "price": 1}), 404, "Unknown item: unicorn", 6),
        (json!({"item": "book", "quantity": 6, "price": 1}), 409, "Insufficient stock", 6),
    ];
    for (body, status, message, spans) in cases {
        let answer = system.post_order(body.clone()).await;
        let trace = expect_error(&system, answer, status, message, spans).await;
        assert_eq!(errors(&trace), vec![], "{body}: {}", render_tree(&trace));
        let server = find(&trace, "POST /orders", SpanKind::Server);
        assert_eq!(
            server.int_attribute("http.response.status_code"),
            Some(i64::from(status))
        );
    }

    // (body, content type, status, message, spans in the trace)
    let raw_cases: [(&[u8], &str, u16, &str, usize); 4] = [
        (
            b"{not json",
            "application/json",
            400,
            "Failed to parse the request body as JSON",
            1,
        ),
        (b"", "application/json", 400, "EOF", 1),
        // A price is read from its digits, exactly: too large is a validation error.
        (
            br#"{"item":"book","quantity":1,"price":1e999}"#,
            "application/json",
            400,
            "Price is too large",
            3,
        ),
        (
            br#"{"item":"book","quantity":1,"price":1}"#,
            "text/plain",
            415,
            "Content-Type",
            1,
        ),
    ];
    for (body, content_type, status, message, spans) in raw_cases {
        let answer = system.post_order_raw(body.to_vec(), content_type).await;
        let trace = expect_error(&system, answer, status, message, spans).await;
        assert_eq!(errors(&trace), vec![]);
    }

    let huge = format!(
        r#"{{"item":"book","quantity":1,"price":1,"pad":"{}"}}"#,
        "x".repeat(64 * 1024)
    );
    let answer = system.post_order_raw(huge, "application/json").await;
    let trace = expect_error(&system, answer, 413, "length limit", 1).await;
    assert_eq!(errors(&trace), vec![]);

    // None of these reserved anything: the 5 books are all still there.
    assert_eq!(system.available("book").await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn inventory_down_is_502_with_the_failed_step_and_client_span_in_error() {
    let system = System::builder().without(Service::Inventory).start().await;
    let answer = system
        .post_order(json!({"item": "book", "quantity": 1, "price": 9.99}))
        .await;
    // Reading stock is idempotent, so it is tried three times before the order gives up.
    let trace = expect_error(&system, answer, 502, "Inventory check failed", 7).await;
    assert_eq!(
        render_tree(&trace),
        "\
[order-service] POST /orders SERVER
  [order-service] process_order
    [order-service] validate_order
    [order-service] check_inventory
      [order-service] GET CLIENT
      [order-service] GET CLIENT
      [order-service] GET CLIENT
"
    );
    assert_failed_with_exception(
        find(&trace, "check_inventory", SpanKind::Internal),
        "inventory-service unreachable",
    );
    for attempt in trace.iter().filter(|s| s.kind == SpanKind::Client) {
        assert_failed_with_exception(attempt, "error sending request");
    }
    assert_failed_with_exception(
        find(&trace, "process_order", SpanKind::Internal),
        "Inventory check failed",
    );
    let server = find(&trace, "POST /orders", SpanKind::Server);
    assert!(
        matches!(&server.status, SpanStatus::Error(d) if d.contains("502")),
        "{:?}",
        server.status
    );
    assert_eq!(
        find(&trace, "validate_order", SpanKind::Internal).status,
        SpanStatus::Unset
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn payment_down_is_502_with_charge_payment_in_error() {
    let system = System::builder().without(Service::Payment).start().await;
    let answer = system
        .post_order(json!({"item": "book", "quantity": 1, "price": 9.99}))
        .await;
    // …, then the reservation given back: release_inventory, its call, inventory's two spans.
    let trace = expect_error(&system, answer, 502, "Payment failed", 17).await;
    let failed: Vec<&str> = errors(&trace).into_iter().map(|(name, _)| name).collect();
    assert_eq!(failed, {
        let mut expected = vec!["POST /orders", "process_order", "charge_payment", "POST"];
        expected.sort_by_key(|n| trace.iter().position(|s| s.name == *n));
        expected
    });
    assert_failed_with_exception(
        find(&trace, "charge_payment", SpanKind::Internal),
        "payment-service unreachable",
    );
    // The CLIENT span that failed is the one under charge_payment, not the reservation's.
    let charge = find(&trace, "charge_payment", SpanKind::Internal);
    let client = child_of(&trace, charge);
    assert_failed_with_exception(client, "error sending request");
}

#[tokio::test(flavor = "multi_thread")]
async fn downstream_5xx_answer_is_502_and_marks_the_client_span() {
    // A payment-service stand-in that answers 503 to every charge.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route(
        "/charges",
        axum::routing::post(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy") }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let system = System::builder()
        .replace(Service::Payment, url)
        .start()
        .await;
    let answer = system
        .post_order(json!({"item": "book", "quantity": 1, "price": 9.99}))
        .await;
    // …, then the reservation given back: release_inventory, its call, inventory's two spans.
    let trace = expect_error(&system, answer, 502, "Payment failed", 17).await;
    let charge = find(&trace, "charge_payment", SpanKind::Internal);
    assert_failed_with_exception(charge, "503");
    let client = child_of(&trace, charge);
    assert_eq!(client.int_attribute("http.response.status_code"), Some(503));
    assert!(
        matches!(client.status, SpanStatus::Error(_)),
        "{:?}",
        client.status
    );
    let _ = free_port();
}
