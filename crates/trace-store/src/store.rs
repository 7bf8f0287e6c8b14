//! The in-memory span store.

use std::{
    collections::{BTreeMap, HashMap, VecDeque, hash_map::Entry},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::{logs::v1::ExportLogsServiceRequest, trace::v1::ExportTraceServiceRequest},
    common::v1::{AnyValue, KeyValue, any_value},
    trace::v1::{Span, span, status},
};
use tokio::sync::Notify;

use crate::{
    connectors::{ConnectorConfig, ConnectorMetrics},
    logs::{DEFAULT_MAX_LOGS, LogBook, StoredLog},
};

/// A span as received, flattened: ids in lowercase hex, the service name of its resource.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSpan {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits; `None` for a root span.
    pub parent_span_id: Option<String>,
    /// The W3C `tracestate` the span was made with; empty if none.
    pub trace_state: String,
    /// The span name.
    pub name: String,
    /// SERVER, CLIENT, …
    pub kind: SpanKind,
    /// `service.name` of the resource that sent it.
    pub service_name: String,
    /// Name of the instrumentation scope (the tracer) that made it.
    pub scope_name: String,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// End time, nanoseconds since the Unix epoch.
    pub end_unix_nano: u64,
    /// Span attributes.
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Attributes of the resource that sent the span.
    pub resource: BTreeMap<String, AttributeValue>,
    /// Status.
    pub status: SpanStatus,
    /// Span events (logs, exceptions).
    pub events: Vec<SpanEvent>,
}

impl StoredSpan {
    /// Duration of the span.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_unix_nano.saturating_sub(self.start_unix_nano))
    }

    /// A string attribute, if present and a string.
    pub fn str_attribute(&self, key: &str) -> Option<&str> {
        match self.attributes.get(key) {
            Some(AttributeValue::String(s)) => Some(s),
            _ => None,
        }
    }

    /// An integer attribute, if present and an integer.
    pub fn int_attribute(&self, key: &str) -> Option<i64> {
        match self.attributes.get(key) {
            Some(AttributeValue::Int(i)) => Some(*i),
            _ => None,
        }
    }
}

/// The kinds of OTLP spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// Not specified by the sender.
    Unspecified,
    /// Internal operation.
    Internal,
    /// Handles a remote request.
    Server,
    /// Makes a remote request.
    Client,
    /// Sends a message.
    Producer,
    /// Receives a message.
    Consumer,
}

impl From<i32> for SpanKind {
    fn from(kind: i32) -> Self {
        match span::SpanKind::try_from(kind) {
            Ok(span::SpanKind::Internal) => Self::Internal,
            Ok(span::SpanKind::Server) => Self::Server,
            Ok(span::SpanKind::Client) => Self::Client,
            Ok(span::SpanKind::Producer) => Self::Producer,
            Ok(span::SpanKind::Consumer) => Self::Consumer,
            _ => Self::Unspecified,
        }
    }
}

/// A span's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanStatus {
    /// Not set.
    Unset,
    /// Explicitly OK.
    Ok,
    /// Failed, with the description.
    Error(String),
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// A string.
    String(String),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// Arrays, maps and bytes, in their debug form.
    Other(String),
}

/// A span event.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    /// When it happened, nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    /// Event name (`exception` for recorded errors).
    pub name: String,
    /// Event attributes.
    pub attributes: BTreeMap<String, AttributeValue>,
}

/// What one export request did to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// Spans stored.
    pub stored: usize,
    /// Spans refused as malformed.
    pub refused: u64,
    /// Why (the last one) was refused.
    pub refusal: Option<String>,
}

/// The default capacity of a store, in spans.
pub const DEFAULT_MAX_SPANS: usize = 100_000;

/// Counts describing a store, as `GET /api/status` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoreStats {
    /// Spans held.
    pub spans: usize,
    /// Traces held.
    pub traces: usize,
    /// The most spans held at once.
    pub max_spans: usize,
    /// Spans evicted to stay within `max_spans`, since start.
    pub evicted_spans: u64,
    /// Traces evicted, since start.
    pub evicted_traces: u64,
    /// Spans refused as malformed (an attribute key twice, say), since start.
    #[serde(default)]
    pub refused_spans: u64,
}

/// One trace's spans and when they last changed.
#[derive(Default)]
struct TraceEntry {
    spans: Vec<StoredSpan>,
    /// [`Inner::sequence`] at the last span added.
    updated: u64,
}

