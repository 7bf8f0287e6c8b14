//! The query API: a faithful subset of Tempo's HTTP API, so that the same client, tests and
//! `demo trace` work against this store and against a real Tempo.
//!
//! - `GET /api/traces/{id}`: the trace in Tempo's JSON; 400 for a malformed id, 404 if unknown.
//! - `GET /api/search?tags=…&minDuration=…&maxDuration=…&limit=…&start=…&end=…`
//! - `GET /ready`, `GET /api/echo`: what Tempo answers.
//! - `GET /api/status`: this store's counts, including evictions (not in Tempo).

use std::{collections::HashMap, future::Future, time::Duration};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;

use crate::{
    StoredSpan, TraceStore,
    tempo::{SearchHit, SearchResponse, to_tempo_json},
};

/// Tempo's default number of search results.
const DEFAULT_LIMIT: usize = 20;

/// The query routes.
pub fn query_router(store: TraceStore) -> Router {
    Router::new()
        .route("/api/traces/{id}", get(trace_by_id))
        .route("/api/search", get(search))
        // Not Tempo's: the log lines of a trace, for `demo trace` (Loki answers this in the stack).
        .route("/api/logs/{id}", get(logs_of_trace))
        // The one Loki query this stack's links and smoke check make (see `loki_query_range`).
        .route("/loki/api/v1/query_range", get(loki_query_range))
        .route(
            "/api/status",
            get(|State(store): State<TraceStore>| async move { Json(store.stats()) }),
        )
        .route("/api/echo", get(|| async { "echo" }))
        .route("/ready", get(|| async { "ready" }))
        .with_state(store)
}

/// Serves the query API on `listener` until `shutdown` completes.
pub async fn serve_query(
    listener: TcpListener,
    store: TraceStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, query_router(store))
        .with_graceful_shutdown(shutdown)
        .await
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, message).into_response()
}

/// `{"logs": [...]}`: the log records of a trace, in time order (an empty list if none).
async fn logs_of_trace(State(store): State<TraceStore>, Path(id): Path<String>) -> Response {
    let Some(id) = normalize_trace_id(&id) else {
        return bad_request(format!(
            "invalid trace id {id:?}: expected up to 32 hex digits"
        ));
    };
    Json(serde_json::json!({ "logs": store.logs(&id) })).into_response()
}

/// Loki's `query_range`, for the one query shape Grafana's trace-to-logs link and the smoke
/// check make: `{service_name="…"} | trace_id="…"` (the filter optional). Anything else is a
/// 400 that says so: this is a stand-in, not a LogQL engine. The answer has Loki's shape:
/// one stream per span, its labels the service and the record's ids (structured metadata in
/// Loki), each value `[nanoseconds, line]`.
async fn loki_query_range(
    State(store): State<TraceStore>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let query = params.get("query").map(String::as_str).unwrap_or("");
    let Some((service, trace_id)) = parse_logs_query(query) else {
        return bad_request(format!(
            "unsupported query {query:?}: this stand-in answers {{service_name=\"…\"}} | trace_id=\"…\" only"
        ));
    };
    let records = match trace_id {
        Some(id) => store.logs(&id),
        None => store.logs_of_service(&service),
    };
    let mut streams: Vec<serde_json::Value> = Vec::new();
    for record in records.iter().filter(|r| r.service_name == service) {
        let labels = serde_json::json!({
            "service_name": record.service_name,
            "trace_id": record.trace_id,
            "span_id": record.span_id,
            "severity_text": record.severity_text,
        });
        let value = serde_json::json!([record.time_unix_nano.to_string(), record.body]);
        match streams.iter_mut().find(|s| s["stream"] == labels) {
            Some(stream) => {
                if let Some(values) = stream["values"].as_array_mut() {
                    values.push(value);
                }
            }
            None => streams.push(serde_json::json!({ "stream": labels, "values": [value] })),
        }
    }
    Json(serde_json::json!({
        "status": "success",
        "data": { "resultType": "streams", "result": streams },
    }))
    .into_response()
}

