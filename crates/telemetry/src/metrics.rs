//! Prometheus metrics, served on `/metrics` as OpenMetrics text with exemplars.
//!
//! The opentelemetry-rust SDK does not produce exemplars, and an exemplar (the `trace_id` of a
//! request that fell in a latency bucket) is what links a Grafana latency panel to the trace
//! behind a spike. So the RED metrics are kept with prometheus-client, which writes them.
//! One registry per process; the HTTP histograms are filled by the server and client layers of
//! this crate, and a service adds its business counters with [`counter`].

use std::{
    fmt::Write as _,
    sync::{Arc, LazyLock, Mutex, PoisonError},
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
    /// Server series by status, method and route.
    server_series: Series<(u16, &'static str, &'static str), DurationSeries>,
    /// Client series by status (`None`: no answer), method and server.
    client_series: Series<(Option<u16>, &'static str, Box<str>), DurationSeries>,
}

type DurationSeries = HistogramWithExemplars<TraceExemplar>;

/// How many series of a family [`Series`] keeps at hand: more than the routes, statuses and
/// servers of any of these services, few enough to look through in a handful of compares.
const SERIES_AT_HAND: usize = 32;

/// The series of one family that this process records into, found by comparing label values.
///
/// prometheus-client's `Family` finds a series by hashing its whole label set (SipHash over
/// every label's name and value: 1.4 k instructions a recording, eleven recordings an order)
/// under a lock, after the caller has built that label set, allocations included
/// (BENCHMARKS.md, twentieth round). A series handle is a shared reference to the family's own
/// series, so recording into the one kept here is recording into the family. The first
/// [`SERIES_AT_HAND`] series seen are kept; any others are found through the family each
/// time, as before, so a label of many values costs no memory here.
struct Series<K, M> {
    at_hand: Mutex<Vec<(K, M)>>,
}

impl<K, M> Series<K, M> {
    const fn new() -> Self {
        Self {
            at_hand: Mutex::new(Vec::new()),
        }
    }

    /// Runs `record` on the series `is_it` recognises, or on the one `found` gets from the
    /// family (kept at hand while there is room).
    fn record(
        &self,
        is_it: impl Fn(&K) -> bool,
        found: impl FnOnce() -> (K, M),
        record: impl FnOnce(&M),
    ) {
        // A panic while recording leaves a counter at worst: the list itself stays whole.
        let mut at_hand = self.at_hand.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, series)) = at_hand.iter().find(|(key, _)| is_it(key)) {
            record(series);
            return;
        }
        let (key, series) = found();
        record(&series);
        if at_hand.len() < SERIES_AT_HAND {
            at_hand.push((key, series));
        }
    }
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
        server_series: Series::new(),
        client_series: Series::new(),
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
    METRICS.server_series.record(
        |&(s, m, r)| s == status && m == method && r == route,
        || {
            let labels = [
                ("http_request_method", LabelValue::Fixed(method)),
                ("http_route", LabelValue::Fixed(route)),
                ("http_response_status_code", LabelValue::Status(status)),
            ];
            let series = METRICS.server_duration.get_or_create_owned(&labels);
            ((status, method, route), series)
        },
        |series| series.observe(elapsed.as_secs_f64(), exemplar_of(span), None),
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
    METRICS.client_series.record(
        |(s, m, address)| *s == status && *m == method && **address == *server,
        || {
            let labels = [
                ("server_address", LabelValue::Owned(server.to_owned())),
                ("http_request_method", LabelValue::Fixed(method)),
                (
                    "http_response_status_code",
                    status.map_or(LabelValue::Fixed("error"), LabelValue::Status),
                ),
            ];
            let series = METRICS.client_duration.get_or_create_owned(&labels);
            ((status, method, server.into()), series)
        },
        |series| series.observe(elapsed.as_secs_f64(), exemplar_of(span), None),
    );
}

type FloatCounter = Counter<f64, std::sync::atomic::AtomicU64>;

/// A business counter with labels, such as `orders_total{outcome="created"}`.
#[derive(Clone)]
pub struct CounterVec {
    family: Family<Labels, FloatCounter>,
    labels: &'static [&'static str],
    /// By label values, in the order declared.
    series: Arc<Series<Box<[Box<str>]>, FloatCounter>>,
}

