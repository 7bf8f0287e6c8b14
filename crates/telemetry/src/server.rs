//! Server side: the SERVER span of every request, continued from the caller's headers.
//!
//! It is a tower layer of its own, not an `axum::middleware::from_fn`: that one boxes the rest
//! of the stack into its `Next` and boxes the future for every request (two allocations and a
//! clone of every service under it), which was the largest cost of the layers in the profile
//! without telemetry (BENCHMARKS.md, twelfth round).

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{PoisonError, RwLock},
    task::{Context as TaskContext, Poll},
    time::Instant,
};

use axum::{
    Router,
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue, header},
    response::{IntoResponse, Response},
};
use opentelemetry::{
    Context, KeyValue,
    trace::{SpanKind, Status, TraceContextExt, Tracer as _},
};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

/// The response header that carries the trace id, so a caller (or a trace-based test) can find
/// the trace its request produced.
pub const TRACE_ID_HEADER: &str = "x-trace-id";

/// [`TRACE_ID_HEADER`] as a header name made once: `insert` given the `&str` copies a name
/// that is not one of the standard headers into a new allocation on every answer.
const TRACE_ID_NAME: HeaderName = HeaderName::from_static(TRACE_ID_HEADER);

/// The headers a SERVER span reads, found in one pass over the request's headers. A `const`,
/// not a `static`: the compiler then compares each name against these five inline (with a
/// `static`, through memcmp calls: about 1 k instructions an order more, nineteenth round).
const READ_HEADERS: [HeaderName; 5] = [
    header::HOST,
    header::USER_AGENT,
    crate::propagation::TRACEPARENT,
    crate::propagation::TRACESTATE,
    crate::propagation::BAGGAGE,
];

/// Paths that are polled by machines every few seconds and would drown real traces.
const UNTRACED_PATHS: [&str; 2] = ["/health", "/metrics"];

/// Wraps every route of `router` in a SERVER span and adds `X-Trace-Id` to each response.
///
/// Call it after the last `.route(...)`: `MatchedPath`, which gives the span its name
/// (`POST /stock/{item}/reserve`) and `http.route`, exists only for routes the layer wraps.
/// The span continues the caller's W3C `traceparent`/`tracestate`/`baggage`, read through the
/// global propagator (a malformed header simply starts a new trace), carries the HTTP
/// semantic-convention attributes, and is ERROR (with `error.type`) on a 5xx only.
///
/// A router with more layers of its own gives them to `Router::layer` together with
/// [`TracedLayer`], in one `tower::ServiceBuilder`: axum boxes a route once for each
/// `Router::layer` and clones every box for every request.
pub fn traced<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.layer(TracedLayer)
}

/// The layer of [`traced`]: the SERVER span around the service it wraps.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracedLayer;

impl<S> Layer<S> for TracedLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced { inner }
    }
}

/// The SERVER span of one request, made here rather than by axum-tracing-opentelemetry, whose
/// span records `url.query` as it came (a `?token=` would be stored), an empty `url.scheme`,
/// empty `user_agent.original` and `http.route` values, any method a client invents as the
/// span name, and `span.type`, which is no semantic convention. It is an OpenTelemetry span,
/// not a `tracing` one (why: `context`); the handler runs with its context attached.
///
/// Inside the span it also adds the `X-Trace-Id` header and records the request in
/// `http_server_request_duration_seconds` with the trace as exemplar.
#[derive(Clone, Debug)]
pub struct Traced<S> {
    inner: S,
}