#[derive(Default)]
struct Inner {
    traces: HashMap<String, TraceEntry>,
    /// Trace ids in the order they were first seen: the eviction order.
    arrival: VecDeque<String>,
    spans: usize,
    max_spans: usize,
    evicted_spans: u64,
    evicted_traces: u64,
    refused_spans: u64,
    /// Why the last refused span was refused.
    last_refusal: Option<String>,
    /// Bumped by every ingest that stores something.
    sequence: u64,
}

impl Inner {
    /// Drops whole traces, oldest first, until the store is within its capacity.
    fn evict(&mut self) -> u64 {
        let mut evicted = 0;
        while self.spans > self.max_spans {
            let Some(oldest) = self.arrival.pop_front() else {
                break;
            };
            if let Some(entry) = self.traces.remove(&oldest) {
                self.spans -= entry.spans.len();
                evicted += entry.spans.len() as u64;
                self.evicted_traces += 1;
            }
        }
        self.evicted_spans += evicted;
        evicted
    }
}

/// Shared handle to the spans received so far, at most `max_spans` of them: when more arrive,
/// whole traces are evicted, oldest first. Cloning the handle is cheap and shares the store.
#[derive(Clone)]
pub struct TraceStore {
    inner: Arc<Mutex<Inner>>,
    /// Log records, bounded apart from the spans.
    logs: Arc<Mutex<LogBook>>,
    /// Woken on every ingest, for [`TraceStore::wait_for`].
    arrived: Arc<Notify>,
    /// Span metrics and service graph of every span received.
    connectors: ConnectorMetrics,
}

impl Default for TraceStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_MAX_SPANS)
    }
}

impl TraceStore {
    /// An empty store holding up to [`DEFAULT_MAX_SPANS`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store holding up to `max_spans` spans.
    pub fn with_capacity(max_spans: usize) -> Self {
        Self::with_connectors(max_spans, ConnectorConfig::default())
    }