impl CounterVec {
    /// Adds `amount` to the series with these label `values` (in the order declared).
    pub fn add(&self, values: &[&str], amount: f64) {
        self.series.record(
            |known| known.iter().map(|v| &**v).eq(values.iter().copied()),
            || {
                let labels = self
                    .labels
                    .iter()
                    .zip(values)
                    .map(|(k, v)| (*k, (*v).to_owned()))
                    .collect();
                let series = self.family.get_or_create_owned(&labels);
                (values.iter().map(|v| Box::from(*v)).collect(), series)
            },
            |series| {
                series.inc_by(amount);
            },
        );
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
    CounterVec {
        family,
        labels,
        series: Arc::new(Series::new()),
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{SERIES_AT_HAND, counter, record_client_request, record_server_request, render};

    /// The value of the line of `text` that starts with `series` followed by a space.
    fn value_of(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    }

    #[test]
    fn every_series_counts_its_own_recordings_beyond_those_kept_at_hand() {
        let kinds = SERIES_AT_HAND + 8;
        let orders = counter("series_test_orders", "test", &["kind", "shop"]);
        let kind_names: Vec<String> = (0..kinds).map(|k| format!("kind-{k}")).collect();
        for round in 0..3 {
            for (k, kind) in kind_names.iter().enumerate() {
                // Series k gets k + 1 in each round; its twin in the other shop gets 1.
                orders.add(&[kind, "north"], (k + 1) as f64);
                if round == 0 {
                    orders.inc(&[kind, "south"]);
                }
            }
        }
        // Series that differ in one label only: the status, the method, the route or server.
        for status in 0..kinds as u16 {
            for _ in 0..=status % 3 {
                record_server_request("GET", "/series-test", 600 + status, Duration::ZERO, None);
            }
            record_server_request("PUT", "/series-test", 600 + status, Duration::ZERO, None);
            record_server_request("GET", "/series-test/b", 600 + status, Duration::ZERO, None);
            for (server, times) in [("series-test", 1), ("series-test-b", 2)] {
                for _ in 0..times {
                    record_client_request(server, "PUT", Some(600 + status), Duration::ZERO, None);
                }
            }
            record_client_request(
                "series-test",
                "GET",
                Some(600 + status),
                Duration::ZERO,
                None,
            );
        }
        record_client_request("series-test", "PUT", None, Duration::ZERO, None);

        let text = render();
        for (k, kind) in kind_names.iter().enumerate() {
            let north = format!("series_test_orders_total{{kind=\"{kind}\",shop=\"north\"}}");
            assert_eq!(
                value_of(&text, &north),
                Some(3.0 * (k + 1) as f64),
                "{north}"
            );
            let south = format!("series_test_orders_total{{kind=\"{kind}\",shop=\"south\"}}");
            assert_eq!(value_of(&text, &south), Some(1.0), "{south}");
        }
        let server = |method: &str, route: &str, status: u16| {
            format!(
                "http_server_request_duration_seconds_count{{http_request_method=\"{method}\",http_route=\"{route}\",http_response_status_code=\"{status}\"}}"
            )
        };
        let client = |address: &str, method: &str, status: u16| {
            format!(
                "http_client_request_duration_seconds_count{{server_address=\"{address}\",http_request_method=\"{method}\",http_response_status_code=\"{status}\"}}"
            )
        };
        for status in (0..kinds as u16).map(|s| 600 + s) {
            let expected = [
                (
                    server("GET", "/series-test", status),
                    f64::from((status - 600) % 3 + 1),
                ),
                (server("PUT", "/series-test", status), 1.0),
                (server("GET", "/series-test/b", status), 1.0),
                (client("series-test", "PUT", status), 1.0),
                (client("series-test-b", "PUT", status), 2.0),
                (client("series-test", "GET", status), 1.0),
            ];
            for (series, count) in expected {
                assert_eq!(value_of(&text, &series), Some(count), "{series}");
            }
        }
        let failed = "http_client_request_duration_seconds_count{server_address=\"series-test\",http_request_method=\"PUT\",http_response_status_code=\"error\"}";
        assert_eq!(value_of(&text, failed), Some(1.0));
    }
}
