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

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_orders_with_one_idempotency_key_place_one_order() {
    let system = System::builder().start().await;
    let url = format!("{}/orders", system.url(Service::Order));
    let body = json!({"item": "mug", "quantity": 3, "price": 2.5});
    let before = system.available("mug").await;
    let orders = (0..20).map(|_| {
        system_tests::send(
            system
                .client()
                .post(&url)
                .header("Idempotency-Key", "checkout-7f3a")
                .json(&body),
        )
    });
    let answers = join_all(orders).await;
    let mut ids: Vec<&str> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 201, "{:?}", a.body);
            a.body["order_id"].as_str().expect("order id")
        })
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(system.available("mug").await, before - 3, "reserved once");
    let charges = system
        .process(Service::Payment)
        .stdout()
        .lines()
        .filter(|l| l.contains("\"message\":\"charged\""))
        .count();
    assert_eq!(charges, 1, "charged once");

    // A repeat later gets the same answer; the same key with another body is refused.
    let again = system_tests::send(
        system
            .client()
            .post(&url)
            .header("Idempotency-Key", "checkout-7f3a")
            .json(&body),
    )
    .await;
    assert_eq!(again.body["order_id"], ids[0]);
    let other = json!({"item": "mug", "quantity": 4, "price": 2.5});
    let refused = system_tests::send(
        system
            .client()
            .post(&url)
            .header("Idempotency-Key", "checkout-7f3a")
            .json(&other),
    )
    .await;
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    let bad_key = system_tests::send(
        system
            .client()
            .post(&url)
            .header("Idempotency-Key", "")
            .json(&body),
    )
    .await;
    assert_eq!(bad_key.status, 400);
}