    /// An empty store holding up to `max_spans` spans, its connectors set to `config`.
    pub fn with_connectors(max_spans: usize, config: ConnectorConfig) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                max_spans,
                ..Inner::default()
            })),
            logs: Arc::new(Mutex::new(LogBook::new(DEFAULT_MAX_LOGS))),
            arrived: Arc::new(Notify::new()),
            connectors: ConnectorMetrics::new(config),
        }
    }

    /// The span metrics and service graph computed from every span received.
    pub fn connectors(&self) -> &ConnectorMetrics {
        &self.connectors
    }

    /// Adds the spans of one OTLP export request; returns how many were stored and why any
    /// were refused. A span that carries one attribute key twice is refused (and counted in
    /// [`StoreStats::refused_spans`]): a backend would keep one of the two values, so the
    /// other would be lost without a trace, and a test would never see it.
    pub fn ingest(&self, request: ExportTraceServiceRequest) -> Ingested {
        let mut stored = 0;
        let mut refused = 0;
        let mut refusal = None;
        let mut guard = self.lock();
        // Borrow the fields apart: a new trace id goes into both `traces` and `arrival`.
        let inner = &mut *guard;
        let sequence = inner.sequence + 1;
        for resource_spans in request.resource_spans {
            let (resource, service_name) = resource_and_service(resource_spans.resource);
            for scope_spans in resource_spans.scope_spans {
                let scope_name = scope_spans.scope.map(|s| s.name).unwrap_or_default();
                for span in scope_spans.spans {
                    if let Some(key) = duplicate_key(&span.attributes) {
                        refused += 1;
                        refusal = Some(format!(
                            "span {:?} of {service_name} has attribute {key:?} twice",
                            span.name
                        ));
                        continue;
                    }
                    let mut span = flatten(span, &service_name, &resource);
                    span.scope_name.clone_from(&scope_name);
                    let trace_id = span.trace_id.clone();
                    let entry = match inner.traces.entry(trace_id) {
                        Entry::Occupied(e) => e.into_mut(),
                        Entry::Vacant(e) => {
                            inner.arrival.push_back(e.key().clone());
                            e.insert(TraceEntry::default())
                        }
                    };
                    self.connectors.record_span(&span);
                    if let Some(partner) = edge_partner(&entry.spans, &span) {
                        match span.kind {
                            SpanKind::Client => self.connectors.record_edge(&span, partner),
                            _ => self.connectors.record_edge(partner, &span),
                        }
                    }
                    entry.spans.push(span);
                    entry.updated = sequence;
                    stored += 1;
                }
            }
        }
        if stored > 0 {
            inner.spans += stored;
            inner.sequence = sequence;
            let evicted = inner.evict();
            if evicted > 0 {
                let total = inner.evicted_spans;
                // One line per eviction burst, not per span: the count says how many so far.
                tracing::warn!(
                    evicted,
                    total,
                    max_spans = inner.max_spans,
                    "trace store full: evicted the oldest traces"
                );
            }
        }
        if refused > 0 {
            inner.refused_spans += refused;
            inner.last_refusal.clone_from(&refusal);
            tracing::warn!(refused, reason = refusal.as_deref(), "spans refused");
        }
        drop(guard);
        self.arrived.notify_waiters();
        Ingested {
            stored,
            refused,
            refusal,
        }
    }

    /// Adds the records of one OTLP logs export request; returns how many were stored.
    pub fn ingest_logs(&self, request: ExportLogsServiceRequest) -> usize {
        let stored = self.log_book().ingest(request);
        self.arrived.notify_waiters();
        stored
    }

    /// The log records of `trace_id` (hex), in time order.
    pub fn logs(&self, trace_id: &str) -> Vec<StoredLog> {
        self.log_book().of_trace(trace_id)
    }

    /// The log records of `service`, in time order.
    pub fn logs_of_service(&self, service: &str) -> Vec<StoredLog> {
        self.log_book().of_service(service)
    }

    /// Log records held.
    pub fn log_count(&self) -> usize {
        self.log_book().len()
    }

    /// All spans of `trace_id` (hex), in arrival order.
    pub fn trace(&self, trace_id: &str) -> Vec<StoredSpan> {
        self.lock()
            .traces
            .get(&trace_id.to_ascii_lowercase())
            .map(|e| e.spans.clone())
            .unwrap_or_default()
    }

    /// Ids of every trace held, oldest first.
    pub fn trace_ids(&self) -> Vec<String> {
        let inner = self.lock();
        inner
            .arrival
            .iter()
            .filter(|id| inner.traces.contains_key(*id))
            .cloned()
            .collect()
    }

    /// Every trace held, oldest first, each as its spans.
    pub fn traces(&self) -> Vec<Vec<StoredSpan>> {
        let inner = self.lock();
        inner
            .arrival
            .iter()
            .filter_map(|id| inner.traces.get(id).map(|e| e.spans.clone()))
            .collect()
    }

    /// The change counter now, and the ids of traces that received spans after `since`
    /// (a value this method returned before; 0 for all), oldest first.
    pub fn changed_since(&self, since: u64) -> (u64, Vec<String>) {
        let inner = self.lock();
        let changed = inner
            .arrival
            .iter()
            .filter(|id| inner.traces.get(*id).is_some_and(|e| e.updated > since))
            .cloned()
            .collect();
        (inner.sequence, changed)
    }

    /// Number of spans held.
    pub fn span_count(&self) -> usize {
        self.lock().spans
    }

    /// Counts, including evictions.
    pub fn stats(&self) -> StoreStats {
        let inner = self.lock();
        StoreStats {
            spans: inner.spans,
            traces: inner.traces.len(),
            max_spans: inner.max_spans,
            evicted_spans: inner.evicted_spans,
            evicted_traces: inner.evicted_traces,
            refused_spans: inner.refused_spans,
        }
    }

    /// Why the last refused span was refused, if any was.
    pub fn last_refusal(&self) -> Option<String> {
        self.lock().last_refusal.clone()
    }

    /// Waits until `done` holds for the spans of `trace_id`, or `timeout` passes; returns the
    /// spans either way, so the caller's assertion shows what did arrive.
    pub async fn wait_for(
        &self,
        trace_id: &str,
        timeout: Duration,
        done: impl Fn(&[StoredSpan]) -> bool,
    ) -> Vec<StoredSpan> {
        self.wait_until(timeout, || self.trace(trace_id), |spans| done(spans))
            .await
    }

    /// Waits until `done` holds for the log records of `trace_id`, or `timeout` passes; returns
    /// the records either way.
    pub async fn wait_for_logs(
        &self,
        trace_id: &str,
        timeout: Duration,
        done: impl Fn(&[StoredLog]) -> bool,
    ) -> Vec<StoredLog> {
        self.wait_until(timeout, || self.logs(trace_id), |logs| done(logs))
            .await
    }

    /// Reads again after every export received until `done` holds for what `read` returns, or
    /// `timeout` passes.
    async fn wait_until<T>(
        &self,
        timeout: Duration,
        read: impl Fn() -> T,
        done: impl Fn(&T) -> bool,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.arrived.notified();
            let now = read();
            if done(&now) {
                return now;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return read();
            }
        }
    }

    fn log_book(&self) -> MutexGuard<'_, LogBook> {
        // As for `lock`: the book is consistent between any two statements.
        self.logs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the maps consistent before anything in it can panic,
        // so a poisoned lock is still safe to use.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Past this many spans in one trace, no service-graph edge is looked for: a pairing scan of
