//! Tempo's JSON for a trace (`GET /api/traces/{id}`) and for search results, both ways: the
//! store answers in it, and [`crate::TempoClient`] reads it from the store or from a real Tempo.
//!
//! A trace is the OTLP/JSON mapping under `batches`: span and trace ids in base64, 64-bit
//! integers and times as strings, kinds and status codes as enum names (`SPAN_KIND_SERVER`).

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{AttributeValue, SpanEvent, SpanKind, SpanStatus, StoredSpan};

/// `GET /api/traces/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TraceJson {
    /// Spans grouped by the resource (service instance) that sent them.
    #[serde(default)]
    pub batches: Vec<BatchJson>,
}

/// The spans of one resource.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchJson {
    /// The resource.
    #[serde(default)]
    pub resource: ResourceJson,
    /// Spans by instrumentation scope (`instrumentationLibrarySpans` in older Tempo versions).
    #[serde(default, alias = "instrumentationLibrarySpans")]
    pub scope_spans: Vec<ScopeSpansJson>,
}

/// Resource attributes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResourceJson {
    /// Attributes such as `service.name`.
    #[serde(default)]
    pub attributes: Vec<KeyValueJson>,
}

/// The spans of one instrumentation scope.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeSpansJson {
    /// The scope (`instrumentationLibrary` in older Tempo versions).
    #[serde(default, alias = "instrumentationLibrary")]
    pub scope: ScopeJson,
    /// The spans.
    #[serde(default)]
    pub spans: Vec<SpanJson>,
}

/// An instrumentation scope.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScopeJson {
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// A span.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanJson {
    /// Base64 (hex accepted when reading).
    pub trace_id: String,
    /// Base64 (hex accepted when reading).
    pub span_id: String,
    /// Base64; absent for a root span.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent_span_id: String,
    /// The W3C `tracestate`; absent if empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trace_state: String,
    /// The span name.
    #[serde(default)]
    pub name: String,
    /// `SPAN_KIND_SERVER`, …
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Nanoseconds since the epoch, as a string.
    #[serde(
        deserialize_with = "u64_from_string_or_number",
        serialize_with = "u64_as_string"
    )]
    pub start_time_unix_nano: u64,
    /// Nanoseconds since the epoch, as a string.
    #[serde(
        deserialize_with = "u64_from_string_or_number",
        serialize_with = "u64_as_string"
    )]
    pub end_time_unix_nano: u64,
    /// Span attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<KeyValueJson>,
    /// Span events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventJson>,
    /// Status; `{}` when unset.
    #[serde(default)]
    pub status: StatusJson,
}

/// A span event.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventJson {
    /// Nanoseconds since the epoch, as a string.
    #[serde(
        default,
        deserialize_with = "u64_from_string_or_number",
        serialize_with = "u64_as_string"
    )]
    pub time_unix_nano: u64,
    /// `exception` for a recorded error.
    #[serde(default)]
    pub name: String,
    /// Event attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<KeyValueJson>,
}

/// A span status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusJson {
    /// `STATUS_CODE_ERROR` or `STATUS_CODE_OK`; absent when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The description of an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An attribute.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyValueJson {
    /// The key.
    pub key: String,
    /// The value.
    #[serde(default)]
    pub value: AnyValueJson,
}

/// An attribute value: exactly one field is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnyValueJson {
    /// A string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    /// A 64-bit integer, as a string.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_i64"
    )]
    pub int_value: Option<String>,
    /// A double.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub double_value: Option<f64>,
    /// A boolean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bool_value: Option<bool>,
}

/// One hit of `GET /api/search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    /// Hex trace id.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// `service.name` of the root span.
    #[serde(default)]
    pub root_service_name: String,
    /// Name of the root span.
    #[serde(default)]
    pub root_trace_name: String,
    /// Start of the trace, nanoseconds since the epoch, as a string.
    #[serde(
        deserialize_with = "u64_from_string_or_number",
        serialize_with = "u64_as_string"
    )]
    pub start_time_unix_nano: u64,
    /// Duration of the trace in milliseconds (absent in Tempo when under 1 ms).
    #[serde(default)]
    pub duration_ms: u64,
}

