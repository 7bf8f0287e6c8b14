//! Span metrics and the service graph, computed from every span received: what the compose
//! stack's Collector computes with its `spanmetrics` and `servicegraph` connectors, with the
//! same metric and label names as their Prometheus exporter writes, served on `GET /metrics`.
//!
//! This is what lets the stack's real Prometheus, its recording rules and every query Grafana
//! makes run in `cargo test` with the trace-store where the Collector would be. The names follow
//! opentelemetry-collector-contrib v0.150.1 (`connector/spanmetricsconnector`,
//! `connector/servicegraphconnector`, translated by `exporter/prometheusexporter`):
//! - `traces_spanmetrics_calls_total` and `traces_spanmetrics_duration_seconds` (histogram),
//!   labelled `service_name`, `span_name`, `span_kind` (`SPAN_KIND_SERVER`, …), `status_code`
//!   (`STATUS_CODE_UNSET`, …) and one label per configured dimension (`http_route`, …);
//! - `traces_service_graph_request_total`, `traces_service_graph_request_failed_total`,
//!   `traces_service_graph_request_server_seconds` and `…_client_seconds` (histograms),
//!   labelled `client`, `server`, `connection_type`, and `client_<dim>` / `server_<dim>`.
//!
//! An edge is a CLIENT span and the SERVER span whose parent it is, paired when the second
//! half arrives. Unlike the Collector's store, halves never expire here: the store keeps every
//! span until it is evicted, so no edge is lost to timing.

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
};
use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        family::{Family, MetricConstructor},
        histogram::Histogram,
    },
    registry::{Registry, Unit},
};

use crate::{AttributeValue, SpanStatus, StoredSpan};

/// What the connectors are set to: the dimensions and histogram buckets of the compose
/// stack's Collector (`otel-collector/otel-collector.yml`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorConfig {
    /// Span attributes added as labels to the span metrics.
    pub spanmetrics_dimensions: Vec<String>,
    /// Bucket bounds of `traces_spanmetrics_duration_seconds`, in seconds.
    pub spanmetrics_buckets: Vec<f64>,
    /// Span attributes added (prefixed `client_` / `server_`) to the service graph.
    pub servicegraph_dimensions: Vec<String>,
    /// Bucket bounds of the service graph's latency histograms, in seconds.
    pub servicegraph_buckets: Vec<f64>,
}

impl Default for ConnectorConfig {
    /// The settings of the repository's `otel-collector/otel-collector.yml`.
    fn default() -> Self {
        Self {
            spanmetrics_dimensions: vec![
                "http.request.method".into(),
                "http.route".into(),
                "http.response.status_code".into(),
            ],
            spanmetrics_buckets: vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.35, 0.5, 1.0, 2.5, 5.0, 10.0,
            ],
            servicegraph_dimensions: vec!["http.request.method".into()],
            servicegraph_buckets: vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.35, 0.5, 1.0, 2.5, 5.0,
            ],
        }
    }
}

type Labels = Vec<(String, String)>;

/// Makes histograms with the configured buckets.
#[derive(Debug, Clone)]
struct Buckets(Arc<Vec<f64>>);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

type Histograms = Family<Labels, Histogram, Buckets>;

/// The connectors' metrics. Cloning shares them.
#[derive(Clone)]
pub struct ConnectorMetrics {
    config: Arc<ConnectorConfig>,
    registry: Arc<Mutex<Registry>>,
    calls: Family<Labels, Counter>,
    duration: Histograms,
    requests: Family<Labels, Counter>,
    failed: Family<Labels, Counter>,
    server_seconds: Histograms,
    client_seconds: Histograms,
}

impl Default for ConnectorMetrics {
    fn default() -> Self {
        Self::new(ConnectorConfig::default())
    }
}

impl ConnectorMetrics {
    /// Empty metrics with `config`.
    pub fn new(config: ConnectorConfig) -> Self {
        let histograms = |buckets: &[f64]| -> Histograms {
            Family::new_with_constructor(Buckets(Arc::new(buckets.to_vec())))
        };
        let metrics = Self {
            calls: Family::default(),
            duration: histograms(&config.spanmetrics_buckets),
            requests: Family::default(),
            failed: Family::default(),
            server_seconds: histograms(&config.servicegraph_buckets),
            client_seconds: histograms(&config.servicegraph_buckets),
            config: Arc::new(config),
            registry: Arc::new(Mutex::new(Registry::default())),
        };
        {
            let mut registry = metrics.lock();
            registry.register(
                "traces_spanmetrics_calls",
                "Spans, by service, name, kind and status (spanmetrics connector)",
                metrics.calls.clone(),
            );
            registry.register_with_unit(
                "traces_spanmetrics_duration",
                "Span durations (spanmetrics connector)",
                Unit::Seconds,
                metrics.duration.clone(),
            );
            registry.register(
                "traces_service_graph_request",
                "Requests between two services (servicegraph connector)",
                metrics.requests.clone(),
            );
            registry.register(
                "traces_service_graph_request_failed",
                "Failed requests between two services (servicegraph connector)",
                metrics.failed.clone(),
            );
            registry.register_with_unit(
                "traces_service_graph_request_server",
                "Request durations as the server saw them (servicegraph connector)",
                Unit::Seconds,
                metrics.server_seconds.clone(),
            );
            registry.register_with_unit(
                "traces_service_graph_request_client",
                "Request durations as the client saw them (servicegraph connector)",
                Unit::Seconds,
                metrics.client_seconds.clone(),
            );
        }
        metrics
    }