impl<S> Service<Request> for Traced<S>
where
    S: Service<Request, Error = Infallible>,
    S::Response: IntoResponse,
{
    type Response = Response;
    type Error = Infallible;
    type Future = TracedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if UNTRACED_PATHS.contains(&request.uri().path()) {
            return TracedFuture::Untraced {
                inner: self.inner.call(request),
            };
        }
        let method = crate::metrics::method_label(request.method().as_str());
        let names = request
            .extensions()
            .get::<MatchedPath>()
            .map(|path| route_names(method, path.as_str()));
        let measured = Measured {
            started: Instant::now(),
            method,
            route: names.map(|names| names.route),
        };
        let Some(tracer) = crate::context::tracer() else {
            return TracedFuture::Measured {
                inner: self.inner.call(request),
                measured: Some(measured),
            };
        };
        let found = crate::propagation::first_values(request.headers(), &READ_HEADERS);
        let [host, user_agent, values @ ..] = found.values;
        let [_, _, repeated @ ..] = found.repeated;
        let incoming = crate::propagation::Incoming::new(values, repeated);
        // The caller's context, baggage and all, is the span's parent and stays around it.
        let parent = crate::propagation::extract_incoming(incoming, request.headers());
        let span = tracer
            .span_builder(match (names, method) {
                (Some(names), _) => names.span,
                (None, "_OTHER") => "HTTP",
                (None, _) => method,
            })
            .with_kind(SpanKind::Server)
            .with_attributes(request_attributes(&request, &measured, host, user_agent))
            .start_with_context(tracer, &parent);
        let context = parent.with_span(span);
        // The handler's own work may begin in `call`: it runs in the span too.
        let inner = {
            let _attached = context.clone().attach();
            self.inner.call(request)
        };
        TracedFuture::Traced {
            inner,
            measured: Some(measured),
            context,
        }
    }
}

