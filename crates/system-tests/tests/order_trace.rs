//! One order, one trace across four processes: the tree of SPEC §2, its attributes, and the
//! planted slow_lookup, proven through real OTLP over both transports.

use std::time::Duration;

use serde_json::json;
use system_tests::{AttributeValue, Otlp, SpanKind, SpanStatus, StoredSpan, System, render_tree};

/// SPEC §2, line for line, with the confirmation of the reserved units once they are paid for
/// (issue 10: an order ends with its units confirmed and charged once, or with neither).
const ORDER_TREE: &str = "\
[order-service] POST /orders SERVER
  [order-service] process_order
    [order-service] validate_order
    [order-service] check_inventory
      [order-service] GET CLIENT
        [inventory-service] GET /stock/{item} SERVER
    [order-service] reserve_inventory
      [order-service] POST CLIENT
        [inventory-service] POST /stock/{item}/reserve SERVER
          [inventory-service] reserve_stock
            [inventory-service] slow_lookup
    [order-service] charge_payment
      [order-service] POST CLIENT
        [payment-service] POST /charges SERVER
    [order-service] confirm_inventory
      [order-service] POST CLIENT
        [inventory-service] POST /stock/{item}/confirm SERVER
          [inventory-service] confirm_reservation
    [order-service] send_notification
      [order-service] POST CLIENT
        [notification-service] POST /notify SERVER
";
use system_tests::ORDER_SPANS;

fn span<'a>(spans: &'a [StoredSpan], service: &str, name: &str) -> &'a StoredSpan {
    spans
        .iter()
        .find(|s| s.service_name == service && s.name == name)
        .unwrap_or_else(|| panic!("no span {name} from {service} in:\n{}", render_tree(spans)))
}

/// The spans that start before their parent or end after it, as `span: start, end in parent's
/// start, end` (nanoseconds since the parent's start); a span named `background` may end later.
fn spans_outside_their_parent(spans: &[StoredSpan], background: &str) -> Vec<String> {
    let mut outside = Vec::new();
    for span in spans {
        let Some(parent) = spans
            .iter()
            .find(|p| Some(p.span_id.as_str()) == span.parent_span_id.as_deref())
        else {
            continue;
        };
        let starts_before = span.start_unix_nano < parent.start_unix_nano;
        let ends_after = span.end_unix_nano > parent.end_unix_nano && span.name != background;
        if starts_before || ends_after {
            let since = |t: u64| i128::from(t) - i128::from(parent.start_unix_nano);
            outside.push(format!(
                "[{}] {}: {}..{} ns in [{}] {}: 0..{} ns",
                span.service_name,
                span.name,
                since(span.start_unix_nano),
                since(span.end_unix_nano),
                parent.service_name,
                parent.name,
                since(parent.end_unix_nano),
            ));
        }
    }
    outside
}

fn string(value: &str) -> Option<AttributeValue> {
    Some(AttributeValue::String(value.to_owned()))
}

