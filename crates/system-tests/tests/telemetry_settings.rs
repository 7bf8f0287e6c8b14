//! The OpenTelemetry variables behave as documented in the running services, including those
//! the SDK reads wrongly or not at all.

use std::time::Duration;

use serde_json::json;
use system_tests::{AttributeValue, Service, System, render_tree};

#[tokio::test(flavor = "multi_thread")]
async fn otel_service_name_wins_over_resource_attributes_which_add_the_rest() {
    let system = System::builder()
        .service_env(Service::Payment, "OTEL_SERVICE_NAME", "billing")
        .service_env(
            Service::Payment,
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=ignored,deployment.environment.name=staging,team=checkout%20crew",
        )
        .service_env(Service::Notification, "SERVICE_NAME", "mailer")
        .start()
        .await;
    let answer = system
        .post_order(json!({"item": "pen", "quantity": 1, "price": 2.0}))
        .await;
    assert_eq!(answer.status, 201);
    let trace = system
        .trace(
            &answer.trace_id.expect("X-Trace-Id"),
            system_tests::ORDER_SPANS,
        )
        .await;
    let charge = trace
        .iter()
        .find(|s| s.name == "POST /charges")
        .expect("payment span");
    assert_eq!(charge.service_name, "billing", "{}", render_tree(&trace));
    let string = |v: &str| Some(AttributeValue::String(v.to_owned()));
    assert_eq!(
        charge.resource.get("deployment.environment.name").cloned(),
        string("staging")
    );
    assert_eq!(
        charge.resource.get("team").cloned(),
        string("checkout crew")
    );
    let notify = trace
        .iter()
        .find(|s| s.name == "POST /notify")
        .expect("notify span");
    assert_eq!(notify.service_name, "mailer");
    assert_eq!(
        notify.resource.get("deployment.environment.name").cloned(),
        string("development")
    );
}

/// The sampler comes from `OTEL_TRACES_SAMPLER` although the SDK ignores that variable once a
/// sampler is set in code; and a parent-based downstream follows the caller's decision.
#[tokio::test(flavor = "multi_thread")]
async fn a_trace_not_sampled_at_the_edge_is_sampled_nowhere() {
    let system = System::builder()
        .service_env(Service::Order, "OTEL_TRACES_SAMPLER", "always_off")
        .start()
        .await;
    for _ in 0..3 {
        let answer = system
            .post_order(json!({"item": "pen", "quantity": 1, "price": 2.0}))
            .await;
        assert_eq!(answer.status, 201);
        assert!(
            answer.trace_id.is_some(),
            "the trace id is still propagated and returned"
        );
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        system.store.span_count(),
        0,
        "{:?}",
        system.store.trace_ids()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_disabled_exports_nothing_but_keeps_propagating_trace_ids_into_logs() {
    let system = System::builder()
        .env("OTEL_SDK_DISABLED", "true")
        .start()
        .await;
    let answer = system
        .post_order(json!({"item": "book", "quantity": 2, "price": 2.0}))
        .await;
    assert_eq!(answer.status, 201);
    let trace_id = answer.trace_id.expect("X-Trace-Id");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(system.store.span_count(), 0);
    // inventory-service logged its reservation under the order's trace id.
    let logged = system
        .process(Service::Inventory)
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .any(|l| l["message"] == "stock reserved" && l["trace_id"] == trace_id.as_str());
    assert!(logged, "{}", system.process(Service::Inventory).stdout());
}

#[tokio::test(flavor = "multi_thread")]
async fn traces_exporter_none_exports_no_span_but_still_the_log_records_under_the_trace_id() {
    let system = System::builder()
        .env("OTEL_TRACES_EXPORTER", "none")
        .start()
        .await;
    let answer = system
        .post_order(json!({"item": "book", "quantity": 2, "price": 2.0}))
        .await;
    assert_eq!(answer.status, 201);
    let trace_id = answer.trace_id.expect("X-Trace-Id");
    // inventory-service's record of its reservation arrives over OTLP, under the order's trace.
    let reserved = |l: &trace_store::StoredLog| {
        l.body == "stock reserved" && l.service_name == "inventory-service"
    };
    let logs = system
        .store
        .wait_for_logs(&trace_id, Duration::from_secs(10), |logs| {
            logs.iter().any(reserved)
        })
        .await;
    assert!(
        logs.iter().any(reserved),
        "no log record of the trace: {logs:?}"
    );
    // The spans of the order end around that record: give an export of them time to arrive.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        system.store.span_count(),
        0,
        "{:?}",
        system.store.trace_ids()
    );
    // And no exemplar names the trace nobody will have.
    let metrics = system.metrics(Service::Order).await;
    assert!(metrics.contains("http_server_request_duration_seconds_count"));
    assert!(!metrics.contains("trace_id"), "an exemplar:\n{metrics}");
}