pin_project! {
    /// The answer of [`Traced`]: the inner service's, then the span ended and the request
    /// counted.
    #[project = TracedProjection]
    pub enum TracedFuture<F> {
        /// `/health`, `/metrics`: neither traced nor counted.
        Untraced { #[pin] inner: F },
        /// Tracing is off: counted in the metrics only.
        Measured { #[pin] inner: F, measured: Option<Measured> },
        /// In a SERVER span, attached around every poll.
        Traced { #[pin] inner: F, measured: Option<Measured>, context: Context },
    }
}

impl<F, R> Future for TracedFuture<F>
where
    F: Future<Output = Result<R, Infallible>>,
    R: IntoResponse,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let response = match self.project() {
            TracedProjection::Untraced { inner } => {
                let Ok(response) = std::task::ready!(inner.poll(cx));
                response.into_response()
            }
            TracedProjection::Measured { inner, measured } => {
                let Ok(response) = std::task::ready!(inner.poll(cx));
                let response = response.into_response();
                if let Some(measured) = measured.take() {
                    measured.record(&response, None);
                }
                response
            }
            TracedProjection::Traced {
                inner,
                measured,
                context,
            } => {
                let polled = {
                    let _attached = context.clone().attach();
                    inner.poll(cx)
                };
                let Ok(response) = std::task::ready!(polled);
                let mut response = response.into_response();
                if let Some(measured) = measured.take() {
                    end_server_span(&context.span(), &measured, &mut response);
                }
                response
            }
        };
        Poll::Ready(Ok(response))
    }
}

/// What the metrics need of a request once it is answered.
#[derive(Debug)]
pub struct Measured {
    started: Instant,
    method: &'static str,
    route: Option<&'static str>,
}

impl Measured {
    /// `http_server_request_duration_seconds`, with the trace of `span` (if any) as exemplar.
    fn record(&self, response: &Response, span: Option<&opentelemetry::trace::SpanContext>) {
        crate::metrics::record_server_request(
            self.method,
            self.route.unwrap_or("unmatched"),
            response.status().as_u16(),
            self.started.elapsed(),
            span,
        );
    }
}

/// The SERVER span's name and `http.route` of one method and matched route.
#[derive(Clone, Copy, Debug)]
struct RouteNames {
    /// `POST /stock/{item}/reserve`.
    span: &'static str,
    route: &'static str,
}

/// The [`RouteNames`] of `method` and `route`, made at the first request and shared by every
/// request after: a `format!` and two copies of the route were three allocations a request.
/// They are leaked, as the instrumentation scope is: a route here is a pattern of the router
/// (`/stock/{item}`), never a path a client sent, and a method one of ten, so there are a
/// fixed few.
fn route_names(method: &'static str, route: &str) -> RouteNames {
    static KNOWN: RwLock<Vec<(&'static str, RouteNames)>> = RwLock::new(Vec::new());
    let find = |known: &[(&'static str, RouteNames)]| {
        known
            .iter()
            .find(|(m, names)| *m == method && names.route == route)
            .map(|&(_, names)| names)
    };
    if let Some(names) = find(&KNOWN.read().unwrap_or_else(PoisonError::into_inner)) {
        return names;
    }
    let mut known = KNOWN.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(names) = find(&known) {
        return names;
    }
    let route: &'static str = Box::leak(route.into());
    // Semantic conventions (http-spans, "Name"): a method nobody knows is named "HTTP".
    let shown = if method == "_OTHER" { "HTTP" } else { method };
    let names = RouteNames {
        span: Box::leak(format!("{shown} {route}").into_boxed_str()),
        route,
    };
    known.push((method, names));
    names
}

/// The HTTP semantic-convention attributes known when the request arrives; `host` and
/// `user_agent` are its first `Host` and `User-Agent` headers.
fn request_attributes(
    request: &Request,
    measured: &Measured,
    host: Option<&HeaderValue>,
    user_agent: Option<&HeaderValue>,
) -> Vec<KeyValue> {
    let path = request.uri().path();
    // A path that is its own route (`/orders`, not `/stock/book/reserve`) is recorded as the
    // route's string, which lives as long as the process: no copy of it for each request.
    let path: opentelemetry::StringValue = match measured.route {
        Some(route) if route == path => route.into(),
        _ => path.to_owned().into(),
    };
    let mut attributes = Vec::with_capacity(12);
    attributes.extend([
        KeyValue::new("http.request.method", measured.method),
        KeyValue::new("url.path", path),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new(
            "network.protocol.version",
            protocol_version(request.version()),
        ),
    ]);
    if let Some(route) = measured.route {
        attributes.push(KeyValue::new("http.route", route));
    }
    // Conditionally required whenever `http.request.method` is `_OTHER`. The client chose it,
    // so it is cut to the attribute length limit like any other such value.
    if measured.method == "_OTHER" {
        attributes.push(KeyValue::new(
            "http.request.method_original",
            request.method().as_str().to_owned(),
        ));
    }
    if let Some(query) = request.uri().query().filter(|q| !q.is_empty()) {
        attributes.push(KeyValue::new("url.query", redact_query(query)));
    }
    if let Some((address, port)) = text(host).map(host_and_port) {
        attributes.push(KeyValue::new("server.address", address.to_owned()));
        if let Some(port) = port {
            attributes.push(KeyValue::new("server.port", port));
        }
    }
    if let Some(agent) = text(user_agent) {
        attributes.push(KeyValue::new("user_agent.original", agent.to_owned()));
    }
    attributes
}

/// The answer's status on the span (ERROR on a 5xx), the metrics with the trace as exemplar,
/// `X-Trace-Id` on the answer, and the span ended.
fn end_server_span(
    span: &opentelemetry::trace::SpanRef<'_>,
    measured: &Measured,
    response: &mut Response,
) {
    let status = response.status();
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    measured.record(response, Some(span.span_context()));
    if status.is_server_error() {
        span.set_attribute(KeyValue::new("error.type", status.as_str().to_owned()));
        span.set_status(Status::error(format!("HTTP {status}")));
    }
    let trace_id = span.span_context().trace_id();
    if trace_id != opentelemetry::trace::TraceId::INVALID
        && let Ok(value) = HeaderValue::from_str(crate::ids::trace_id_hex(trace_id).as_str())
    {
        response.headers_mut().insert(TRACE_ID_NAME, value);
    }
    span.end();
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
fn host_and_port(host: &str) -> (&str, Option<i64>) {
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
    (address, port.and_then(|p| p.parse().ok()))
}

/// A header's value, if it is present, text, and not empty.
fn text(value: Option<&HeaderValue>) -> Option<&str> {
    value
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
    use super::{redact_query, route_names};

    #[test]
    fn each_method_of_a_route_names_its_own_spans_every_time() {
        for _ in 0..2 {
            for (method, route, name) in [
                ("GET", "/stock/{item}", "GET /stock/{item}"),
                ("POST", "/stock/{item}", "POST /stock/{item}"),
                ("GET", "/orders/{id}", "GET /orders/{id}"),
                ("_OTHER", "/orders", "HTTP /orders"),
            ] {
                let names = route_names(method, route);
                assert_eq!((names.span, names.route), (name, route));
            }
        }
    }

    #[test]
    fn query_values_are_redacted_and_keys_kept() {
        assert_eq!(
            redact_query("token=s3cret&page=2&flag"),
            "token=REDACTED&page=REDACTED&flag"
        );
    }
}