/// The answer of `GET /api/search`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SearchResponse {
    /// Matching traces, most recent first.
    #[serde(default)]
    pub traces: Vec<SearchHit>,
}

/// Why a trace in Tempo's JSON could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable span {span:?}: {reason}")]
pub struct TempoJsonError {
    span: String,
    reason: String,
}

/// Converts spans of one trace to Tempo's JSON.
pub fn to_tempo_json(spans: &[StoredSpan]) -> TraceJson {
    // One batch per resource, one scope list per scope name, in first-seen order.
    let mut batches: Vec<(BTreeMap<String, AttributeValue>, BatchJson)> = Vec::new();
    for span in spans {
        let index = match batches.iter().position(|(r, _)| *r == span.resource) {
            Some(i) => i,
            None => {
                let resource = ResourceJson {
                    attributes: to_key_values(&span.resource),
                };
                batches.push((
                    span.resource.clone(),
                    BatchJson {
                        resource,
                        scope_spans: vec![],
                    },
                ));
                batches.len() - 1
            }
        };
        let batch = &mut batches[index].1;
        let scope = match batch
            .scope_spans
            .iter()
            .position(|s| s.scope.name == span.scope_name)
        {
            Some(i) => i,
            None => {
                batch.scope_spans.push(ScopeSpansJson {
                    scope: ScopeJson {
                        name: span.scope_name.clone(),
                    },
                    spans: vec![],
                });
                batch.scope_spans.len() - 1
            }
        };
        batch.scope_spans[scope].spans.push(span_to_json(span));
    }
    TraceJson {
        batches: batches.into_iter().map(|(_, b)| b).collect(),
    }
}

fn span_to_json(span: &StoredSpan) -> SpanJson {
    let (code, message) = match &span.status {
        SpanStatus::Unset => (None, None),
        SpanStatus::Ok => (Some("STATUS_CODE_OK".to_owned()), None),
        SpanStatus::Error(m) => (Some("STATUS_CODE_ERROR".to_owned()), Some(m.clone())),
    };
    SpanJson {
        trace_id: hex_to_base64(&span.trace_id),
        span_id: hex_to_base64(&span.span_id),
        parent_span_id: span
            .parent_span_id
            .as_deref()
            .map(hex_to_base64)
            .unwrap_or_default(),
        trace_state: span.trace_state.clone(),
        name: span.name.clone(),
        kind: kind_name(span.kind).to_owned(),
        start_time_unix_nano: span.start_unix_nano,
        end_time_unix_nano: span.end_unix_nano,
        attributes: to_key_values(&span.attributes),
        events: span
            .events
            .iter()
            .map(|e| EventJson {
                time_unix_nano: e.time_unix_nano,
                name: e.name.clone(),
                attributes: to_key_values(&e.attributes),
            })
            .collect(),
        status: StatusJson { code, message },
    }
}

/// Reads a trace in Tempo's JSON back into spans.
pub fn from_tempo_json(trace: TraceJson) -> Result<Vec<StoredSpan>, TempoJsonError> {
    let mut spans = Vec::new();
    for batch in trace.batches {
        let resource = from_key_values(batch.resource.attributes);
        let service_name = match resource.get("service.name") {
            Some(AttributeValue::String(name)) => name.clone(),
            _ => "unknown_service".to_owned(),
        };
        for scope in batch.scope_spans {
            for span in scope.spans {
                let id = |raw: &str| {
                    decode_id(raw).ok_or_else(|| TempoJsonError {
                        span: span.name.clone(),
                        reason: format!("{raw:?} is not a base64 or hex id"),
                    })
                };
                let status = match span.status.code.as_deref() {
                    Some("STATUS_CODE_ERROR") => {
                        SpanStatus::Error(span.status.message.clone().unwrap_or_default())
                    }
                    Some("STATUS_CODE_OK") => SpanStatus::Ok,
                    _ => SpanStatus::Unset,
                };
                spans.push(StoredSpan {
                    trace_id: id(&span.trace_id)?,
                    span_id: id(&span.span_id)?,
                    parent_span_id: match span.parent_span_id.as_str() {
                        "" => None,
                        raw => Some(id(raw)?),
                    },
                    trace_state: span.trace_state,
                    kind: kind_from_name(&span.kind),
                    service_name: service_name.clone(),
                    scope_name: scope.scope.name.clone(),
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                    attributes: from_key_values(span.attributes),
                    resource: resource.clone(),
                    status,
                    events: span
                        .events
                        .into_iter()
                        .map(|e| SpanEvent {
                            time_unix_nano: e.time_unix_nano,
                            name: e.name,
                            attributes: from_key_values(e.attributes),
                        })
                        .collect(),
                    name: span.name,
                });
            }
        }
    }
    Ok(spans)
}

