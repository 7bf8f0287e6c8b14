//! The store receives OTLP over gRPC and HTTP/protobuf (requests built with opentelemetry-proto's
//! types), refuses garbage with the protocol's error, and keeps serving.

mod common;

use common::string;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, trace_service_client::TraceServiceClient},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span::SpanKind as ProtoKind, status},
};
use prost::Message;
use trace_store::{AttributeValue, SpanKind, SpanStatus, TraceStore};

async fn start() -> (TraceStore, String, String) {
    let local = trace_store::start_local().await.expect("store starts");
    let grpc_url = format!("http://{}", local.grpc);
    let http_url = format!("http://{}", local.http);
    (local.store, grpc_url, http_url)
}

/// `post` (a body and its content type to one receiver): bytes that are no protobuf get 400,
/// a JSON body 415.
async fn refuses_garbage_and_json<F, Fut>(post: &F)
where
    F: Fn(Vec<u8>, &'static str) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let garbage = post(vec![0xff; 64], "application/x-protobuf")
        .await
        .expect("answer");
    assert_eq!(garbage.status(), 400);
    let wrong_type = post(b"{}".to_vec(), "application/json")
        .await
        .expect("answer");
    assert_eq!(wrong_type.status(), 415);
}

fn request(trace: u8, spans: &[(u8, Option<u8>, &str)]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string("service.name", "svc")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: spans
                    .iter()
                    .map(|(id, parent, name)| Span {
                        trace_id: vec![trace; 16],
                        span_id: vec![*id; 8],
                        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
                        name: (*name).into(),
                        kind: ProtoKind::Server as i32,
                        start_time_unix_nano: 1_000,
                        end_time_unix_nano: 5_000,
                        attributes: vec![string("http.route", "/orders")],
                        status: Some(Status {
                            code: status::StatusCode::Error as i32,
                            message: "boom".into(),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn spans_arrive_over_both_transports_flattened() {
    let (store, grpc_url, http_url) = start().await;
    let mut grpc = TraceServiceClient::connect(grpc_url)
        .await
        .expect("connect");
    grpc.export(request(1, &[(1, None, "root"), (2, Some(1), "child")]))
        .await
        .expect("gRPC export");

    let body = request(1, &[(3, Some(2), "grandchild")]).encode_to_vec();
    let response = reqwest::Client::new()
        .post(format!("{http_url}/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .expect("HTTP export");
    assert_eq!(response.status(), 200);

    let trace = store.trace(&"01".repeat(16));
    assert_eq!(trace.len(), 3);
    let child = trace.iter().find(|s| s.name == "child").expect("child");
    assert_eq!(child.span_id, "02".repeat(8));
    assert_eq!(
        child.parent_span_id.as_deref(),
        Some("01".repeat(8).as_str())
    );
    assert_eq!(child.service_name, "svc");
    assert_eq!(child.kind, SpanKind::Server);
    assert_eq!(child.status, SpanStatus::Error("boom".into()));
    assert_eq!(
        child.attributes.get("http.route"),
        Some(&AttributeValue::String("/orders".into()))
    );
    assert_eq!(child.duration().as_nanos(), 4_000);
    assert_eq!(
        trace
            .iter()
            .find(|s| s.name == "root")
            .expect("root")
            .parent_span_id,
        None
    );
}

#[tokio::test]
async fn garbage_is_refused_and_the_store_keeps_serving() {
    let (store, _, http_url) = start().await;
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>, content_type: &'static str| {
        http.post(format!("{http_url}/v1/traces"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    refuses_garbage_and_json(&post).await;
    let good = post(
        request(2, &[(1, None, "after")]).encode_to_vec(),
        "application/x-protobuf",
    )
    .await
    .expect("answer");
    assert_eq!(good.status(), 200);
    assert_eq!(store.span_count(), 1);
}

#[tokio::test]
async fn a_span_with_an_attribute_key_twice_is_refused_and_counted() {
    use opentelemetry_proto::tonic::{
        collector::trace::v1::ExportTraceServiceRequest,
        common::v1::{AnyValue, KeyValue, any_value},
        trace::v1::{ResourceSpans, ScopeSpans, Span},
    };
    let kv = |key: &str, value: any_value::Value| KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    };
    let span = |name: &str, attributes: Vec<KeyValue>| Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        attributes,
        ..Span::default()
    };
    let store = trace_store::TraceStore::new();
    let ingested = store.ingest(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    span(
                        "GET",
                        vec![
                            kv("server.port", any_value::Value::StringValue("8002".into())),
                            kv("server.port", any_value::Value::IntValue(8002)),
                        ],
                    ),
                    span("fine", vec![kv("a", any_value::Value::IntValue(1))]),
                ],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    });
    assert_eq!((ingested.stored, ingested.refused), (1, 1));
    assert!(
        store
            .last_refusal()
            .is_some_and(|r| r.contains("server.port")),
        "{:?}",
        store.last_refusal()
    );
    assert_eq!(store.stats().refused_spans, 1);
}

#[tokio::test]
async fn garbage_log_exports_and_bad_log_queries_are_refused_and_the_store_keeps_serving() {
    use opentelemetry_proto::tonic::{
        collector::logs::v1::ExportLogsServiceRequest,
        logs::v1::{LogRecord, ResourceLogs, ScopeLogs},
    };
    let local = trace_store::start_local().await.expect("store starts");
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>, content_type: &'static str| {
        http.post(format!("http://{}/v1/logs", local.http))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    refuses_garbage_and_json(&post).await;
    let record = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                        value: Some(
                            opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                                "after".into(),
                            ),
                        ),
                    }),
                    trace_id: vec![5; 16],
                    span_id: vec![6; 8],
                    ..LogRecord::default()
                }],
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    };
    let good = post(record.encode_to_vec(), "application/x-protobuf")
        .await
        .expect("answer");
    assert_eq!(good.status(), 200);
    assert_eq!(local.store.log_count(), 1);

    let api = format!("http://{}", local.api);
    let get = |path: String| http.get(format!("{api}{path}")).send();
    assert_eq!(
        get("/api/logs/not-hex".into())
            .await
            .expect("answer")
            .status(),
        400
    );
    let unsupported = get("/loki/api/v1/query_range?query=%7Bjob%3D%22x%22%7D".into())
        .await
        .expect("answer");
    assert_eq!(unsupported.status(), 400);
    assert!(
        unsupported
            .text()
            .await
            .expect("body")
            .contains("unsupported query")
    );
    let found: serde_json::Value = get(format!("/api/logs/{}", "05".repeat(16)))
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(found["logs"][0]["body"], "after");
    assert_eq!(found["logs"][0]["service_name"], "unknown_service");
}