/// `exporter` is `TELEMETRY_EXPORTER`: this project's exporters or opentelemetry-otlp's.
async fn quantity_two_order_produces_the_spec_trace(otlp: Otlp, exporter: &str) {
    let system = System::builder()
        .otlp(otlp)
        .env("TELEMETRY_EXPORTER", exporter)
        .start()
        .await;
    let answer = system
        .post_order(json!({"item": "book", "quantity": 2, "price": 9.99}))
        .await;
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    assert_eq!(answer.body["status"], "created");
    let order_id = answer.body["order_id"]
        .as_str()
        .expect("order_id")
        .to_owned();
    assert!(uuid::Uuid::parse_str(&order_id).is_ok(), "{order_id}");

    let trace_id = answer.trace_id.expect("X-Trace-Id header");
    let spans = system.trace(&trace_id, ORDER_SPANS).await;
    assert_eq!(render_tree(&spans), ORDER_TREE);
    assert_eq!(spans.len(), ORDER_SPANS);
    assert!(spans.iter().all(|s| s.trace_id == trace_id));

    // Each span lies within its parent's time, so the flame graph's bars say how long each
    // step took: `process_order` ends as its work does, not when the notification it started
    // ends. The notification alone may outlast its parent: it runs after the answer (SPEC §2).
    let outside = spans_outside_their_parent(&spans, "send_notification");
    assert!(outside.is_empty(), "{outside:#?}\n{}", render_tree(&spans));

    // Every span is OK: nothing failed.
    let failed: Vec<_> = spans
        .iter()
        .filter(|s| matches!(s.status, SpanStatus::Error(_)))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");

    let process = span(&spans, "order-service", "process_order");
    assert_eq!(
        process.attributes.get("order.item").cloned(),
        string("book")
    );
    assert_eq!(process.int_attribute("order.quantity"), Some(2));
    assert_eq!(process.str_attribute("order.id"), Some(order_id.as_str()));

    // A number is exported as a number: tracing-opentelemetry 0.34 has no `record_u64`, so a
    // `u64` field reached the backend as the string "1998" (and an argument `#[instrument]`
    // recorded by itself repeated it under a second key).
    let charge = span(&spans, "order-service", "charge_payment");
    assert_eq!(charge.int_attribute("payment.amount_cents"), Some(1998));
    assert!(
        !charge.attributes.contains_key("amount_cents"),
        "{:?}",
        charge.attributes
    );

    let reserve = span(&spans, "inventory-service", "reserve_stock");
    assert_eq!(
        reserve.attributes.get("inventory.item").cloned(),
        string("book")
    );
    assert_eq!(reserve.int_attribute("inventory.quantity"), Some(2));
    let lookup = span(&spans, "inventory-service", "slow_lookup");
    assert_eq!(
        lookup.attributes.get("inventory.demand").cloned(),
        string("normal")
    );

    // Server spans: HTTP semantic conventions, integer status code.
    let server = span(&spans, "order-service", "POST /orders");
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(server.str_attribute("http.request.method"), Some("POST"));
    assert_eq!(server.str_attribute("http.route"), Some("/orders"));
    assert_eq!(server.str_attribute("url.path"), Some("/orders"));
    assert_eq!(server.int_attribute("http.response.status_code"), Some(201));
    let reserve_server = span(&spans, "inventory-service", "POST /stock/{item}/reserve");
    assert_eq!(
        reserve_server.str_attribute("http.route"),
        Some("/stock/{item}/reserve")
    );
    assert_eq!(
        reserve_server.str_attribute("url.path"),
        Some("/stock/book/reserve")
    );

    // Client spans: method, full URL, server address and port, integer status code; each is
    // the parent of the SERVER span in the other process (what Tempo's service graph pairs).
    for client in spans.iter().filter(|s| s.kind == SpanKind::Client) {
        let url = client.str_attribute("url.full").expect("url.full");
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        assert_eq!(client.str_attribute("server.address"), Some("127.0.0.1"));
        assert!(
            client.int_attribute("server.port").is_some_and(|p| p > 0),
            "{client:?}"
        );
        assert_eq!(
            client.str_attribute("http.request.method"),
            Some(client.name.as_str())
        );
        let status = client
            .int_attribute("http.response.status_code")
            .expect("status code");
        assert!((200..300).contains(&status), "{status}");
        let server_child = spans
            .iter()
            .find(|s| s.parent_span_id.as_deref() == Some(client.span_id.as_str()))
            .expect("a SERVER child");
        assert_eq!(server_child.kind, SpanKind::Server);
        assert_ne!(server_child.service_name, client.service_name);
    }

    // Resource attributes of SPEC §2 on every service.
    for service in [
        "order-service",
        "inventory-service",
        "payment-service",
        "notification-service",
    ] {
        let resource = &spans
            .iter()
            .find(|s| s.service_name == service)
            .expect(service)
            .resource;
        for key in [
            "service.name",
            "service.version",
            "service.instance.id",
            "deployment.environment.name",
            "telemetry.sdk.name",
            "telemetry.sdk.language",
            "telemetry.sdk.version",
        ] {
            assert!(
                resource.contains_key(key),
                "{service} lacks {key}: {resource:?}"
            );
        }
        assert_eq!(
            resource.get("service.version").cloned(),
            string(env!("CARGO_PKG_VERSION"))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quantity_two_order_is_one_trace_across_four_services_over_otlp_grpc() {
    quantity_two_order_produces_the_spec_trace(Otlp::Grpc, "direct").await;
}

/// Also catches the exporter whose HTTP client needs a reactor on the batch processor's own
/// thread: with it, nothing at all arrives over HTTP.
#[tokio::test(flavor = "multi_thread")]
async fn quantity_two_order_is_one_trace_across_four_services_over_otlp_http_protobuf() {
    quantity_two_order_produces_the_spec_trace(Otlp::HttpProtobuf, "direct").await;
}

/// The same tree, attributes and resource through opentelemetry-otlp's exporters, over both
/// transports: what the project's own exporters replace for cost arrives the same way.
#[tokio::test(flavor = "multi_thread")]
async fn quantity_two_order_is_the_same_trace_through_opentelemetry_otlp_s_exporters() {
    quantity_two_order_produces_the_spec_trace(Otlp::Grpc, "opentelemetry-otlp").await;
    quantity_two_order_produces_the_spec_trace(Otlp::HttpProtobuf, "opentelemetry-otlp").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quantity_eight_order_is_dominated_by_slow_lookup() {
    let system = System::builder().start().await;

    let slow = system
        .post_order(json!({"item": "book", "quantity": 8, "price": 9.99}))
        .await;
    assert_eq!(slow.status, 201, "{:?}", slow.body);
    let trace_id = slow.trace_id.expect("X-Trace-Id");
    let spans = system.trace(&trace_id, ORDER_SPANS).await;
    assert_eq!(render_tree(&spans), ORDER_TREE);
    let outside = spans_outside_their_parent(&spans, "send_notification");
    assert!(outside.is_empty(), "{outside:#?}");
    let root = span(&spans, "order-service", "POST /orders");
    let lookup = span(&spans, "inventory-service", "slow_lookup");
    assert_eq!(
        lookup.attributes.get("inventory.demand").cloned(),
        string("high")
    );
    assert!(
        lookup.duration() >= Duration::from_millis(270),
        "{:?}",
        lookup.duration()
    );
    let share = lookup.duration().as_secs_f64() / root.duration().as_secs_f64();
    assert!(
        share >= 0.70,
        "slow_lookup is {:.0}% of the request",
        share * 100.0
    );
    // No other span of the trace, bar its ancestors, is as wide.
    let ancestors = [
        "POST /orders",
        "process_order",
        "reserve_inventory",
        "POST",
        "POST /stock/{item}/reserve",
        "reserve_stock",
    ];
    let widest_other = spans
        .iter()
        .filter(|s| s.span_id != lookup.span_id && !ancestors.contains(&s.name.as_str()))
        .map(StoredSpan::duration)
        .max()
        .unwrap_or_default();
    assert!(widest_other < lookup.duration(), "{widest_other:?}");

    let fast = system
        .post_order(json!({"item": "book", "quantity": 2, "price": 9.99}))
        .await;
    assert_eq!(fast.status, 201);
    let fast_trace = fast.trace_id.expect("X-Trace-Id");
    assert_ne!(fast_trace, trace_id);
    let spans = system.trace(&fast_trace, ORDER_SPANS).await;
    let lookup = span(&spans, "inventory-service", "slow_lookup");
    assert!(
        lookup.duration() < Duration::from_millis(60),
        "{:?}",
        lookup.duration()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn caller_traceparent_is_continued_and_a_malformed_one_starts_a_fresh_trace() {
    let system = System::builder().start().await;
    let url = format!("{}/orders", system.url(system_tests::Service::Order));
    let body = json!({"item": "pen", "quantity": 1, "price": 1.5});

    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let continued = system_tests::send(
        system
            .client()
            .post(&url)
            .header(
                "traceparent",
                format!("00-{caller_trace}-00f067aa0ba902b7-01"),
            )
            .json(&body),
    )
    .await;
    assert_eq!(continued.status, 201);
    assert_eq!(continued.trace_id.as_deref(), Some(caller_trace));
    let spans = system.trace(caller_trace, ORDER_SPANS).await;
    let root = span(&spans, "order-service", "POST /orders");
    assert_eq!(root.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));

    for malformed in [
        "garbage",
        "00-zzzz-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    ] {
        let fresh = system_tests::send(
            system
                .client()
                .post(&url)
                .header("traceparent", malformed)
                .json(&body),
        )
        .await;
        assert_eq!(fresh.status, 201, "{malformed}");
        let trace_id = fresh.trace_id.expect("X-Trace-Id");
        assert_eq!(trace_id.len(), 32);
        assert_ne!(trace_id, "0".repeat(32));
        let spans = system.trace(&trace_id, ORDER_SPANS).await;
        assert_eq!(render_tree(&spans), ORDER_TREE, "{malformed}");
        assert_eq!(
            span(&spans, "order-service", "POST /orders").parent_span_id,
            None
        );
    }
}

/// An `EnvFilter` on the whole subscriber would disable the INFO server span under
/// `RUST_LOG=warn`, and `set_parent` on a disabled span silently does nothing.
#[tokio::test(flavor = "multi_thread")]
async fn quiet_log_level_does_not_break_traces_and_logs_carry_trace_ids() {
    let system = System::builder().env("RUST_LOG", "warn").start().await;
    let answer = system
        .post_order(json!({"item": "mug", "quantity": 1, "price": 3.0}))
        .await;
    assert_eq!(answer.status, 201);
    let trace_id = answer.trace_id.expect("X-Trace-Id");
    let spans = system.trace(&trace_id, ORDER_SPANS).await;
    assert_eq!(render_tree(&spans), ORDER_TREE);
    let info_lines = system
        .process(system_tests::Service::Order)
        .stdout()
        .lines()
        .filter(|l| l.contains("\"INFO\""))
        .count();
    assert_eq!(info_lines, 0, "RUST_LOG=warn still filters logs");

    // At the default level, each log line is one JSON object with the ids of its span.
    let system = System::builder().start().await;
    let answer = system
        .post_order(json!({"item": "mug", "quantity": 1, "price": 3.0}))
        .await;
    let trace_id = answer.trace_id.expect("X-Trace-Id");
    let spans = system.trace(&trace_id, ORDER_SPANS).await;
    // The span each line is written in: "order created" in process_order, "stock reserved" in
    // reserve_stock (the log layer sees no spans; the ids come from the OpenTelemetry layer).
    for (service, message, span_name) in [
        (
            system_tests::Service::Order,
            "order created",
            "process_order",
        ),
        (
            system_tests::Service::Inventory,
            "stock reserved",
            "reserve_stock",
        ),
    ] {
        let logs = system.process(service).stdout();
        let line = logs
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["trace_id"] == trace_id.as_str() && l["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line of trace {trace_id}:\n{logs}"));
        for key in ["timestamp", "level", "service", "message", "span_id"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
        assert_eq!(line["service"], service.name());
        let span = spans
            .iter()
            .find(|s| s.name == span_name && s.service_name == service.name())
            .unwrap_or_else(|| panic!("no {span_name} span"));
        assert_eq!(line["span_id"], span.span_id.as_str(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn health_checks_answer_without_producing_spans() {
    let system = System::builder().start().await;
    let health = format!("{}/health", system.url(system_tests::Service::Order));
    for _ in 0..5 {
        let response = system.client().get(&health).send().await.expect("health");
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("x-trace-id").is_none());
    }
    // Give a batch time to be exported, then check that nothing but start-up noise arrived.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let names: Vec<String> = system
        .store
        .trace_ids()
        .iter()
        .flat_map(|t| system.store.trace(t))
        .map(|s| s.name)
        .collect();
    assert!(names.iter().all(|n| !n.contains("health")), "{names:?}");
    assert!(names.is_empty(), "spans from health checks: {names:?}");
}