/// The OTLP name of a span kind (`SPAN_KIND_SERVER`, …).
pub(crate) fn kind_name(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
        SpanKind::Internal => "SPAN_KIND_INTERNAL",
        SpanKind::Server => "SPAN_KIND_SERVER",
        SpanKind::Client => "SPAN_KIND_CLIENT",
        SpanKind::Producer => "SPAN_KIND_PRODUCER",
        SpanKind::Consumer => "SPAN_KIND_CONSUMER",
    }
}

fn kind_from_name(name: &str) -> SpanKind {
    match name {
        "SPAN_KIND_INTERNAL" => SpanKind::Internal,
        "SPAN_KIND_SERVER" => SpanKind::Server,
        "SPAN_KIND_CLIENT" => SpanKind::Client,
        "SPAN_KIND_PRODUCER" => SpanKind::Producer,
        "SPAN_KIND_CONSUMER" => SpanKind::Consumer,
        _ => SpanKind::Unspecified,
    }
}

fn to_key_values(attributes: &BTreeMap<String, AttributeValue>) -> Vec<KeyValueJson> {
    attributes
        .iter()
        .map(|(key, value)| {
            let mut any = AnyValueJson::default();
            match value {
                AttributeValue::String(s) | AttributeValue::Other(s) => {
                    any.string_value = Some(s.clone())
                }
                AttributeValue::Int(i) => any.int_value = Some(i.to_string()),
                AttributeValue::Double(d) => any.double_value = Some(*d),
                AttributeValue::Bool(b) => any.bool_value = Some(*b),
            }
            KeyValueJson {
                key: key.clone(),
                value: any,
            }
        })
        .collect()
}

fn from_key_values(pairs: Vec<KeyValueJson>) -> BTreeMap<String, AttributeValue> {
    pairs
        .into_iter()
        .map(|kv| {
            let v = kv.value;
            let value = if let Some(s) = v.string_value {
                AttributeValue::String(s)
            } else if let Some(i) = v.int_value.as_deref().and_then(|i| i.parse().ok()) {
                AttributeValue::Int(i)
            } else if let Some(d) = v.double_value {
                AttributeValue::Double(d)
            } else if let Some(b) = v.bool_value {
                AttributeValue::Bool(b)
            } else {
                AttributeValue::Other(String::new())
            };
            (kv.key, value)
        })
        .collect()
}

/// Hex (as stored) to base64 (as Tempo writes ids).
fn hex_to_base64(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    BASE64.encode(bytes)
}

/// A base64 or hex id to lowercase hex.
fn decode_id(raw: &str) -> Option<String> {
    let is_hex = matches!(raw.len(), 16 | 32) && raw.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex {
        return Some(raw.to_ascii_lowercase());
    }
    let bytes = BASE64.decode(raw).ok()?;
    matches!(bytes.len(), 8 | 16).then(|| crate::store::hex(&bytes))
}

fn u64_from_string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Number(n) => Ok(n),
        Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

fn optional_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(i64),
        Text(String),
    }
    Ok(Option::<Raw>::deserialize(d)?.map(|raw| match raw {
        Raw::Number(n) => n.to_string(),
        Raw::Text(s) => s,
    }))
}

/// 64-bit integers are strings in OTLP/JSON: JavaScript numbers cannot hold them exactly.
fn u64_as_string<S: serde::Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&value.to_string())
}
