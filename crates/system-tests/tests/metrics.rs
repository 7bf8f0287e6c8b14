//! Each service's `/metrics` after one order: valid OpenMetrics (checked by the Prometheus
//! project's own parser), the request counted in the duration histogram, and the exemplar
//! pointing at that order's trace.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use serde_json::{Value, json};
use system_tests::{Service, System};

/// The samples of an OpenMetrics text, as parsed by `prometheus_client` (Python).
fn parse_openmetrics(text: &str) -> Vec<Value> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/parse_openmetrics.py"
    );
    let mut parser = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (the OpenMetrics parser needs: pip install prometheus-client)");
    parser
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let output = parser.wait_with_output().expect("parser finishes");
    assert!(
        output.status.success(),
        "not valid OpenMetrics ({}):\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("parser output is JSON")
}

fn matching<'a>(samples: &'a [Value], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Value> {
    samples
        .iter()
        .filter(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_service_counts_the_order_and_links_its_latency_to_the_trace() {
    let system = System::builder().start().await;
    let answer = system
        .post_order(json!({"item": "book", "quantity": 2, "price": 9.99}))
        .await;
    assert_eq!(answer.status, 201);
    let trace_id = answer.trace_id.expect("X-Trace-Id");
    // The notification is sent after the answer: wait for the whole trace.
    system.trace(&trace_id, system_tests::ORDER_SPANS).await;

    let routes = [
        (Service::Order, "POST", "/orders", "201"),
        (Service::Inventory, "GET", "/stock/{item}", "200"),
        (Service::Inventory, "POST", "/stock/{item}/reserve", "200"),
        (Service::Payment, "POST", "/charges", "200"),
        (Service::Notification, "POST", "/notify", "202"),
    ];
    let mut scraped = std::collections::HashMap::new();
    for (service, method, route, status) in routes {
        let samples = scraped.entry(service).or_insert_with(Vec::new);
        if samples.is_empty() {
            let response = system
                .client()
                .get(format!("{}/metrics", system.url(service)))
                .send()
                .await
                .expect("metrics answer");
            assert_eq!(response.status(), 200);
            let content_type = response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .to_owned();
            assert!(
                content_type.starts_with("application/openmetrics-text"),
                "{content_type}"
            );
            *samples = parse_openmetrics(&response.text().await.expect("body"));
        }
        let labels = [
            ("http_request_method", method),
            ("http_route", route),
            ("http_response_status_code", status),
        ];
        let count = matching(
            samples,
            "http_server_request_duration_seconds_count",
            &labels,
        );
        assert_eq!(
            count.len(),
            1,
            "{} {method} {route}: {samples:#?}",
            service.name()
        );
        assert_eq!(count[0]["value"], 1.0);
        let exemplars: Vec<&Value> = matching(
            samples,
            "http_server_request_duration_seconds_bucket",
            &labels,
        )
        .into_iter()
        .filter_map(|s| s["exemplar"].as_object().map(|_| &s["exemplar"]))
        .collect();
        assert!(!exemplars.is_empty(), "no exemplar for {method} {route}");
        assert!(
            exemplars
                .iter()
                .all(|e| e["labels"]["trace_id"] == trace_id.as_str()),
            "{exemplars:?} != {trace_id}"
        );
    }

    // The downstream calls are measured too, and the business counters moved.
    let order = &scraped[&Service::Order];
    let client_calls: f64 = matching(
        order,
        "http_client_request_duration_seconds_count",
        &[("server_address", "127.0.0.1")],
    )
    .iter()
    .filter_map(|s| s["value"].as_f64())
    .sum();
    assert_eq!(client_calls, 5.0, "check, reserve, charge, confirm, notify");
    assert_eq!(
        matching(order, "orders_total", &[("outcome", "created")])[0]["value"],
        1.0
    );
    let inventory = &scraped[&Service::Inventory];
    for operation in ["reserved", "confirmed"] {
        assert_eq!(
            matching(
                inventory,
                "inventory_units_total",
                &[("item", "book"), ("operation", operation)]
            )[0]["value"],
            2.0,
            "{operation}"
        );
    }
    let payment = &scraped[&Service::Payment];
    // Money in cents: exactly 1998, no float error to accumulate.
    let amount = matching(
        payment,
        "payment_amount_charged_cents_total",
        &[("item", "book")],
    )[0]["value"]
        .as_f64()
        .expect("number");
    assert_eq!(amount, 1998.0);

    // /metrics and /health are not themselves counted or traced.
    assert!(
        matching(
            order,
            "http_server_request_duration_seconds_count",
            &[("http_route", "/metrics")]
        )
        .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_sdk_disabled_no_exemplar_points_at_a_trace_that_is_never_exported() {
    let system = System::builder()
        .env("OTEL_SDK_DISABLED", "true")
        .start()
        .await;
    let answer = system
        .post_order(json!({"item": "book", "quantity": 2, "price": 9.99}))
        .await;
    assert_eq!(answer.status, 201);
    let text = system.metrics(Service::Order).await;
    let samples = parse_openmetrics(&text);
    let counted = matching(
        &samples,
        "http_server_request_duration_seconds_count",
        &[("http_route", "/orders")],
    );
    assert_eq!(counted.len(), 1, "the request is still measured");
    assert!(
        samples.iter().all(|s| s["exemplar"].is_null()),
        "an exemplar with the SDK disabled:\n{text}"
    );
}
