//! Client side: the HTTP client services use to call each other.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use http::Extensions;
use opentelemetry::{
    KeyValue,
    trace::{Span as _, SpanKind, Status, Tracer as _},
};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

use crate::errors::record_exception;

/// The client every service-to-service call goes through.
pub type HttpClient = ClientWithMiddleware;

/// Longest time spent waiting for a TCP connection, whatever the request timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a pooled connection may sit idle before the client drops it: below the services'
/// `service_kit::serve::IDLE_CONNECTION_TIMEOUT` (5 s), after which the server closes it, so a
/// request never goes out on a connection the other end is closing.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// A client whose every request opens a CLIENT span, carries the W3C trace context and baggage
/// of that span, and fails after `timeout`.
pub fn http_client(timeout: Duration) -> Result<HttpClient, reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        // reqwest 0.13's default policy retries only HTTP/2 and HTTP/3 protocol refusals
        // (`src/retry.rs`, `is_retryable_error`), which these HTTP/1.1 hops never get, yet it
        // copies every request's method, URI, headers, extensions and body up front in case
        // (`clone_request`). With no retry allowed it copies nothing. Calls that are safe to
        // repeat are retried by the caller (`service_kit::deadline::retry_idempotent`).
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .build()?;
    Ok(ClientBuilder::new(client).with(ClientSpan).build())
}

/// The CLIENT span of one call, an OpenTelemetry span (why: `context`) made here rather than
/// by reqwest-tracing: that one records `server.port` as a string, a second, integer
/// `server.port` would then be exported beside it, and it writes an empty
/// `user_agent.original`. Its context is what goes into the `traceparent` of the request.
///
/// Only a transport failure or a 5xx answer is an error (with `error.type`): a 4xx answer here
/// is an expected outcome such as "unknown item", which the caller turns into its own 4xx.
/// The span ends when the answer's head has arrived, as the call's own timing does.
struct ClientSpan;

#[async_trait::async_trait]
impl Middleware for ClientSpan {
    async fn handle(
        &self,
        mut req: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let started = Instant::now();
        // One copy of the host, shared by the metrics and the span's `server.address`.
        let server: Arc<str> = Arc::from(req.url().host_str().unwrap_or_default());
        let method = crate::metrics::method_label(req.method().as_str());
        let Some(tracer) = crate::context::tracer() else {
            let outcome = next.run(req, extensions).await;
            record_call(&server, method, &outcome, started, None);
            return outcome;
        };
        let parent = crate::context::current_context();
        // Held here, not put into a `Context`: nothing runs inside a call that could look it
        // up, and a context would box the span and lock it at every use (BENCHMARKS.md,
        // nineteenth round). The headers need only its ids, and the parent's baggage.
        let mut span = tracer
            .span_builder(method)
            .with_kind(SpanKind::Client)
            .with_attributes(request_attributes(&req, method, &server))
            .start_with_context(tracer, &parent);
        crate::propagation::inject(span.span_context(), &parent, req.headers_mut());
        drop(parent);

        let outcome = next.run(req, extensions).await;
        record_call(
            &server,
            method,
            &outcome,
            started,
            Some(span.span_context()),
        );
        match &outcome {
            Ok(response) => {
                let status = response.status();
                span.set_attribute(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status.as_u16()),
                ));
                if status.is_server_error() {
                    span.set_attribute(KeyValue::new("error.type", status.as_str().to_owned()));
                    span.set_status(Status::error(format!("HTTP {status}")));
                }
            }
            Err(error) => {
                span.set_attribute(KeyValue::new("error.type", transport_error_type(error)));
                record_exception(&mut span, error);
            }
        }
        span.end();
        outcome
    }
}

/// The HTTP semantic-convention attributes known before the call is sent.
fn request_attributes(
    req: &reqwest::Request,
    method: &'static str,
    server: &Arc<str>,
) -> Vec<KeyValue> {
    let url = req.url();
    let mut attributes = Vec::with_capacity(8);
    attributes.extend([
        KeyValue::new("http.request.method", method),
        KeyValue::new("url.full", without_credentials(url)),
        KeyValue::new("url.scheme", scheme(url)),
        KeyValue::new("server.address", Arc::clone(server)),
    ]);
    if let Some(port) = url.port_or_known_default() {
        attributes.push(KeyValue::new("server.port", i64::from(port)));
    }
    if let Some(agent) = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    {
        attributes.push(KeyValue::new("user_agent.original", agent.to_owned()));
    }
    attributes
}

/// `http_client_request_duration_seconds` of one call, with the trace of `span` (if any) as
/// exemplar.
fn record_call(
    server: &str,
    method: &'static str,
    outcome: &reqwest_middleware::Result<reqwest::Response>,
    started: Instant,
    span: Option<&opentelemetry::trace::SpanContext>,
) {
    let status = outcome.as_ref().ok().map(|r| r.status().as_u16());
    crate::metrics::record_client_request(server, method, status, started.elapsed(), span);
}

/// `url.scheme`, without a copy for the two schemes this client speaks.
fn scheme(url: &url::Url) -> opentelemetry::StringValue {
    match url.scheme() {
        "http" => "http".into(),
        "https" => "https".into(),
        other => other.to_owned().into(),
    }
}

/// The URL as recorded: never with its credentials.
fn without_credentials(url: &url::Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.as_str().to_owned();
    }
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.into()
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

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn a_url_is_recorded_without_its_credentials_and_unchanged_otherwise() {
        let plain = url::Url::parse("http://inventory-service:8002/stock/book?x=1").expect("url");
        assert_eq!(without_credentials(&plain), plain.as_str());
        let secret = url::Url::parse("http://alice:s3cret@payment:8003/charges").expect("url");
        assert_eq!(without_credentials(&secret), "http://payment:8003/charges");
        let user_only = url::Url::parse("http://alice@payment:8003/").expect("url");
        assert_eq!(without_credentials(&user_only), "http://payment:8003/");
    }
}
