//! The SERVER span is an OpenTelemetry span held in the context attached around its handler
//! (`context`), so `opentelemetry::Context::current().span()` in a handler is that span, and what
//! the handler adds to it is exported with it. Holding the span apart and attaching only its ids,
//! as the CLIENT span is held, would drop those additions without a word: this test says so.
//! (One test per file: telemetry installs a process-wide subscriber.)

mod common;

use opentelemetry::{
    Context, KeyValue,
    trace::{Status, TraceContextExt as _},
};
use trace_store::{AttributeValue, SpanKind, SpanStatus};

#[tokio::test(flavor = "multi_thread")]
async fn what_a_handler_adds_to_the_current_context_s_span_lands_on_its_server_span() {
    let (store, config) = common::store_and_config("grpc").await;
    let guard = telemetry::init_with(&config).expect("telemetry starts");
    let app = telemetry::traced(axum::Router::new().route(
        "/work",
        axum::routing::get(|| async {
            let context = Context::current();
            let span = context.span();
            span.set_attribute(KeyValue::new("app.tenant", "acme"));
            span.add_event("cache.miss", vec![KeyValue::new("cache.key", "k1")]);
            span.set_status(Status::error("upstream was slow"));
            "done"
        }),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/work", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let answer = reqwest::Client::new()
        .get(&url)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .expect("the handler answers");
    assert_eq!(answer.status(), 200);
    let trace_id = answer
        .headers()
        .get(telemetry::TRACE_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .expect("X-Trace-Id")
        .to_owned();
    server.abort();
    guard.shutdown().await;

    let spans = store.trace(&trace_id);
    let [span] = spans.as_slice() else {
        panic!("one span expected: {spans:#?}");
    };
    assert_eq!(
        (span.kind, span.name.as_str()),
        (SpanKind::Server, "GET /work")
    );
    assert_eq!(
        span.attributes.get("app.tenant"),
        Some(&AttributeValue::String("acme".into()))
    );
    let event = span
        .events
        .iter()
        .find(|e| e.name == "cache.miss")
        .unwrap_or_else(|| panic!("no cache.miss event: {:?}", span.events));
    assert_eq!(
        event.attributes.get("cache.key"),
        Some(&AttributeValue::String("k1".into()))
    );
    assert!(
        matches!(&span.status, SpanStatus::Error(description) if description == "upstream was slow"),
        "{:?}",
        span.status
    );
}
