//! Money and stock under failure timings: each test is one of the scenarios where an order
//! used to end half done (charged and released, reserved forever, placed twice), now ending
//! created (units confirmed, charged once) or failed (units back, nothing charged), with the
//! decision visible in the trace.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use system_tests::{
    AttributeValue, ORDER_SPANS, Service, StoredSpan, System, free_port, render_tree, send,
};

/// A system with admin ports on inventory and payment (their ledgers), and `env` per service.
async fn start(env: &[(Service, &str, &str)]) -> (System, u16, u16) {
    let inventory_admin = free_port();
    let payment_admin = free_port();
    let mut builder = System::builder()
        .env("INVENTORY_STOCK", "book=100,pen=100,mug=100")
        .service_env(
            Service::Inventory,
            "ADMIN_PORT",
            &inventory_admin.to_string(),
        )
        .service_env(Service::Payment, "ADMIN_PORT", &payment_admin.to_string());
    for (service, key, value) in env {
        builder = builder.service_env(*service, key, value);
    }
    (builder.start().await, inventory_admin, payment_admin)
}

async fn admin(system: &System, port: u16, path: &str) -> Vec<Value> {
    system
        .client()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .expect("admin answers")
        .json()
        .await
        .expect("JSON list")
}

/// inventory's `(available, held, sold)` for `item`.
async fn level(system: &System, item: &str) -> (u64, u64, u64) {
    let level: Value = system
        .client()
        .get(format!("{}/stock/{item}", system.url(Service::Inventory)))
        .send()
        .await
        .expect("inventory answers")
        .json()
        .await
        .expect("JSON");
    let n = |k: &str| level[k].as_u64().expect("a count");
    (n("available"), n("held"), n("sold"))
}

fn span_named<'a>(trace: &'a [StoredSpan], name: &str) -> &'a StoredSpan {
    trace
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name} in\n{}", render_tree(trace)))
}

