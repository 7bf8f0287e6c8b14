//! Trace-based tests (seed 002, "What trace-based tests catch"): each sends an order and
//! asserts on the trace it produced, read through Tempo's HTTP API.
//!
//! By default they run against the embedded trace-store and the four binaries. Pointed at a
//! running stack they test it instead, unchanged:
//!
//! ```sh
//! TEMPO_URL=http://localhost:3200 ORDER_SERVICE_URL=http://localhost:8001 \
//!   cargo test -p system-tests --test trace_based
//! ```

use std::time::Duration;

use serde_json::json;
use system_tests::{SpanKind, SpanStatus, StoredSpan, System};
use trace_store::TempoClient;

/// Spans of the order flow (SPEC §2).
use system_tests::ORDER_SPANS;

/// Where the orders go and where the traces are read.
struct Target {
    order_url: String,
    tempo: TempoClient,
    /// How long a backend may take to make a trace queryable (the Collector's tail sampling
    /// waits 10 s before deciding).
    wait: Duration,
    /// Keeps the embedded system alive for the test's duration.
    _system: Option<System>,
}

impl Target {
    async fn new() -> Self {
        match std::env::var("TEMPO_URL") {
            Ok(tempo) => Self {
                order_url: std::env::var("ORDER_SERVICE_URL")
                    .unwrap_or_else(|_| "http://localhost:8001".into()),
                tempo: TempoClient::new(&tempo).expect("TEMPO_URL is an http URL"),
                wait: Duration::from_secs(40),
                _system: None,
            },
            Err(_) => {
                let system = System::builder().start().await;
                Self {
                    order_url: system.url(system_tests::Service::Order),
                    tempo: TempoClient::new(&system.api).expect("store API"),
                    wait: Duration::from_secs(10),
                    _system: Some(system),
                }
            }
        }
    }

    /// Sends an order of `quantity` books and returns its trace once complete.
    async fn order_trace(&self, quantity: i64) -> Vec<StoredSpan> {
        let response = reqwest::Client::new()
            .post(format!("{}/orders", self.order_url))
            .json(&json!({"item": "book", "quantity": quantity, "price": 9.99}))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("order-service answers");
        assert_eq!(response.status().as_u16(), 201);
        let trace_id = response
            .headers()
            .get("x-trace-id")
            .and_then(|v| v.to_str().ok())
            .expect("X-Trace-Id header")
            .to_owned();
        self.tempo
            .wait_for_trace(&trace_id, ORDER_SPANS, self.wait)
            .await
            .expect("the trace API answers")
    }
}

fn span<'a>(spans: &'a [StoredSpan], name: &str) -> &'a StoredSpan {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        panic!(
            "no span {name} among {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    })
}

/// Catches a missing service call: a regression in integration.
#[tokio::test(flavor = "multi_thread")]
async fn every_service_is_present_in_the_order_trace() {
    let spans = Target::new().await.order_trace(2).await;
    for service in [
        "order-service",
        "inventory-service",
        "payment-service",
        "notification-service",
    ] {
        assert!(
            spans.iter().any(|s| s.service_name == service),
            "{service} missing"
        );
    }
}

/// Catches race conditions and wrong orchestration: stock is checked, then reserved, then paid
/// for, then confirmed, then notified, each step after the previous one ended.
#[tokio::test(flavor = "multi_thread")]
async fn order_steps_happen_in_order() {
    let spans = Target::new().await.order_trace(2).await;
    let steps = [
        "validate_order",
        "check_inventory",
        "reserve_inventory",
        "charge_payment",
        "confirm_inventory",
        "send_notification",
    ];
    for pair in steps.windows(2) {
        let (before, after) = (span(&spans, pair[0]), span(&spans, pair[1]));
        assert!(
            before.end_unix_nano <= after.start_unix_nano,
            "{} ended after {} started",
            pair[0],
            pair[1]
        );
    }
}

/// Catches an end-to-end performance regression.
#[tokio::test(flavor = "multi_thread")]
async fn order_trace_stays_within_its_latency_budget() {
    let spans = Target::new().await.order_trace(2).await;
    let root = span(&spans, "POST /orders");
    assert!(
        root.duration() < Duration::from_secs(3),
        "{:?}",
        root.duration()
    );
    // The planted defect shows as the slow lookup's share, not as a surprise elsewhere.
    let lookup = span(&spans, "slow_lookup");
    assert!(
        lookup.duration() < Duration::from_millis(60),
        "{:?}",
        lookup.duration()
    );
}

/// Catches swallowed errors and silent failures.
#[tokio::test(flavor = "multi_thread")]
async fn order_trace_has_no_error_spans() {
    let spans = Target::new().await.order_trace(2).await;
    let errors: Vec<_> = spans
        .iter()
        .filter(|s| matches!(s.status, SpanStatus::Error(_)))
        .map(|s| (&s.service_name, &s.name, &s.status))
        .collect();
    assert!(errors.is_empty(), "unexpected errors: {errors:?}");
}

/// Catches missing context propagation: the attributes a reader filters on are there, and each
/// SERVER span of a callee is the child of its caller's CLIENT span.
#[tokio::test(flavor = "multi_thread")]
async fn order_trace_carries_the_expected_attributes_and_links() {
    let spans = Target::new().await.order_trace(8).await;
    let process = span(&spans, "process_order");
    assert_eq!(process.str_attribute("order.item"), Some("book"));
    assert_eq!(process.int_attribute("order.quantity"), Some(8));
    assert!(
        process
            .str_attribute("order.id")
            .is_some_and(|id| id.len() == 36)
    );
    assert_eq!(
        span(&spans, "reserve_stock").int_attribute("inventory.quantity"),
        Some(8)
    );
    assert_eq!(
        span(&spans, "slow_lookup").str_attribute("inventory.demand"),
        Some("high")
    );
    for server in spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server && s.service_name != "order-service")
    {
        let parent = spans
            .iter()
            .find(|s| Some(&s.span_id) == server.parent_span_id.as_ref())
            .unwrap_or_else(|| panic!("{} has no parent in the trace", server.name));
        assert_eq!(parent.kind, SpanKind::Client, "{}", server.name);
        assert_eq!(parent.service_name, "order-service");
        assert!(
            server.str_attribute("http.route").is_some(),
            "{}",
            server.name
        );
    }
    assert!(
        spans
            .iter()
            .all(|s| s.resource.contains_key("service.version"))
    );
}

/// Catches unexpected calls: N+1 queries, extra retries.
#[tokio::test(flavor = "multi_thread")]
async fn order_trace_has_exactly_the_expected_span_count() {
    let spans = Target::new().await.order_trace(2).await;
    assert_eq!(spans.len(), ORDER_SPANS);
    let clients = spans.iter().filter(|s| s.kind == SpanKind::Client).count();
    assert_eq!(
        clients, 5,
        "one call to each of check, reserve, charge, confirm and notify"
    );
}
