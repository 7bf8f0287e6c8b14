//! The notification is fire-and-forget: however slow or absent notification-service is, the
//! order is created and answered without waiting, and the attempt stays in the order's trace.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;
use system_tests::{Service, SpanStatus, StoredSpan, System, render_tree};

fn send_notification(trace: &[StoredSpan]) -> &StoredSpan {
    trace
        .iter()
        .find(|s| s.name == "send_notification")
        .unwrap_or_else(|| panic!("no send_notification:\n{}", render_tree(trace)))
}

#[tokio::test(flavor = "multi_thread")]
async fn order_is_created_when_notification_service_is_down() {
    let system = System::builder()
        .without(Service::Notification)
        .start()
        .await;
    let answer = system
        .post_order(json!({"item": "book", "quantity": 1, "price": 9.99}))
        .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    // Every span but notification-service's own.
    let trace = system
        .trace(
            &answer.trace_id.expect("X-Trace-Id"),
            system_tests::ORDER_SPANS - 1,
        )
        .await;
    assert_eq!(
        trace.len(),
        system_tests::ORDER_SPANS - 1,
        "{}",
        render_tree(&trace)
    );
    let notify = send_notification(&trace);
    assert!(
        matches!(&notify.status, SpanStatus::Error(d) if d.contains("notification-service unreachable")),
        "{:?}",
        notify.status
    );
    assert!(notify.events.iter().any(|e| e.name == "exception"));
    // The attempt is a child of process_order, in the order's trace.
    let process = trace
        .iter()
        .find(|s| s.name == "process_order")
        .expect("process_order");
    assert_eq!(
        notify.parent_span_id.as_deref(),
        Some(process.span_id.as_str())
    );
    // Only the notification failed; the request itself is not an error.
    let mut failed: Vec<_> = trace
        .iter()
        .filter(|s| matches!(s.status, SpanStatus::Error(_)))
        .map(|s| s.name.as_str())
        .collect();
    failed.sort();
    assert_eq!(failed, vec!["POST", "send_notification"]);
}

/// A notification-service that answers after `delay`, remembering when each request arrived.
async fn slow_notification_service(delay: Duration) -> (String, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                seen.lock().expect("lock").push(Instant::now());
                tokio::time::sleep(delay).await;
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, arrivals)
}

#[tokio::test(flavor = "multi_thread")]
async fn order_does_not_wait_for_a_notification_that_answers_after_two_seconds() {
    let (url, arrivals) = slow_notification_service(Duration::from_secs(2)).await;
    let system = System::builder()
        .replace(Service::Notification, url)
        .start()
        .await;

    let answer = system
        .post_order(json!({"item": "book", "quantity": 1, "price": 9.99}))
        .await;
    let answered_at = Instant::now();
    assert_eq!(answer.status, 201, "{:?}", answer.body);

    let trace = system
        .trace(
            &answer.trace_id.expect("X-Trace-Id"),
            system_tests::ORDER_SPANS,
        )
        .await;
    let notify = send_notification(&trace);
    // The notification was sent, and the order was answered long before it could have been
    // answered: the response did not wait for it.
    let arrived = *arrivals
        .lock()
        .expect("lock")
        .first()
        .expect("notification was sent");
    assert!(answered_at < arrived + Duration::from_secs(2));
    // The response did not even wait for the notification's own 0.5 s timeout.
    let server = trace
        .iter()
        .find(|s| s.name == "POST /orders")
        .expect("server span");
    assert!(
        server.end_unix_nano < notify.end_unix_nano,
        "the order's server span ended after the notification attempt"
    );
    // The attempt gave up at its 0.5 s timeout, not after the stand-in's 2 s.
    assert!(
        matches!(&notify.status, SpanStatus::Error(_)),
        "{:?}",
        notify.status
    );
    assert!(
        notify.duration() >= Duration::from_millis(500),
        "{:?}",
        notify.duration()
    );
    assert!(
        notify.duration() < Duration::from_millis(1500),
        "{:?}",
        notify.duration()
    );
}