    /// Counts one span in the span metrics.
    pub fn record_span(&self, span: &StoredSpan) {
        let mut labels = vec![
            ("service_name".to_owned(), span.service_name.clone()),
            ("span_name".to_owned(), span.name.clone()),
            (
                "span_kind".to_owned(),
                crate::tempo::kind_name(span.kind).to_owned(),
            ),
            (
                "status_code".to_owned(),
                status_label(&span.status).to_owned(),
            ),
        ];
        labels.extend(dimensions("", &self.config.spanmetrics_dimensions, span));
        self.calls.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(span.duration().as_secs_f64());
    }

    /// Counts one request from `client` (a CLIENT span) to `server` (its SERVER child).
    pub fn record_edge(&self, client: &StoredSpan, server: &StoredSpan) {
        let mut labels = vec![
            ("client".to_owned(), client.service_name.clone()),
            ("server".to_owned(), server.service_name.clone()),
        ];
        labels.extend(dimensions(
            "client_",
            &self.config.servicegraph_dimensions,
            client,
        ));
        labels.extend(dimensions(
            "server_",
            &self.config.servicegraph_dimensions,
            server,
        ));
        self.requests.get_or_create(&labels).inc();
        let failed = |s: &StoredSpan| matches!(s.status, SpanStatus::Error(_));
        if failed(client) || failed(server) {
            self.failed.get_or_create(&labels).inc();
        }
        self.server_seconds
            .get_or_create(&labels)
            .observe(server.duration().as_secs_f64());
        self.client_seconds
            .get_or_create(&labels)
            .observe(client.duration().as_secs_f64());
    }

    /// The metrics as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.lock());
        text
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `GET /metrics` with the connectors' metrics.
pub fn metrics_router(metrics: ConnectorMetrics) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(metrics)
}

async fn serve_metrics(State(metrics): State<ConnectorMetrics>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
        .into_response()
}

/// `prefix` + the attribute name with dots as underscores, for each dimension the span has.
fn dimensions(prefix: &str, names: &[String], span: &StoredSpan) -> Vec<(String, String)> {
    names
        .iter()
        .filter_map(|name| {
            let value = match span.attributes.get(name)? {
                AttributeValue::String(s) => s.clone(),
                AttributeValue::Int(i) => i.to_string(),
                AttributeValue::Double(d) => d.to_string(),
                AttributeValue::Bool(b) => b.to_string(),
                AttributeValue::Other(o) => o.clone(),
            };
            Some((format!("{prefix}{}", name.replace('.', "_")), value))
        })
        .collect()
}

fn status_label(status: &SpanStatus) -> &'static str {
    match status {
        SpanStatus::Unset => "STATUS_CODE_UNSET",
        SpanStatus::Ok => "STATUS_CODE_OK",
        SpanStatus::Error(_) => "STATUS_CODE_ERROR",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::SpanKind;

    fn span(service: &str, kind: SpanKind, status: SpanStatus) -> StoredSpan {
        StoredSpan {
            trace_id: "0".repeat(32),
            span_id: "1".repeat(16),
            parent_span_id: None,
            trace_state: String::new(),
            name: "POST /charges".into(),
            kind,
            service_name: service.into(),
            scope_name: String::new(),
            start_unix_nano: 1_000_000_000,
            end_unix_nano: 1_030_000_000,
            attributes: BTreeMap::from([
                (
                    "http.request.method".into(),
                    AttributeValue::String("POST".into()),
                ),
                ("http.response.status_code".into(), AttributeValue::Int(502)),
            ]),
            resource: BTreeMap::new(),
            status,
            events: Vec::new(),
        }
    }

    #[test]
    fn a_span_and_an_edge_are_written_with_the_collector_connectors_names_and_labels() {
        let metrics = ConnectorMetrics::default();
        let client = span("order-service", SpanKind::Client, SpanStatus::Unset);
        let server = span("payment-service", SpanKind::Server, SpanStatus::Unset);
        metrics.record_span(&server);
        metrics.record_edge(&client, &server);
        let text = metrics.encode();
        for line in [
            r#"traces_spanmetrics_calls_total{service_name="payment-service",span_name="POST /charges",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET",http_request_method="POST",http_response_status_code="502"} 1"#,
            r#"traces_spanmetrics_duration_seconds_bucket{le="0.05",service_name="payment-service""#,
            r#"traces_service_graph_request_total{client="order-service",server="payment-service",client_http_request_method="POST",server_http_request_method="POST"} 1"#,
            r#"traces_service_graph_request_server_seconds_bucket{le="0.05",client="order-service""#,
            r#"traces_service_graph_request_client_seconds_sum{client="order-service""#,
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
        // As the Collector's connector: no failed series until a request fails.
        assert!(
            !text.contains("traces_service_graph_request_failed_total{"),
            "{text}"
        );
    }

    #[test]
    fn a_failed_request_counts_as_a_failed_edge() {
        let metrics = ConnectorMetrics::default();
        let client = span(
            "order-service",
            SpanKind::Client,
            SpanStatus::Error("502".into()),
        );
        let server = span(
            "payment-service",
            SpanKind::Server,
            SpanStatus::Error("boom".into()),
        );
        metrics.record_edge(&client, &server);
        let text = metrics.encode();
        assert!(
            text.contains(r#"traces_service_graph_request_failed_total{client="order-service",server="payment-service""#),
            "{text}"
        );
    }
}
