//! Each injected fault changes the trace the way the README's walkthrough says, and the admin
//! endpoint switches it on and off while the service runs.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};
use system_tests::{Service, SpanStatus, StoredSpan, System, free_port, render_tree};

fn span<'a>(trace: &'a [StoredSpan], name: &str) -> &'a StoredSpan {
    trace
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name}:\n{}", render_tree(trace)))
}

/// `PUT /faults` on an admin port; returns the status.
async fn set_faults(system: &System, admin_port: u16, faults: Value) -> u16 {
    system
        .client()
        .put(format!("http://127.0.0.1:{admin_port}/faults"))
        .json(&faults)
        .send()
        .await
        .expect("admin endpoint answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn payment_failure_fault_fails_every_order_with_an_error_charge_until_switched_off() {
    let admin = free_port();
    let system = System::builder()
        .service_env(Service::Payment, "PAYMENT_FAILURE_RATE", "1")
        .service_env(Service::Payment, "ADMIN_PORT", &admin.to_string())
        .start()
        .await;
    let before = system.available("book").await;
    for _ in 0..5 {
        let answer = system
            .post_order(json!({"item": "book", "quantity": 1, "price": 1.0}))
            .await;
        assert_eq!(answer.status, 502);
        let trace = system
            .trace(&answer.trace_id.expect("X-Trace-Id"), 16)
            .await;
        assert!(matches!(
            span(&trace, "charge_payment").status,
            SpanStatus::Error(_)
        ));
        assert!(
            matches!(span(&trace, "POST /charges").status, SpanStatus::Error(_)),
            "503 in payment"
        );
    }
    assert_eq!(
        system.available("book").await,
        before,
        "every reservation released"
    );

    assert_eq!(
        set_faults(&system, admin, json!({"failure_rate": 0.0})).await,
        200
    );
    let answer = system
        .post_order(json!({"item": "book", "quantity": 1, "price": 1.0}))
        .await;
    assert_eq!(answer.status, 201);
    assert_eq!(
        set_faults(&system, admin, json!({"failure_rate": 7})).await,
        400,
        "validated"
    );
    assert_eq!(
        set_faults(&system, admin, json!({"nonsense": true})).await,
        422,
        "unknown field"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_lookup_and_notification_delay_faults_show_in_the_trace() {
    let inventory_admin = free_port();
    let notification_admin = free_port();
    let system = System::builder()
        .service_env(
            Service::Inventory,
            "ADMIN_PORT",
            &inventory_admin.to_string(),
        )
        .service_env(
            Service::Notification,
            "ADMIN_PORT",
            &notification_admin.to_string(),
        )
        .start()
        .await;
    let set = set_faults(
        &system,
        inventory_admin,
        json!({"slow_lookup_always": true}),
    )
    .await;
    assert_eq!(set, 200);
    assert_eq!(
        set_faults(&system, notification_admin, json!({"delay_ms": 2000})).await,
        200
    );

    let answer = system
        .post_order(json!({"item": "pen", "quantity": 1, "price": 1.0}))
        .await;
    assert_eq!(
        answer.status, 201,
        "a slow notification never fails the order"
    );
    let trace = system
        .trace(
            &answer.trace_id.expect("X-Trace-Id"),
            system_tests::ORDER_SPANS,
        )
        .await;
    let lookup = span(&trace, "slow_lookup");
    assert!(
        lookup.duration() >= Duration::from_millis(270),
        "{:?}",
        lookup.duration()
    );
    assert_eq!(lookup.str_attribute("inventory.demand"), Some("high"));
    let notify = span(&trace, "send_notification");
    assert!(
        matches!(&notify.status, SpanStatus::Error(d) if d.contains("timed out")),
        "{:?}",
        notify.status
    );

    // Off again: back to normal.
    assert_eq!(set_faults(&system, inventory_admin, json!({})).await, 200);
    let answer = system
        .post_order(json!({"item": "pen", "quantity": 1, "price": 1.0}))
        .await;
    let trace = system
        .trace(
            &answer.trace_id.expect("X-Trace-Id"),
            system_tests::ORDER_SPANS,
        )
        .await;
    assert!(span(&trace, "slow_lookup").duration() < Duration::from_millis(100));
}

/// Longest wait, among concurrent reservations, between `reserve_stock` starting and its
/// `slow_lookup` starting.
async fn longest_wait_before_lookup(system: &System) -> Duration {
    let orders =
        (0..5).map(|_| system.post_order(json!({"item": "mug", "quantity": 1, "price": 1.0})));
    let mut longest = Duration::ZERO;
    for answer in join_all(orders).await {
        assert_eq!(answer.status, 201);
        let trace = system
            .trace(
                &answer.trace_id.expect("X-Trace-Id"),
                system_tests::ORDER_SPANS,
            )
            .await;
        let reserve = span(&trace, "reserve_stock");
        let lookup = span(&trace, "slow_lookup");
        longest = longest.max(Duration::from_nanos(
            lookup
                .start_unix_nano
                .saturating_sub(reserve.start_unix_nano),
        ));
    }
    longest
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_fault_makes_concurrent_reservations_wait_for_each_other() {
    let admin = free_port();
    let system = System::builder()
        .service_env(Service::Inventory, "INVENTORY_LOCK_FAULT", "true")
        .service_env(Service::Inventory, "ADMIN_PORT", &admin.to_string())
        .start()
        .await;
    // Five reservations of ~20-50 ms each, one at a time: the last waits for four others.
    let with_fault = longest_wait_before_lookup(&system).await;
    assert!(
        with_fault >= Duration::from_millis(60),
        "longest wait {with_fault:?}"
    );

    assert_eq!(
        set_faults(&system, admin, json!({"lock_held_across_await": false})).await,
        200
    );
    let without = longest_wait_before_lookup(&system).await;
    assert!(
        without < with_fault / 2,
        "without the fault {without:?}, with it {with_fault:?}"
    );
}
