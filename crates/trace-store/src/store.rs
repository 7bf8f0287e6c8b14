//! The in-memory span store.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value},
    trace::v1::{Span, span, status},
};
use tokio::sync::Notify;

/// A span as received, flattened: ids in lowercase hex, the service name of its resource.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSpan {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits; `None` for a root span.
    pub parent_span_id: Option<String>,
    /// The span name.
    pub name: String,
    /// SERVER, CLIENT, …
    pub kind: SpanKind,
    /// `service.name` of the resource that sent it.
    pub service_name: String,
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
    /// Event name (`exception` for recorded errors).
    pub name: String,
    /// Event attributes.
    pub attributes: BTreeMap<String, AttributeValue>,
}

/// Shared handle to the spans received so far. Cloning it is cheap and shares the store.
#[derive(Clone, Default)]
pub struct TraceStore {
    /// Spans by trace id, in arrival order.
    traces: Arc<Mutex<HashMap<String, Vec<StoredSpan>>>>,
    /// Woken on every ingest, for [`TraceStore::wait_for`].
    arrived: Arc<Notify>,
}

impl TraceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the spans of one OTLP export request; returns how many were stored.
    pub fn ingest(&self, request: ExportTraceServiceRequest) -> usize {
        let mut stored = 0;
        let mut traces = self.lock();
        for resource_spans in request.resource_spans {
            let resource = resource_spans
                .resource
                .map(|r| attributes(r.attributes))
                .unwrap_or_default();
            let service_name = match resource.get("service.name") {
                Some(AttributeValue::String(name)) => name.clone(),
                _ => "unknown_service".to_owned(),
            };
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    let span = flatten(span, &service_name, &resource);
                    traces.entry(span.trace_id.clone()).or_default().push(span);
                    stored += 1;
                }
            }
        }
        drop(traces);
        self.arrived.notify_waiters();
        stored
    }

    /// All spans of `trace_id` (hex), in arrival order.
    pub fn trace(&self, trace_id: &str) -> Vec<StoredSpan> {
        self.lock()
            .get(&trace_id.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    /// Ids of every trace held.
    pub fn trace_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Number of spans held.
    pub fn span_count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// Waits until `done` holds for the spans of `trace_id`, or `timeout` passes; returns the
    /// spans either way, so the caller's assertion shows what did arrive.
    pub async fn wait_for(
        &self,
        trace_id: &str,
        timeout: Duration,
        done: impl Fn(&[StoredSpan]) -> bool,
    ) -> Vec<StoredSpan> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.arrived.notified();
            let spans = self.trace(trace_id);
            if done(&spans) {
                return spans;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.trace(trace_id);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<StoredSpan>>> {
        // A panic while holding the lock cannot leave the map half-written (each insert is one
        // push), so a poisoned lock is still safe to read.
        self.traces.lock().unwrap_or_else(|e| e.into_inner())
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
        name: span.name,
        kind: SpanKind::from(span.kind),
        service_name: service_name.to_owned(),
        start_unix_nano: span.start_time_unix_nano,
        end_unix_nano: span.end_time_unix_nano,
        attributes: attributes(span.attributes),
        resource: resource.clone(),
        status,
        events: span
            .events
            .into_iter()
            .map(|e| SpanEvent {
                name: e.name,
                attributes: attributes(e.attributes),
            })
            .collect(),
    }
}

fn attributes(pairs: Vec<KeyValue>) -> BTreeMap<String, AttributeValue> {
    pairs
        .into_iter()
        .map(|kv| (kv.key, value(kv.value)))
        .collect()
}

fn value(value: Option<AnyValue>) -> AttributeValue {
    match value.and_then(|v| v.value) {
        Some(any_value::Value::StringValue(s)) => AttributeValue::String(s),
        Some(any_value::Value::IntValue(i)) => AttributeValue::Int(i),
        Some(any_value::Value::DoubleValue(d)) => AttributeValue::Double(d),
        Some(any_value::Value::BoolValue(b)) => AttributeValue::Bool(b),
        other => AttributeValue::Other(format!("{other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
