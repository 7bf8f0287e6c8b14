//! The Tempo-compatible query API, read with the same client that reads a real Tempo.

mod common;

use common::string;
use std::time::Duration;

use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, trace_service_client::TraceServiceClient},
    resource::v1::Resource,
    trace::v1::{ResourceSpans, ScopeSpans, Span},
};
use prost::Message;
use trace_store::{Search, TempoClient, TraceStore, serve_local, start_local};

const SECOND: u64 = 1_000_000_000;

/// A request with `spans` spans of trace `trace` (a chain: each the parent of the next), the
/// root lasting `millis`, sent by `service`.
fn chain(service: &str, trace: u32, spans: u32, millis: u64) -> ExportTraceServiceRequest {
    let start = 1_700_000_000 * SECOND + u64::from(trace) * SECOND;
    let mut trace_id = vec![0u8; 12];
    trace_id.extend(trace.to_be_bytes());
    let span_id = |i: u32| {
        let mut id = trace.to_be_bytes().to_vec();
        id.extend((i + 1).to_be_bytes());
        id
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..spans)
                    .map(|i| Span {
                        trace_id: trace_id.clone(),
                        span_id: span_id(i),
                        parent_span_id: if i == 0 { vec![] } else { span_id(i - 1) },
                        name: format!("step-{i}"),
                        start_time_unix_nano: start,
                        end_time_unix_nano: start + millis * 1_000_000,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn hex_id(trace: u32) -> String {
    format!("{trace:032x}")
}

#[tokio::test]
async fn a_trace_reads_back_with_exactly_the_spans_sent() {
    let local = start_local().await.expect("store");
    let mut grpc = TraceServiceClient::connect(format!("http://{}", local.grpc))
        .await
        .expect("connect");
    grpc.export(chain("order-service", 7, 5, 300))
        .await
        .expect("export");
    let tempo = TempoClient::new(&format!("http://{}", local.api)).expect("client");

    let read = tempo
        .trace(&hex_id(7))
        .await
        .expect("answer")
        .expect("known trace");
    let stored = local.store.trace(&hex_id(7));
    assert_eq!(read.len(), 5);
    let ids = |spans: &[trace_store::StoredSpan]| {
        let mut ids: Vec<_> = spans
            .iter()
            .map(|s| (s.span_id.clone(), s.parent_span_id.clone(), s.name.clone()))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&read), ids(&stored));
    assert_eq!(read, stored, "every field survives Tempo's JSON");

    // The JSON is Tempo's: base64 ids, kind names, times as strings.
    let raw: serde_json::Value =
        reqwest::get(format!("http://{}/api/traces/{}", local.api, hex_id(7)))
            .await
            .expect("answer")
            .json()
            .await
            .expect("JSON");
    let span = &raw["batches"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "AAAAAAAAAAAAAAAAAAAABw==");
    assert!(span["startTimeUnixNano"].is_string(), "{span}");
    assert_eq!(
        raw["batches"][0]["resource"]["attributes"][0]["key"],
        "service.name"
    );
}

#[tokio::test]
async fn malformed_ids_are_400_and_unknown_ones_404() {
    let local = start_local().await.expect("store");
    let api = format!("http://{}", local.api);
    for (id, status) in [
        ("nothex", 400),
        (&*"a".repeat(33), 400),
        (&*hex_id(99), 404),
        ("abc", 404),
    ] {
        let response = reqwest::get(format!("{api}/api/traces/{id}"))
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), status, "{id}");
    }
    let tempo = TempoClient::new(&api).expect("client");
    assert!(tempo.trace(&hex_id(99)).await.expect("answer").is_none());
    assert!(tempo.ready().await);
    assert_eq!(
        reqwest::get(format!("{api}/api/echo"))
            .await
            .expect("echo")
            .text()
            .await
            .expect("text"),
        "echo"
    );
    for bad in [
        "minDuration=fast",
        "limit=0",
        "start=yesterday",
        "tags=novalue",
    ] {
        let response = reqwest::get(format!("{api}/api/search?{bad}"))
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), 400, "{bad}");
    }
}