/// `{service_name="order-service"} | trace_id="4bf9…"` → the service and, if given, the trace
/// id (normalised).
fn parse_logs_query(query: &str) -> Option<(String, Option<String>)> {
    let quoted = |text: &str, key: &str| -> Option<String> {
        let rest = text
            .trim()
            .strip_prefix(key)?
            .trim_start()
            .strip_prefix('=')?;
        let rest = rest.trim_start().strip_prefix('"')?;
        let (value, tail) = rest.split_once('"')?;
        tail.trim().is_empty().then(|| value.to_owned())
    };
    let (selector, filter) = match query.split_once('|') {
        Some((selector, filter)) => (selector, Some(filter)),
        None => (query, None),
    };
    let inside = selector.trim().strip_prefix('{')?.strip_suffix('}')?;
    let service = quoted(inside, "service_name")?;
    let trace_id = match filter {
        Some(filter) => Some(normalize_trace_id(&quoted(filter, "trace_id")?)?),
        None => None,
    };
    Some((service, trace_id))
}

async fn trace_by_id(State(store): State<TraceStore>, Path(id): Path<String>) -> Response {
    let Some(id) = normalize_trace_id(&id) else {
        return bad_request(format!(
            "invalid trace id {id:?}: expected up to 32 hex digits"
        ));
    };
    let spans = store.trace(&id);
    if spans.is_empty() {
        return (StatusCode::NOT_FOUND, "trace not found").into_response();
    }
    Json(to_tempo_json(&spans)).into_response()
}

/// Tempo accepts ids shorter than 32 hex digits and pads them with zeros on the left.
fn normalize_trace_id(raw: &str) -> Option<String> {
    let valid = (1..=32).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| format!("{:0>32}", raw.to_ascii_lowercase()))
}

/// What `GET /api/search` filters on.
#[derive(Debug, Default)]
struct SearchQuery {
    tags: Vec<(String, String)>,
    min_duration: Option<Duration>,
    max_duration: Option<Duration>,
    limit: usize,
    /// Unix seconds.
    start: Option<u64>,
    end: Option<u64>,
}

impl SearchQuery {
    fn parse(params: &HashMap<String, String>) -> Result<Self, String> {
        let seconds = |name: &str| -> Result<Option<u64>, String> {
            params
                .get(name)
                .map(|v| {
                    v.parse()
                        .map_err(|_| format!("invalid {name} {v:?}: expected Unix seconds"))
                })
                .transpose()
        };
        let duration = |name: &str| -> Result<Option<Duration>, String> {
            params
                .get(name)
                .map(|v| {
                    parse_go_duration(v).ok_or_else(|| {
                        format!("invalid {name} {v:?}: expected a duration such as 100ms or 1.5s")
                    })
                })
                .transpose()
        };
        let limit = match params.get("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => v
                .parse()
                .ok()
                .filter(|&l: &usize| l > 0)
                .ok_or_else(|| format!("invalid limit {v:?}: expected a positive number"))?,
        };
        let tags = match params.get("tags") {
            None => Vec::new(),
            Some(raw) => parse_logfmt(raw).ok_or_else(|| {
                format!("invalid tags {raw:?}: expected key=value pairs separated by spaces")
            })?,
        };
        Ok(Self {
            tags,
            min_duration: duration("minDuration")?,
            max_duration: duration("maxDuration")?,
            limit,
            start: seconds("start")?,
            end: seconds("end")?,
        })
    }

    fn matches(&self, summary: &TraceSummary, spans: &[StoredSpan]) -> bool {
        let duration = summary.duration();
        // A trace is in a time range when it overlaps it, as in Tempo.
        let (first, last) = (summary.start / 1_000_000_000, summary.end / 1_000_000_000);
        self.min_duration.is_none_or(|min| duration >= min)
            && self.max_duration.is_none_or(|max| duration <= max)
            && self.start.is_none_or(|s| last >= s)
            && self.end.is_none_or(|e| first <= e)
            && self
                .tags
                .iter()
                .all(|(key, value)| spans.iter().any(|span| has_tag(span, key, value)))
    }
}

/// A tag matches the span name (`name`), a span attribute or a resource attribute.
fn has_tag(span: &StoredSpan, key: &str, value: &str) -> bool {
    if key == "name" {
        return span.name == value;
    }
    let equals = |v: &crate::AttributeValue| match v {
        crate::AttributeValue::String(s) | crate::AttributeValue::Other(s) => s == value,
        crate::AttributeValue::Int(i) => i.to_string() == value,
        crate::AttributeValue::Double(d) => d.to_string() == value,
        crate::AttributeValue::Bool(b) => b.to_string() == value,
    };
    span.attributes.get(key).is_some_and(equals) || span.resource.get(key).is_some_and(equals)
}

struct TraceSummary {
    start: u64,
    end: u64,
    root_service: String,
    root_name: String,
}

