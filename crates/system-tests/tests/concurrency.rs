//! Stock under contention: a reservation is atomic, so concurrent orders never oversell.

use futures_util::future::join_all;
use serde_json::json;
use system_tests::{Service, System};

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_concurrent_orders_for_one_hundred_mugs_sell_exactly_one_hundred() {
    let system = System::builder()
        .service_env(Service::Inventory, "INVENTORY_STOCK", "mug=100,book=10")
        .start()
        .await;
    let orders =
        (0..200).map(|_| system.post_order(json!({"item": "mug", "quantity": 1, "price": 4.5})));
    let answers = join_all(orders).await;

    let created = answers.iter().filter(|a| a.status == 201).count();
    let refused: Vec<_> = answers.iter().filter(|a| a.status == 409).collect();
    assert_eq!(
        created,
        100,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(refused.len(), 100);
    assert!(
        refused
            .iter()
            .all(|a| a.body["error"] == "Insufficient stock")
    );

    assert_eq!(system.available("mug").await, 0);

    // Inventory's own log agrees: 100 reservations, and no line ever shows a count below zero
    // (the counter is unsigned; an oversell would have been a refused reservation instead).
    let logs = system.process(Service::Inventory).stdout();
    let reserved = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "stock reserved" && l["item"] == "mug")
        .count();
    assert_eq!(reserved, 100);

    // Every order id is distinct and can be read back.
    let mut ids: Vec<&str> = answers
        .iter()
        .filter_map(|a| a.body["order_id"].as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100);
    let order: serde_json::Value = system
        .client()
        .get(format!("{}/orders/{}", system.url(Service::Order), ids[0]))
        .send()
        .await
        .expect("order-service answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(order["item"], "mug");
    assert_eq!(order["amount"], 4.5);
}