#[tokio::test]
async fn search_filters_by_tag_duration_and_time() {
    let local = start_local().await.expect("store");
    let mut grpc = TraceServiceClient::connect(format!("http://{}", local.grpc))
        .await
        .expect("connect");
    grpc.export(chain("order-service", 1, 3, 40))
        .await
        .expect("export");
    grpc.export(chain("order-service", 2, 3, 320))
        .await
        .expect("export");
    grpc.export(chain("payment-service", 3, 1, 500))
        .await
        .expect("export");
    let tempo = TempoClient::new(&format!("http://{}", local.api)).expect("client");

    let ids = |hits: Vec<trace_store::tempo::SearchHit>| {
        hits.into_iter().map(|h| h.trace_id).collect::<Vec<_>>()
    };
    let by_service = Search {
        tags: vec![("service.name".into(), "order-service".into())],
        ..Search::default()
    };
    // Most recent first.
    assert_eq!(
        ids(tempo.search(&by_service).await.expect("search")),
        vec![hex_id(2), hex_id(1)]
    );

    let slow_orders = Search {
        min_duration: Some(Duration::from_millis(250)),
        ..by_service.clone()
    };
    let hits = tempo.search(&slow_orders).await.expect("search");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].trace_id, hex_id(2));
    assert_eq!(hits[0].root_service_name, "order-service");
    assert_eq!(hits[0].root_trace_name, "step-0");
    assert_eq!(hits[0].duration_ms, 320);

    let by_name = Search {
        tags: vec![("name".into(), "step-2".into())],
        ..Search::default()
    };
    assert_eq!(
        ids(tempo.search(&by_name).await.expect("search")),
        vec![hex_id(2), hex_id(1)]
    );
    let window = Search {
        start: Some(1_700_000_002),
        end: Some(1_700_000_003),
        limit: Some(1),
        ..Search::default()
    };
    assert_eq!(
        ids(tempo.search(&window).await.expect("search")),
        vec![hex_id(3)]
    );
}

#[tokio::test]
async fn a_full_store_evicts_oldest_traces_and_keeps_serving_through_garbage() {
    let local = serve_local(TraceStore::with_capacity(10_000))
        .await
        .expect("store");
    let mut grpc = TraceServiceClient::connect(format!("http://{}", local.grpc))
        .await
        .expect("connect");
    let http = reqwest::Client::new();
    let otlp_http = format!("http://{}/v1/traces", local.http);
    for trace in 0..100u32 {
        // 1 000 spans per trace, over both transports, with garbage in between.
        let request = chain("load", trace, 1_000, 10);
        if trace % 2 == 0 {
            grpc.export(request).await.expect("gRPC export");
        } else {
            let sent = http
                .post(&otlp_http)
                .header("content-type", "application/x-protobuf")
                .body(request.encode_to_vec())
                .send()
                .await
                .expect("HTTP export");
            assert_eq!(sent.status(), 200);
        }
        if trace % 10 == 0 {
            let garbage = http
                .post(&otlp_http)
                .header("content-type", "application/x-protobuf")
                .body(vec![0x0a, 0xff, 0xff, 0xff, 0x0f])
                .send()
                .await
                .expect("answer");
            assert_eq!(garbage.status(), 400);
        }
    }
    // An export over the 4 MiB gRPC message limit is refused with a gRPC error status
    // (tonic answers OUT_OF_RANGE), not a dropped connection.
    let mut huge = chain("load", 500, 1, 10);
    huge.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(string("blob", &"x".repeat(5 << 20)));
    let refused = grpc.export(huge).await.expect_err("too large");
    assert_eq!(refused.code(), tonic::Code::OutOfRange, "{refused}");

    let stats: trace_store::StoreStats = reqwest::get(format!("http://{}/api/status", local.api))
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert!(stats.spans <= 10_000, "{stats:?}");
    assert_eq!(
        stats.spans + stats.evicted_spans as usize,
        100_000,
        "{stats:?}"
    );
    assert_eq!(stats.evicted_traces, 90);
    // The newest traces are the ones kept.
    let tempo = TempoClient::new(&format!("http://{}", local.api)).expect("client");
    assert!(tempo.trace(&hex_id(0)).await.expect("answer").is_none());
    assert_eq!(
        tempo
            .trace(&hex_id(99))
            .await
            .expect("answer")
            .expect("kept")
            .len(),
        1_000
    );
}