impl TraceSummary {
    fn of(spans: &[StoredSpan]) -> Option<Self> {
        let start = spans.iter().map(|s| s.start_unix_nano).min()?;
        let end = spans.iter().map(|s| s.end_unix_nano).max()?;
        let ids: std::collections::HashSet<&str> =
            spans.iter().map(|s| s.span_id.as_str()).collect();
        let root = spans
            .iter()
            .filter(|s| s.parent_span_id.as_deref().is_none_or(|p| !ids.contains(p)))
            .min_by_key(|s| s.start_unix_nano);
        Some(Self {
            start,
            end,
            // Tempo's words for a trace whose root span has not arrived (yet).
            root_service: root.map_or("<root span not yet received>".into(), |r| {
                r.service_name.clone()
            }),
            root_name: root.map(|r| r.name.clone()).unwrap_or_default(),
        })
    }

    fn duration(&self) -> Duration {
        Duration::from_nanos(self.end.saturating_sub(self.start))
    }
}

async fn search(
    State(store): State<TraceStore>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let query = match SearchQuery::parse(&params) {
        Ok(query) => query,
        Err(message) => return bad_request(message),
    };
    let mut hits: Vec<SearchHit> = store
        .traces()
        .iter()
        .filter_map(|spans| {
            let summary = TraceSummary::of(spans)?;
            query.matches(&summary, spans).then(|| SearchHit {
                trace_id: spans[0].trace_id.clone(),
                root_service_name: summary.root_service.clone(),
                root_trace_name: summary.root_name.clone(),
                start_time_unix_nano: summary.start,
                duration_ms: summary.duration().as_millis() as u64,
            })
        })
        .collect();
    hits.sort_by_key(|hit| std::cmp::Reverse(hit.start_time_unix_nano));
    hits.truncate(query.limit);
    Json(SearchResponse { traces: hits }).into_response()
}

/// `key=value key2="value with spaces"`.
fn parse_logfmt(raw: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut rest = raw.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return None;
        }
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let (value, after) = quoted.split_once('"')?;
                (value, after)
            }
            None => after.split_once(char::is_whitespace).unwrap_or((after, "")),
        };
        pairs.push((key.to_owned(), value.to_owned()));
        rest = after.trim_start();
    }
    Some(pairs)
}

/// Go's duration syntax, as Tempo takes it: `300ms`, `1.5s`, `2m30s`, `1h`, `250us`.
fn parse_go_duration(raw: &str) -> Option<Duration> {
    let mut total = 0.0_f64;
    let mut rest = raw.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_to_logs_query_is_understood_and_others_are_refused() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(
            parse_logs_query(&format!(
                r#"{{service_name="order-service"}} | trace_id="{id}""#
            )),
            Some(("order-service".to_owned(), Some(id.to_owned())))
        );
        assert_eq!(
            parse_logs_query(r#"{ service_name = "inventory-service" }"#),
            Some(("inventory-service".to_owned(), None))
        );
        for unsupported in [
            r#"{service_name=~".+"}"#,
            r#"{job="x"}"#,
            r#"{service_name="a"} |= "boom""#,
            r#"{service_name="a"} | trace_id="not-hex""#,
            "",
        ] {
            assert_eq!(parse_logs_query(unsupported), None, "{unsupported}");
        }
    }

    #[test]
    fn go_durations_parse_like_tempo() {
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("2m30s"), Some(Duration::from_secs(150)));
        assert_eq!(parse_go_duration("250us"), Some(Duration::from_micros(250)));
        for bad in ["", "5", "ms", "1x", "-1s", "1.2.3s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn logfmt_tags_parse_with_quotes() {
        assert_eq!(
            parse_logfmt(r#"service.name=order-service name="POST /orders""#),
            Some(vec![
                ("service.name".into(), "order-service".into()),
                ("name".into(), "POST /orders".into()),
            ])
        );
        assert_eq!(parse_logfmt("novalue"), None);
        assert_eq!(parse_logfmt(r#"k="unterminated"#), None);
    }

    #[test]
    fn short_trace_ids_are_padded_and_bad_ones_refused() {
        assert_eq!(
            normalize_trace_id("AB").as_deref(),
            Some("000000000000000000000000000000ab")
        );
        assert_eq!(normalize_trace_id(&"f".repeat(33)), None);
        assert_eq!(normalize_trace_id("xyz"), None);
        assert_eq!(normalize_trace_id(""), None);
    }
}
