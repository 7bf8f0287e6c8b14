//! Server side: the SERVER span of every request, continued from the caller's headers.

use axum::{
    Router,
    extract::{MatchedPath, Request},
    http::HeaderValue,
    middleware::Next,
    response::Response,
};
use axum_tracing_opentelemetry::middleware::OtelAxumLayer;
use opentelemetry::trace::Status;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The response header that carries the trace id, so a caller (or a trace-based test) can find
/// the trace its request produced.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

/// Paths that are polled by machines every few seconds and would drown real traces.
const UNTRACED_PATHS: [&str; 2] = ["/health", "/metrics"];

/// Wraps every route of `router` in a SERVER span and adds `X-Trace-Id` to each response.
///
/// Call it after the last `.route(...)`: `MatchedPath`, which gives the span its name
/// (`POST /stock/{item}/reserve`) and `http.route`, exists only for routes the layer wraps.
/// The span comes from axum-tracing-opentelemetry: it extracts W3C `traceparent`/`tracestate`/
/// `baggage` through the global propagator (a malformed header simply starts a new trace),
/// records the HTTP semantic-convention attributes, and sets status ERROR on 5xx only.
pub fn traced<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .layer(axum::middleware::from_fn(annotate_response))
        .layer(OtelAxumLayer::default().filter(is_traced))
}

fn is_traced(path: &str) -> bool {
    !UNTRACED_PATHS.contains(&path)
}

/// Runs inside the SERVER span, so the current trace id is that of the request: it adds the
/// `X-Trace-Id` header, records the request in `http_server_request_duration_seconds` with the
/// trace as exemplar, and gives a 5xx span its description (the layer outside only records
/// `ERROR`).
async fn annotate_response(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    let status = response.status();
    crate::metrics::record_server_request(&method, &route, status.as_u16(), started.elapsed());
    if status.is_server_error() {
        Span::current().set_status(Status::error(format!("HTTP {status}")));
    }
    if let Some(value) = current_trace_id().and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert(TRACE_ID_HEADER, value);
    }
    response
}

/// The hex trace id of the current span, if it belongs to a trace.
pub fn current_trace_id() -> Option<String> {
    tracing_opentelemetry_instrumentation_sdk::find_current_trace_id()
}
