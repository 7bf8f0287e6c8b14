//! Server side: the SERVER span of every request, continued from the caller's headers.

use std::time::Instant;

use axum::{
    Router,
    extract::{MatchedPath, Request},
    http::{HeaderValue, header},
    middleware::Next,
    response::Response,
};
use opentelemetry::{
    KeyValue,
    context::FutureExt as _,
    trace::{SpanKind, Status, TraceContextExt, Tracer as _},
};

/// The response header that carries the trace id, so a caller (or a trace-based test) can find
/// the trace its request produced.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

/// Paths that are polled by machines every few seconds and would drown real traces.
const UNTRACED_PATHS: [&str; 2] = ["/health", "/metrics"];

/// Wraps every route of `router` in a SERVER span and adds `X-Trace-Id` to each response.
///
/// Call it after the last `.route(...)`: `MatchedPath`, which gives the span its name
/// (`POST /stock/{item}/reserve`) and `http.route`, exists only for routes the layer wraps.
/// The span continues the caller's W3C `traceparent`/`tracestate`/`baggage`, read through the
/// global propagator (a malformed header simply starts a new trace), carries the HTTP
/// semantic-convention attributes, and is ERROR (with `error.type`) on a 5xx only.
pub fn traced<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(axum::middleware::from_fn(server_span))
}

/// The SERVER span of one request, made here rather than by axum-tracing-opentelemetry, whose
/// span records `url.query` as it came (a `?token=` would be stored), an empty `url.scheme`,
/// empty `user_agent.original` and `http.route` values, any method a client invents as the
/// span name, and `span.type`, which is no semantic convention. It is an OpenTelemetry span,
/// not a `tracing` one (why: `context`); the handler runs with its context attached.
///
/// Inside the span it also adds the `X-Trace-Id` header and records the request in
/// `http_server_request_duration_seconds` with the trace as exemplar.
async fn server_span(request: Request, next: Next) -> Response {
    if UNTRACED_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let method = crate::metrics::method_label(request.method().as_str());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let Some(tracer) = crate::context::tracer() else {
        let response = next.run(request).await;
        record_request(method, route.as_deref(), &response, started, None);
        return response;
    };
    let name = match (&route, method) {
        // Semantic conventions: a method nobody knows names the span "HTTP".
        (_, "_OTHER") => "HTTP".to_owned(),
        (Some(route), _) => format!("{method} {route}"),
        (None, _) => method.to_owned(),
    };
    let mut attributes = Vec::with_capacity(12);
    attributes.extend([
        KeyValue::new("http.request.method", method),
        KeyValue::new("url.path", request.uri().path().to_owned()),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new(
            "network.protocol.version",
            protocol_version(request.version()),
        ),
    ]);
    if let Some(route) = &route {
        attributes.push(KeyValue::new("http.route", route.clone()));
    }
    if let Some(query) = request.uri().query().filter(|q| !q.is_empty()) {
        attributes.push(KeyValue::new("url.query", redact_query(query)));
    }
    if let Some((address, port)) = host_and_port(&request) {
        attributes.push(KeyValue::new("server.address", address.to_owned()));
        if let Some(port) = port {
            attributes.push(KeyValue::new("server.port", port));
        }
    }
    if let Some(agent) = header_text(&request, header::USER_AGENT) {
        attributes.push(KeyValue::new("user_agent.original", agent.to_owned()));
    }
    let parent = crate::propagation::extract(request.headers());
    let span = tracer
        .span_builder(name)
        .with_kind(SpanKind::Server)
        .with_attributes(attributes)
        .start_with_context(tracer, &parent);
    let context = parent.with_span(span);

    let mut response = next.run(request).with_context(context.clone()).await;
    let status = response.status();
    let span = context.span();
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    record_request(
        method,
        route.as_deref(),
        &response,
        started,
        Some(span.span_context()),
    );
    if status.is_server_error() {
        span.set_attribute(KeyValue::new("error.type", status.as_str().to_owned()));
        span.set_status(Status::error(format!("HTTP {status}")));
    }
    let trace_id = span.span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID
        && let Ok(value) = HeaderValue::from_str(crate::ids::trace_id_hex(trace_id).as_str())
    {
        response.headers_mut().insert(TRACE_ID_HEADER, value);
    }
    span.end();
    response
}

/// `http_server_request_duration_seconds`, with the trace of `span` (if any) as exemplar.
fn record_request(
    method: &str,
    route: Option<&str>,
    response: &Response,
    started: Instant,
    span: Option<&opentelemetry::trace::SpanContext>,
) {
    crate::metrics::record_server_request(
        method,
        route.unwrap_or("unmatched"),
        response.status().as_u16(),
        started.elapsed(),
        span,
    );
}

/// `url.query` with every value replaced: keys say what was asked, values may be secrets
/// (`?token=…`, `?api_key=…`), as the semantic conventions warn.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) => format!("{key}=REDACTED"),
            None => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `server.address` and `server.port` from the `Host` header.
fn host_and_port(request: &Request) -> Option<(&str, Option<i64>)> {
    let host = header_text(request, header::HOST)?;
    let (address, port) = match host.strip_prefix('[') {
        // [::1]:8001
        Some(v6) => match v6.split_once(']') {
            Some((address, rest)) => (address, rest.strip_prefix(':')),
            None => (host, None),
        },
        None => match host.rsplit_once(':') {
            Some((address, port)) => (address, Some(port)),
            None => (host, None),
        },
    };
    Some((address, port.and_then(|p| p.parse().ok())))
}

/// A header's value, if it is present, text, and not empty.
fn header_text(request: &Request, name: header::HeaderName) -> Option<&str> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

fn protocol_version(version: axum::http::Version) -> &'static str {
    match version {
        axum::http::Version::HTTP_09 => "0.9",
        axum::http::Version::HTTP_10 => "1.0",
        axum::http::Version::HTTP_2 => "2",
        axum::http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

#[cfg(test)]
mod tests {
    use super::redact_query;

    #[test]
    fn query_values_are_redacted_and_keys_kept() {
        assert_eq!(
            redact_query("token=s3cret&page=2&flag"),
            "token=REDACTED&page=REDACTED&flag"
        );
    }
}