async fn order(system: &System, body: Value, key: Option<&str>) -> system_tests::OrderAnswer {
    let mut request = system
        .client()
        .post(format!("{}/orders", system.url(Service::Order)))
        .json(&body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    send(request).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_charge_answered_after_the_budget_is_settled_and_the_order_completes() {
    // Payment charges at once and answers 2.5 s later; the order has 1 s. Before, the order
    // answered 504 and released its units while the customer had paid.
    let (system, _, payment_admin) = start(&[
        (Service::Order, "ORDER_BUDGET_MS", "1000"),
        (Service::Payment, "PAYMENT_ANSWER_DELAY_MS", "2500"),
    ])
    .await;
    let answer = order(
        &system,
        json!({"item": "book", "quantity": 2, "price": 9.99}),
        None,
    )
    .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    assert_eq!(level(&system, "book").await, (98, 0, 2));
    let charges = admin(&system, payment_admin, "/charges").await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0]["state"], "charged");
    assert_eq!(charges[0]["charge"]["amount_cents"], 1998);

    let trace = system
        .trace(&answer.trace_id.expect("X-Trace-Id"), ORDER_SPANS)
        .await;
    let settled = span_named(&trace, "settle_charge");
    assert_eq!(
        settled.attributes.get("payment.outcome"),
        Some(&AttributeValue::String("charged".into()))
    );
    span_named(&trace, "confirm_inventory");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reservation_whose_answer_is_lost_is_given_back() {
    // Inventory reserves at once and answers 1.5 s later; the order has 300 ms: the call times
    // out after inventory took the units. Before, they stayed taken.
    let (system, _, payment_admin) = start(&[
        (Service::Order, "ORDER_BUDGET_MS", "300"),
        (Service::Inventory, "INVENTORY_ANSWER_DELAY_MS", "1500"),
    ])
    .await;
    let answer = order(
        &system,
        json!({"item": "pen", "quantity": 3, "price": 1.5}),
        None,
    )
    .await;
    assert_eq!(answer.status, 504, "{:?}", answer.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    while level(&system, "pen").await != (100, 0, 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(level(&system, "pen").await, (100, 0, 0));
    assert!(admin(&system, payment_admin, "/charges").await.is_empty());

    let trace_id = answer.trace_id.expect("X-Trace-Id");
    let trace = system
        .store
        .wait_for(&trace_id, Duration::from_secs(10), |spans| {
            spans.iter().any(|s| s.name == "release_inventory")
        })
        .await;
    let settled = span_named(&trace, "settle_reservation");
    assert_eq!(
        settled.attributes.get("inventory.outcome"),
        Some(&AttributeValue::String("reserved".into())),
        "{}",
        render_tree(&trace)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_between_reserve_and_charge_holds_no_unit_past_the_reservation_expiry() {
    let (system, _, payment_admin) = start(&[
        (Service::Order, "ORDER_PANIC_AFTER_RESERVE", "true"),
        (Service::Inventory, "INVENTORY_RESERVATION_TTL_MS", "1000"),
    ])
    .await;
    let answer = order(
        &system,
        json!({"item": "mug", "quantity": 4, "price": 12.34}),
        None,
    )
    .await;
    assert_eq!(answer.status, 500, "{:?}", answer.body);
    assert_eq!(
        level(&system, "mug").await,
        (96, 4, 0),
        "held by the dead order"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while level(&system, "mug").await != (100, 0, 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        level(&system, "mug").await,
        (100, 0, 0),
        "expired and returned"
    );
    assert!(admin(&system, payment_admin, "/charges").await.is_empty());
    // The expiry is a span a person can search for: which reservation, whose units.
    let deadline = Instant::now() + Duration::from_secs(10);
    let expired =
        loop {
            let found =
                system.store.traces().into_iter().flatten().find(|s| {
                    s.name == "expire_reservation" && s.service_name == "inventory-service"
                });
            if found.is_some() || Instant::now() > deadline {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
    let expired = expired.expect("an expire_reservation span");
    assert_eq!(expired.int_attribute("inventory.quantity"), Some(4));
    assert_eq!(expired.str_attribute("inventory.item"), Some("mug"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_a_disconnect_gets_the_same_order_not_a_second_one() {
    // The first request gives up after 300 ms; its order goes on (payment answers in 1 s).
    let (system, inventory_admin, payment_admin) = start(&[
        (Service::Order, "ORDER_BUDGET_MS", "5000"),
        (Service::Payment, "PAYMENT_ANSWER_DELAY_MS", "1000"),
    ])
    .await;
    let url = format!("{}/orders", system.url(Service::Order));
    let body = json!({"item": "book", "quantity": 1, "price": 5});
    let impatient = system
        .client()
        .post(&url)
        .header("idempotency-key", "checkout-77")
        .json(&body)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(impatient.is_err(), "the first client disconnected");
    let retry = order(&system, body.clone(), Some("checkout-77")).await;
    assert_eq!(retry.status, 201, "{:?}", retry.body);
    let again = order(&system, body, Some("checkout-77")).await;
    assert_eq!(again.body["order_id"], retry.body["order_id"]);
    assert_eq!(level(&system, "book").await, (99, 0, 1));
    assert_eq!(admin(&system, payment_admin, "/charges").await.len(), 1);
    assert_eq!(
        admin(&system, inventory_admin, "/reservations").await.len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_of_any_accepted_length_works_end_to_end() {
    let (system, _, payment_admin) = start(&[]).await;
    for length in [1, 195, 200] {
        let key = "k".repeat(length);
        let body = json!({"item": "pen", "quantity": 1, "price": 0.5});
        let first = order(&system, body.clone(), Some(&key)).await;
        assert_eq!(first.status, 201, "{length}: {:?}", first.body);
        let repeat = order(&system, body, Some(&key)).await;
        assert_eq!(repeat.body, first.body, "{length}");
    }
    assert_eq!(admin(&system, payment_admin, "/charges").await.len(), 3);
    let too_long = order(
        &system,
        json!({"item": "pen", "quantity": 1, "price": 0.5}),
        Some(&"k".repeat(201)),
    )
    .await;
    assert_eq!(too_long.status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn money_is_counted_in_cents_and_a_third_decimal_is_refused() {
    let (system, _, payment_admin) = start(&[]).await;
    let answer = order(
        &system,
        json!({"item": "pen", "quantity": 3, "price": 0.1}),
        None,
    )
    .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let charges = admin(&system, payment_admin, "/charges").await;
    assert_eq!(charges[0]["charge"]["amount_cents"], 30);
    let id = answer.body["order_id"].as_str().expect("order id");
    let stored: Value = system
        .client()
        .get(format!("{}/orders/{id}", system.url(Service::Order)))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(stored["amount_cents"], 30);
    assert_eq!(stored["amount"], 0.3);

    let refused = order(
        &system,
        json!({"item": "pen", "quantity": 1, "price": 9.999}),
        None,
    )
    .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.body["error"],
        "Price must have at most two decimals"
    );
    let typed = order(
        &system,
        json!({"item": "pen", "quantity": 1, "price": "9.99"}),
        None,
    )
    .await;
    assert!(matches!(typed.status, 400 | 422), "{}", typed.status);
    assert_eq!(admin(&system, payment_admin, "/charges").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_call_gets_its_own_timeout_even_with_budget_to_spare() {
    // A 10 s budget, a reservation that takes ~3 s: the 2 s call limit applies, not the budget.
    let (system, _, _) = start(&[
        (Service::Order, "ORDER_BUDGET_MS", "10000"),
        (Service::Inventory, "INVENTORY_SLOW_LOOKUP_ALWAYS", "true"),
        (Service::Inventory, "INVENTORY_LOOKUP_SCALE", "10"),
    ])
    .await;
    let answer = order(
        &system,
        json!({"item": "book", "quantity": 1, "price": 1}),
        None,
    )
    .await;
    assert_eq!(answer.status, 504, "{:?}", answer.body);
    // 2 s for the call, then settling the reservation in doubt (1 + 2 + 4 s at most), not 10 s.
    assert!(
        answer.elapsed < Duration::from_millis(9800),
        "{:?}",
        answer.elapsed
    );
    let trace = system
        .store
        .wait_for(
            &answer.trace_id.expect("X-Trace-Id"),
            Duration::from_secs(10),
            |spans| spans.iter().any(|s| s.name == "settle_reservation"),
        )
        .await;
    // The reservation's own call, not the settling after it.
    let reserve = span_named(&trace, "reserve_inventory");
    let call = trace
        .iter()
        .find(|s| s.parent_span_id.as_deref() == Some(reserve.span_id.as_str()) && s.name == "POST")
        .unwrap_or_else(|| panic!("no reserve call in\n{}", render_tree(&trace)));
    let took = call.duration();
    assert!(
        (Duration::from_millis(1900)..Duration::from_millis(2600)).contains(&took),
        "the reserve call took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_every_order_in_flight_finish_before_the_process_exits() {
    // Each charge is answered 1.5 s late; SIGTERM arrives while all of them wait.
    let (mut system, inventory_admin, payment_admin) =
        start(&[(Service::Payment, "PAYMENT_ANSWER_DELAY_MS", "1500")]).await;
    let url = format!("{}/orders", system.url(Service::Order));
    let client = system.client().clone();
    let orders: Vec<_> = (0..6)
        .map(|_| {
            let request = client
                .post(&url)
                .json(&json!({"item": "book", "quantity": 1, "price": 2.5}));
            tokio::spawn(send(request))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let sent = Instant::now();
    system
        .process(Service::Order)
        .signal(nix::sys::signal::Signal::SIGTERM);
    let mut created = 0;
    for answer in orders {
        let answer = answer.await.expect("order task");
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        created += 1;
    }
    let exit = system
        .process_mut(Service::Order)
        .wait_exit(Duration::from_secs(20))
        .await
        .expect("order-service exits");
    assert!(exit.success(), "{exit}");
    println!(
        "6 orders in flight at SIGTERM: {created} created; exited after {:?}",
        sent.elapsed()
    );
    assert_eq!(level(&system, "book").await, (94, 0, 6));
    assert_eq!(admin(&system, payment_admin, "/charges").await.len(), 6);
    let confirmed = admin(&system, inventory_admin, "/reservations")
        .await
        .iter()
        .filter(|r| r["state"] == "confirmed")
        .count();
    assert_eq!(confirmed, 6);
}
