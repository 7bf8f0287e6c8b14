//! Failures of the system's parts: stock is never lost to a failed order, and no order waits
//! past its time budget.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;
use system_tests::{Service, SpanKind, SpanStatus, System, render_tree};

#[tokio::test(flavor = "multi_thread")]
async fn payment_down_fails_fifty_orders_and_gives_every_reserved_unit_back() {
    let system = System::builder()
        .without(Service::Payment)
        .service_env(Service::Inventory, "INVENTORY_STOCK", "book=100")
        .start()
        .await;
    let before = system.available("book").await;
    for batch in 0..5 {
        let orders = (0..10)
            .map(|_| system.post_order(json!({"item": "book", "quantity": 2, "price": 1.0})));
        for answer in join_all(orders).await {
            assert_eq!(answer.status, 502, "batch {batch}: {:?}", answer.body);
            assert_eq!(answer.body["error"], "Payment failed");
        }
    }
    assert_eq!(
        system.available("book").await,
        before,
        "stock lost to failed orders"
    );

    // The compensation is a step of its own in the trace.
    let answer = system
        .post_order(json!({"item": "book", "quantity": 1, "price": 1.0}))
        .await;
    let trace = system
        .trace(&answer.trace_id.expect("X-Trace-Id"), 16)
        .await;
    let release = trace
        .iter()
        .find(|s| s.name == "release_inventory")
        .unwrap_or_else(|| panic!("no release_inventory:\n{}", render_tree(&trace)));
    assert_eq!(
        release.status,
        SpanStatus::Unset,
        "the release itself worked"
    );
    assert!(
        trace
            .iter()
            .any(|s| s.name == "POST /stock/{item}/release" && s.kind == SpanKind::Server)
    );
}

/// An inventory-service that accepts requests and never answers.
async fn hanging_inventory() -> String {
    let app = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        "never"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_inventory_gets_a_504_within_the_budget_and_a_timed_out_client_span() {
    let budget = Duration::from_millis(800);
    let system = System::builder()
        .replace(Service::Inventory, hanging_inventory().await)
        .service_env(Service::Order, "ORDER_BUDGET_MS", "800")
        .start()
        .await;
    let started = Instant::now();
    let answer = system
        .post_order(json!({"item": "book", "quantity": 1, "price": 1.0}))
        .await;
    let took = started.elapsed();
    assert_eq!(answer.status, 504, "{:?}", answer.body);
    assert_eq!(answer.body["error"], "Inventory check timed out");
    assert!(
        took <= budget + Duration::from_millis(100),
        "answered after {took:?}"
    );

    let trace = system.trace(&answer.trace_id.expect("X-Trace-Id"), 5).await;
    let client = trace
        .iter()
        .find(|s| s.kind == SpanKind::Client)
        .unwrap_or_else(|| panic!("no CLIENT span:\n{}", render_tree(&trace)));
    assert!(
        matches!(&client.status, SpanStatus::Error(d) if d.contains("timed out")),
        "{:?}",
        client.status
    );
    let check = trace
        .iter()
        .find(|s| s.name == "check_inventory")
        .expect("check_inventory");
    assert!(
        matches!(&check.status, SpanStatus::Error(d) if d.contains("timed out")),
        "{:?}",
        check.status
    );
    // A timeout is not retried: the budget is spent.
    assert_eq!(
        trace.iter().filter(|s| s.kind == SpanKind::Client).count(),
        1
    );
}
