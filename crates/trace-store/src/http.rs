//! OTLP/HTTP receiver (protobuf bodies): traces and logs.

use std::future::Future;

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use opentelemetry_proto::tonic::collector::{
    logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse},
    trace::v1::{ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse},
};
use prost::Message;
use tokio::net::TcpListener;

use crate::TraceStore;

/// Largest export request accepted, as the Collector's default.
const MAX_EXPORT_BYTES: usize = 20 * 1024 * 1024;

/// The `POST /v1/traces` and `POST /v1/logs` routes.
pub fn http_router(store: TraceStore) -> Router {
    Router::new()
        .route("/v1/traces", post(export))
        .route("/v1/logs", post(export_logs))
        .layer(DefaultBodyLimit::max(MAX_EXPORT_BYTES))
        .with_state(store)
}

/// Serves OTLP/HTTP on `listener` until `shutdown` completes.
pub async fn serve_http(
    listener: TcpListener,
    store: TraceStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, http_router(store))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A 415 unless the body is declared protobuf.
fn refuse_unless_protobuf(headers: &HeaderMap) -> Option<Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    (!content_type.starts_with("application/x-protobuf")).then(|| {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/x-protobuf",
        )
            .into_response()
    })
}

async fn export_logs(State(store): State<TraceStore>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = refuse_unless_protobuf(&headers) {
        return refused;
    }
    match ExportLogsServiceRequest::decode(body) {
        Ok(request) => {
            store.ingest_logs(request);
            (
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                ExportLogsServiceResponse::default().encode_to_vec(),
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("invalid OTLP protobuf: {e}"),
        )
            .into_response(),
    }
}

async fn export(State(store): State<TraceStore>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = refuse_unless_protobuf(&headers) {
        return refused;
    }
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            let ingested = store.ingest(request);
            let reply = ExportTraceServiceResponse {
                partial_success: partial_success(&ingested),
            };
            (
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                reply.encode_to_vec(),
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("invalid OTLP protobuf: {e}"),
        )
            .into_response(),
    }
}

/// OTLP's answer for an export of which some spans were refused (none: `None`).
pub(crate) fn partial_success(ingested: &crate::Ingested) -> Option<ExportTracePartialSuccess> {
    (ingested.refused > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: i64::try_from(ingested.refused).unwrap_or(i64::MAX),
        error_message: ingested.refusal.clone().unwrap_or_default(),
    })
}