/// a huge (or hostile) trace would make every ingest slow.
const MAX_PAIRED_TRACE_SPANS: usize = 10_000;

/// The other half of a service-graph edge that `span` completes, among `spans` of its trace: the
/// CLIENT span that is a SERVER span's parent, or the SERVER span that is a CLIENT span's child.
fn edge_partner<'a>(spans: &'a [StoredSpan], span: &StoredSpan) -> Option<&'a StoredSpan> {
    if spans.len() > MAX_PAIRED_TRACE_SPANS {
        return None;
    }
    match span.kind {
        SpanKind::Server => {
            let parent = span.parent_span_id.as_deref()?;
            spans
                .iter()
                .find(|s| s.kind == SpanKind::Client && s.span_id == parent)
        }
        SpanKind::Client => spans.iter().find(|s| {
            s.kind == SpanKind::Server && s.parent_span_id.as_deref() == Some(&span.span_id)
        }),
        _ => None,
    }
}

fn flatten(
    span: Span,
    service_name: &str,
    resource: &BTreeMap<String, AttributeValue>,
) -> StoredSpan {
    let status = match span.status {
        Some(s) if s.code == status::StatusCode::Error as i32 => SpanStatus::Error(s.message),
        Some(s) if s.code == status::StatusCode::Ok as i32 => SpanStatus::Ok,
        _ => SpanStatus::Unset,
    };
    StoredSpan {
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
        trace_state: span.trace_state,
        name: span.name,
        kind: SpanKind::from(span.kind),
        service_name: service_name.to_owned(),
        scope_name: String::new(),
        start_unix_nano: span.start_time_unix_nano,
        end_unix_nano: span.end_time_unix_nano,
        attributes: attributes(span.attributes),
        resource: resource.clone(),
        status,
        events: span
            .events
            .into_iter()
            .map(|e| SpanEvent {
                time_unix_nano: e.time_unix_nano,
                name: e.name,
                attributes: attributes(e.attributes),
            })
            .collect(),
    }
}

/// A key that `pairs` holds more than once.
fn duplicate_key(pairs: &[KeyValue]) -> Option<&str> {
    let mut seen = std::collections::HashSet::with_capacity(pairs.len());
    pairs
        .iter()
        .map(|kv| kv.key.as_str())
        .find(|key| !seen.insert(*key))
}

/// A resource's attributes flattened, and its `service.name` (`unknown_service` without one,
/// as backends name it).
pub(crate) fn resource_and_service(
    resource: Option<opentelemetry_proto::tonic::resource::v1::Resource>,
) -> (BTreeMap<String, AttributeValue>, String) {
    let resource = resource
        .map(|r| attributes(r.attributes))
        .unwrap_or_default();
    let service_name = match resource.get("service.name") {
        Some(AttributeValue::String(name)) => name.clone(),
        _ => "unknown_service".to_owned(),
    };
    (resource, service_name)
}

pub(crate) fn attributes(pairs: Vec<KeyValue>) -> BTreeMap<String, AttributeValue> {
    pairs
        .into_iter()
        .map(|kv| (kv.key, value(kv.value)))
        .collect()
}

pub(crate) fn value(value: Option<AnyValue>) -> AttributeValue {
    match value.and_then(|v| v.value) {
        Some(any_value::Value::StringValue(s)) => AttributeValue::String(s),
        Some(any_value::Value::IntValue(i)) => AttributeValue::Int(i),
        Some(any_value::Value::DoubleValue(d)) => AttributeValue::Double(d),
        Some(any_value::Value::BoolValue(b)) => AttributeValue::Bool(b),
        other => AttributeValue::Other(format!("{other:?}")),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
