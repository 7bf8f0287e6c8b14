//! The embedded backend's Tempo API gives back exactly what the services sent, and its search
//! finds traces by service and duration.

use std::time::Duration;

use serde_json::json;
use system_tests::System;
use trace_store::{Search, TempoClient};

#[tokio::test(flavor = "multi_thread")]
async fn the_api_returns_exactly_the_spans_the_services_sent_and_search_finds_them() {
    let system = System::builder().start().await;
    let tempo = TempoClient::new(&system.api).expect("API URL");

    let fast = system
        .post_order(json!({"item": "book", "quantity": 2, "price": 9.99}))
        .await;
    let slow = system
        .post_order(json!({"item": "book", "quantity": 8, "price": 9.99}))
        .await;
    let fast_id = fast.trace_id.expect("X-Trace-Id");
    let slow_id = slow.trace_id.expect("X-Trace-Id");
    system.trace(&fast_id, system_tests::ORDER_SPANS).await;
    system.trace(&slow_id, system_tests::ORDER_SPANS).await;

    for id in [&fast_id, &slow_id] {
        let received = system.store.trace(id);
        let served = tempo
            .trace(id)
            .await
            .expect("API answers")
            .expect("trace known");
        assert_eq!(served.len(), system_tests::ORDER_SPANS);
        let shape = |spans: &[trace_store::StoredSpan]| {
            let mut shape: Vec<_> = spans
                .iter()
                .map(|s| {
                    (
                        s.span_id.clone(),
                        s.parent_span_id.clone(),
                        s.trace_id.clone(),
                    )
                })
                .collect();
            shape.sort();
            shape
        };
        assert_eq!(shape(&served), shape(&received));
        let mut served = served;
        let mut received = received;
        served.sort_by(|a, b| a.span_id.cmp(&b.span_id));
        received.sort_by(|a, b| a.span_id.cmp(&b.span_id));
        assert_eq!(
            served, received,
            "a field changed on the way through Tempo's JSON"
        );
    }

    let search = |tags: &[(&str, &str)], min: Option<u64>| Search {
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        min_duration: min.map(Duration::from_millis),
        ..Search::default()
    };
    let ids = |hits: Vec<trace_store::tempo::SearchHit>| {
        let mut ids: Vec<String> = hits.into_iter().map(|h| h.trace_id).collect();
        ids.sort();
        ids
    };
    let mut both = vec![fast_id.clone(), slow_id.clone()];
    both.sort();
    let by_order = tempo
        .search(&search(&[("service.name", "order-service")], None))
        .await
        .expect("search");
    assert_eq!(ids(by_order), both);
    let by_payment = tempo
        .search(&search(&[("service.name", "payment-service")], None))
        .await
        .expect("search");
    assert_eq!(ids(by_payment), both);
    let slow_only = tempo
        .search(&search(&[("service.name", "order-service")], Some(250)))
        .await
        .expect("search");
    assert_eq!(ids(slow_only.clone()), vec![slow_id.clone()]);
    assert_eq!(slow_only[0].root_trace_name, "POST /orders");
    assert!(slow_only[0].duration_ms >= 270, "{:?}", slow_only[0]);
    let high_demand = tempo
        .search(&search(&[("inventory.demand", "high")], None))
        .await
        .expect("search");
    assert_eq!(ids(high_demand), vec![slow_id]);
    let nobody = tempo
        .search(&search(&[("service.name", "no-such-service")], None))
        .await
        .expect("search");
    assert!(nobody.is_empty());
}
