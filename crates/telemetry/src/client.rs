//! Client side: the HTTP client services use to call each other.

use std::time::Duration;

use http::Extensions;
use opentelemetry::trace::Status;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use reqwest_tracing::{ReqwestOtelSpanBackend, TracingMiddleware};
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::errors::record_error;

/// The client every service-to-service call goes through.
pub type HttpClient = ClientWithMiddleware;

/// Longest time spent waiting for a TCP connection, whatever the request timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A client whose every request opens a CLIENT span, carries the W3C trace context and baggage
/// of that span, and fails after `timeout`.
///
/// reqwest-tracing opens the span (it has no feature for opentelemetry 0.33, and any of its
/// `opentelemetry_*` features would pull in a second opentelemetry, which compiles and then
/// silently breaks propagation), so the header injection is our own [`InjectTraceContext`],
/// placed after it so that it runs inside the CLIENT span.
pub fn http_client(timeout: Duration) -> Result<HttpClient, reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .build()?;
    Ok(ClientBuilder::new(client)
        .with(TracingMiddleware::<ClientSpan>::new())
        .with(InjectTraceContext)
        .build())
}

/// The CLIENT span, with the HTTP semantic-convention fields made here rather than by
/// reqwest-tracing's macro: that one records `server.port` as a string, and a second, integer
/// `server.port` would then be exported beside it; it also writes an empty
/// `user_agent.original`. Only a transport failure or a 5xx answer is an error (with
/// `error.type`): a 4xx answer here is an expected outcome such as "unknown item", which the
/// caller turns into its own 4xx.
struct ClientSpan;

impl ReqwestOtelSpanBackend for ClientSpan {
    fn on_request_start(req: &reqwest::Request, extensions: &mut Extensions) -> Span {
        extensions.insert(RequestStarted {
            at: std::time::Instant::now(),
            server: req.url().host_str().unwrap_or_default().to_owned(),
            method: req.method().as_str().to_owned(),
        });
        let method = crate::metrics::method_label(req.method().as_str());
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = method,
            otel.kind = "client",
            http.request.method = method,
            url.full = without_credentials(req.url()).as_ref(),
            url.scheme = req.url().scheme(),
            server.address = req.url().host_str().unwrap_or_default(),
            server.port = Empty,
            user_agent.original = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
        );
        if let Some(port) = req.url().port_or_known_default() {
            span.record("server.port", i64::from(port));
        }
        if let Some(agent) = req
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
        {
            span.record("user_agent.original", agent);
        }
        span
    }

    fn on_request_end(
        span: &Span,
        outcome: &reqwest_middleware::Result<reqwest::Response>,
        extensions: &mut Extensions,
    ) {
        if let Some(started) = extensions.get::<RequestStarted>() {
            let status = outcome.as_ref().ok().map(|r| r.status().as_u16());
            // Inside the CLIENT span, so the exemplar is this call's trace.
            let _entered = span.enter();
            crate::metrics::record_client_request(
                &started.server,
                &started.method,
                status,
                started.at.elapsed(),
            );
        }
        match outcome {
            Ok(response) => {
                let status = response.status();
                span.record("http.response.status_code", i64::from(status.as_u16()));
                if status.is_server_error() {
                    span.record("error.type", status.as_str());
                    span.set_status(Status::error(format!("HTTP {status}")));
                }
            }
            Err(error) => {
                span.record("error.type", transport_error_type(error));
                record_error(span, error);
            }
        }
    }
}

/// The URL as recorded: never with its credentials. A URL without any (every call these
/// services make) is recorded as it is, without a copy.
fn without_credentials(url: &url::Url) -> std::borrow::Cow<'_, str> {
    if url.username().is_empty() && url.password().is_none() {
        return std::borrow::Cow::Borrowed(url.as_str());
    }
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    std::borrow::Cow::Owned(url.into())
}

/// `error.type` of a call that got no answer: what the semantic conventions suggest for a
/// transport failure (a low-cardinality name of the kind of failure).
fn transport_error_type(error: &reqwest_middleware::Error) -> &'static str {
    match error {
        reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => "timeout",
        reqwest_middleware::Error::Reqwest(e) if e.is_connect() => "connect",
        reqwest_middleware::Error::Reqwest(e) if e.is_body() || e.is_decode() => "response_body",
        _ => "_OTHER",
    }
}

/// When and to whom a request was sent, kept in the request's extensions for its metric.
#[derive(Clone)]
struct RequestStarted {
    at: std::time::Instant,
    server: String,
    method: String,
}

/// Writes `traceparent`, `tracestate` and `baggage` for the current span into the request.
struct InjectTraceContext;

#[async_trait::async_trait]
impl Middleware for InjectTraceContext {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let context = Span::current().context();
        tracing_opentelemetry_instrumentation_sdk::http::inject_context(
            &context,
            req.headers_mut(),
        );
        next.run(req, extensions).await
    }
}

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn a_url_is_recorded_without_its_credentials_and_unchanged_otherwise() {
        let plain = url::Url::parse("http://inventory-service:8002/stock/book?x=1").expect("url");
        assert!(matches!(
            without_credentials(&plain),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(without_credentials(&plain), plain.as_str());
        let secret = url::Url::parse("http://alice:s3cret@payment:8003/charges").expect("url");
        assert_eq!(without_credentials(&secret), "http://payment:8003/charges");
        let user_only = url::Url::parse("http://alice@payment:8003/").expect("url");
        assert_eq!(without_credentials(&user_only), "http://payment:8003/");
    }
}
