//! Prometheus metrics, served on `/metrics` as OpenMetrics text with exemplars.
//!
//! The opentelemetry-rust SDK does not produce exemplars, and an exemplar (the `trace_id` of a
//! request that fell in a latency bucket) is what links a Grafana latency panel to the trace
//! behind a spike. So the RED metrics are kept with prometheus-client, which writes them.
//! One registry per process; the HTTP histograms are filled by the server and client layers of
//! this crate, and a service adds its business counters with [`counter`].

use std::{
    fmt::Write as _,
    sync::{LazyLock, Mutex},
    time::Duration,
};

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use opentelemetry::trace::SpanContext;
use prometheus_client::{
    encoding::{EncodeLabelValue, LabelValueEncoder, text::encode},
    metrics::{counter::Counter, exemplar::HistogramWithExemplars, family::Family},
    registry::{Metric, Registry},
};

/// Label pairs, in the order the metric declares them.
type Labels = Vec<(&'static str, String)>;

/// The three labels of an HTTP duration, held without allocating for all but a server's name:
/// a `Vec` of three `String`s was four allocations a request, and the exemplar two more.
type HttpLabels = [(&'static str, LabelValue); 3];

/// An exemplar's labels: just `trace_id`.
type TraceExemplar = [(&'static str, crate::ids::Hex<32>); 1];

/// A label's value: the method, route and status come from fixed sets.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum LabelValue {
    Fixed(&'static str),
    Status(u16),
    Owned(String),
}

impl EncodeLabelValue for LabelValue {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        match self {
            Self::Fixed(value) => encoder.write_str(value),
            Self::Status(code) => write!(encoder, "{code}"),
            Self::Owned(value) => encoder.write_str(value),
        }
    }
}

impl EncodeLabelValue for crate::ids::Hex<32> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(self.as_str())
    }
}

type DurationHistogram = Family<
    HttpLabels,
    HistogramWithExemplars<TraceExemplar>,
    fn() -> HistogramWithExemplars<TraceExemplar>,
>;

/// Bucket bounds in seconds: the semantic conventions' advice for HTTP durations, plus 0.25
/// and 0.35 around the planted slow path (~0.29 s), so its shift is visible.
const DURATION_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.35, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0,
];

fn duration_histogram() -> HistogramWithExemplars<TraceExemplar> {
    HistogramWithExemplars::new(DURATION_BUCKETS.into_iter())
}

struct Metrics {
    registry: Mutex<Registry>,
    server_duration: DurationHistogram,
    client_duration: DurationHistogram,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let server_duration: DurationHistogram = Family::new_with_constructor(duration_histogram);
    let client_duration: DurationHistogram = Family::new_with_constructor(duration_histogram);
    registry.register_with_unit(
        "http_server_request_duration",
        "Duration of HTTP server requests (http.server.request.duration)",
        prometheus_client::registry::Unit::Seconds,
        server_duration.clone(),
    );
    registry.register_with_unit(
        "http_client_request_duration",
        "Duration of HTTP client requests to other services (http.client.request.duration)",
        prometheus_client::registry::Unit::Seconds,
        client_duration.clone(),
    );
    Metrics {
        registry: Mutex::new(registry),
        server_duration,
        client_duration,
    }
});

fn register(name: &str, help: &str, metric: impl Metric) {
    // Registration happens once per metric at start; a panic elsewhere cannot leave the
    // registry half-updated, so a poisoned lock is safe to reuse.
    let mut registry = METRICS.registry.lock().unwrap_or_else(|e| e.into_inner());
    registry.register(name, help, metric);
}

/// Whether exemplars name traces: off when spans are never exported (`OTEL_SDK_DISABLED`).
static EXEMPLARS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Turns trace-id exemplars on or off, for a process whose spans are (or are not) exported.
pub(crate) fn link_exemplars(on: bool) {
    EXEMPLARS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// The trace of `span` (the SERVER or CLIENT span being recorded) as an exemplar, if it is
/// sampled and spans are exported (an exemplar pointing at a trace that was never exported
/// would lead nowhere). Given by the caller, which holds it: looking the current span up again
/// through the subscriber cost more than the rest of the exemplar.
fn exemplar_of(span: Option<&SpanContext>) -> Option<TraceExemplar> {
    let span = span?;
    if !EXEMPLARS.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    (span.is_valid() && span.is_sampled())
        .then(|| [("trace_id", crate::ids::trace_id_hex(span.trace_id()))])
}

/// The method as a label or attribute: the standard ones as they are, anything else `_OTHER`
/// (semantic conventions), so a client inventing methods cannot create series, span names or
/// attribute values without end.
pub(crate) fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        _ => "_OTHER",
    }
}

/// Records one request handled: `http_server_request_duration_seconds` by method, route and
/// status, with the trace of `span` (the SERVER span) as exemplar.
pub(crate) fn record_server_request(
    method: &'static str,
    route: &'static str,
    status: u16,
    elapsed: Duration,
    span: Option<&SpanContext>,
) {
    let labels = [
        ("http_request_method", LabelValue::Fixed(method)),
        ("http_route", LabelValue::Fixed(route)),
        ("http_response_status_code", LabelValue::Status(status)),
    ];
    METRICS.server_duration.get_or_create(&labels).observe(
        elapsed.as_secs_f64(),
        exemplar_of(span),
        None,
    );
}

/// Records one call to another service: `http_client_request_duration_seconds` by server,
/// method and status (`error` when there was no answer), with the trace of `span` (the CLIENT
/// span) as exemplar.
pub(crate) fn record_client_request(
    server: &str,
    method: &'static str,
    status: Option<u16>,
    elapsed: Duration,
    span: Option<&SpanContext>,
) {
    let labels = [
        ("server_address", LabelValue::Owned(server.to_owned())),
        ("http_request_method", LabelValue::Fixed(method)),
        (
            "http_response_status_code",
            status.map_or(LabelValue::Fixed("error"), LabelValue::Status),
        ),
    ];
    METRICS.client_duration.get_or_create(&labels).observe(
        elapsed.as_secs_f64(),
        exemplar_of(span),
        None,
    );
}

/// A business counter with labels, such as `orders_total{outcome="created"}`.
#[derive(Clone)]
pub struct CounterVec {
    family: Family<Labels, Counter<f64, std::sync::atomic::AtomicU64>>,
    labels: &'static [&'static str],
}

impl CounterVec {
    /// Adds `amount` to the series with these label `values` (in the order declared).
    pub fn add(&self, values: &[&str], amount: f64) {
        let labels = self
            .labels
            .iter()
            .zip(values)
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect();
        self.family.get_or_create(&labels).inc_by(amount);
    }

    /// Adds one.
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1.0);
    }
}

/// Registers a counter `<name>_total` with `labels`. Call it once per name (a `LazyLock` is the
/// usual place): a second registration would repeat the metric in the output.
pub fn counter(
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
) -> CounterVec {
    let family = Family::default();
    register(name, help, family.clone());
    CounterVec { family, labels }
}

/// The OpenMetrics text of every metric of this process.
pub fn render() -> String {
    let registry = METRICS.registry.lock().unwrap_or_else(|e| e.into_inner());
    let mut text = String::new();
    if encode(&mut text, &registry).is_err() {
        text = "# EOF\n".to_owned();
    }
    text
}

/// `GET /metrics`.
pub async fn metrics_handler() -> Response {
    let mut response = render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
