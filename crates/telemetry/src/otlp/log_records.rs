//! `ExportLogsServiceRequest`, written straight from the SDK's log records, one at a time as
//! each is written (`processor`): what opentelemetry-otlp 0.33 would send for the same batch
//! (`transform::logs` of opentelemetry-proto: one `ResourceLogs`, one `ScopeLogs` per scope, a
//! record's target naming its scope), without building its structs. The test below decodes
//! both and compares.

use std::borrow::Cow;

use opentelemetry::{InstrumentationScope, logs::AnyValue};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_sdk::{error::OTelSdkError, logs::SdkLogRecord};
use prost::Message as _;

use super::{
    common::{
        BOOL_VALUE, BYTES_VALUE, DOUBLE_VALUE, INT_VALUE, KVLIST_VALUE, VALUES, nanos, pair,
        string_member, string_value,
    },
    processor::Batch,
    request::Request,
    wire::{Member, Writer},
};
use crate::dropped::Throttle;

/// Log records encoded one at a time, as they are written: per scope (a record's target
/// naming it), in order of first appearance, the `ScopeLogs.log_records` fields of its records.
#[derive(Debug, Default)]
pub(crate) struct EncodedLogs {
    /// The scope, the name it is sent with, and its records' bytes.
    groups: Vec<(InstrumentationScope, Cow<'static, str>, Vec<u8>)>,
    count: usize,
    /// The capacity the first group's buffer is made with.
    expected: usize,
}

impl EncodedLogs {
    /// Encodes `record`, written in `scope`, after the others, its string values cut to
    /// `limit` bytes.
    pub(crate) fn push(
        &mut self,
        record: &SdkLogRecord,
        scope: &InstrumentationScope,
        limit: usize,
    ) {
        let name = record.target().map_or(scope.name(), |t| t.as_ref());
        // opentelemetry-proto's key: the name, version, schema URL and attributes.
        let same = |(s, n, _): &(InstrumentationScope, Cow<'static, str>, Vec<u8>)| {
            n.as_ref() == name
                && s.version() == scope.version()
                && s.schema_url() == scope.schema_url()
                && s.attributes().eq(scope.attributes())
        };
        let at = match self.groups.iter().position(same) {
            Some(at) => at,
            None => {
                let name = match record.target() {
                    Some(target) => target.clone(),
                    None => Cow::Owned(scope.name().to_owned()),
                };
                let buf = Vec::with_capacity(std::mem::take(&mut self.expected));
                self.groups.push((scope.clone(), name, buf));
                self.groups.len() - 1
            }
        };
        let buf = &mut self.groups[at].2;
        let mut w = Writer::from_vec(std::mem::take(buf));
        // ScopeLogs.log_records
        w.long_message(2, |w| write_record(w, record, limit));
        *buf = w.into_vec();
        self.count += 1;
    }
}

impl Batch for EncodedLogs {
    const ITEMS: &'static str = "log records";

    fn expecting(bytes: usize) -> Self {
        Self {
            expected: bytes,
            ..Self::default()
        }
    }

    fn len(&self) -> usize {
        self.count
    }

    fn bytes(&self) -> usize {
        self.groups
            .iter()
            .map(|(_, _, records)| records.len())
            .sum()
    }

    /// The `ExportLogsServiceRequest` of these records: one `ResourceLogs`, one `ScopeLogs`
    /// per group.
    fn into_request(self, resource: &[u8], schema_url: &str, limit: usize) -> Request {
        let groups = self.groups.iter().map(|(scope, name, records)| {
            (
                super::common::scope(scope, name, limit),
                records.as_slice(),
                scope.schema_url().unwrap_or_default(),
            )
        });
        super::common::request(resource, schema_url, groups)
    }

    fn answered(response: bytes::Bytes) {
        if let Ok(ExportLogsServiceResponse {
            partial_success: Some(partial),
        }) = ExportLogsServiceResponse::decode(response)
            && (partial.rejected_log_records > 0 || !partial.error_message.is_empty())
        {
            crate::logs::count_rejected(partial.rejected_log_records, &partial.error_message);
        }
    }

    /// Counted, not logged: the span exporter's throttled warning already says the collector
    /// is unreachable.
    fn lost(count: usize, _error: &OTelSdkError, _throttle: &Throttle) {
        crate::logs::count_lost(count, "export_failed");
    }

    /// Counted, not logged: a line about a full queue would wait for that queue itself.
    fn queue_full(_max_queue: usize, _throttle: &Throttle) {
        crate::logs::count_lost(1, "queue_full");
    }
}

/// The request for `batch`, as [`EncodedLogs`] writes it.
#[cfg(test)]
fn request(
    batch: &opentelemetry_sdk::logs::LogBatch<'_>,
    resource: &[u8],
    schema_url: &str,
    limit: usize,
) -> Vec<u8> {
    let mut logs = EncodedLogs::default();
    for (record, scope) in batch.iter() {
        logs.push(record, scope, limit);
    }
    logs.into_request(resource, schema_url, limit)
        .message()
        .to_vec()
}

/// The body of one `LogRecord`, fields in tag order as prost writes them.
fn write_record(w: &mut Writer, record: &SdkLogRecord, limit: usize) {
    w.fixed64(1, record.timestamp().map_or(0, nanos)); // time_unix_nano
    // `Severity` has the protocol's numbers.
    w.enumeration(2, record.severity_number().map_or(0, |s| s as i32)); // severity_number
    w.string(3, record.severity_text().unwrap_or_default()); // severity_text
    if let Some(body) = record.body() {
        w.message(5, |w| any_value(w, body, limit)); // body
    }
    for (key, value) in record.attributes_iter() {
        key_value(w, 6, key.as_str(), value, limit); // attributes
    }
    let context = record.trace_context();
    // flags
    w.fixed32(
        8,
        context
            .and_then(|c| c.trace_flags)
            .map_or(0, |f| u32::from(f.to_u8())),
    );
    if let Some(context) = context {
        w.bytes(9, &context.trace_id.to_bytes()); // trace_id
        w.bytes(10, &context.span_id.to_bytes()); // span_id
    }
    w.fixed64(11, record.observed_timestamp().map_or(0, nanos)); // observed_time_unix_nano
    w.string(12, record.event_name().unwrap_or_default()); // event_name
}

fn key_value(w: &mut Writer, tag: u32, key: &str, value: &AnyValue, limit: usize) {
    let member = match value {
        AnyValue::String(s) => Some(string_member(s.as_str(), limit)),
        AnyValue::Int(i) => Some((INT_VALUE, Member::Varint(*i as u64))),
        AnyValue::Boolean(b) => Some((BOOL_VALUE, Member::Varint(u64::from(*b)))),
        AnyValue::Bytes(bytes) => Some((BYTES_VALUE, Member::Bytes(bytes))),
        _ => None,
    };
    pair(w, tag, key, member, |w| any_value(w, value, limit));
}

/// The body of an `AnyValue` (the log flavour: maps and bytes too).
fn any_value(w: &mut Writer, value: &AnyValue, limit: usize) {
    match value {
        AnyValue::Int(i) => w.varint_always(INT_VALUE, *i as u64),
        AnyValue::Double(f) => w.double_always(DOUBLE_VALUE, *f),
        AnyValue::String(s) => string_value(w, s.as_str(), limit),
        AnyValue::Boolean(b) => w.varint_always(BOOL_VALUE, u64::from(*b)),
        AnyValue::Bytes(bytes) => w.bytes_always(BYTES_VALUE, bytes),
        AnyValue::ListAny(items) => w.message(super::common::ARRAY_VALUE, |w| {
            for item in items.iter() {
                w.message(VALUES, |w| any_value(w, item, limit));
            }
        }),
        AnyValue::Map(map) => w.message(KVLIST_VALUE, |w| {
            for (key, item) in map.iter() {
                key_value(w, VALUES, key.as_str(), item, limit);
            }
        }),
        // A kind of value newer than this code: its debug text rather than nothing.
        other => string_value(w, &format!("{other:?}"), limit),
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::HashMap,
        time::{Duration, SystemTime},
    };

    use opentelemetry::{
        InstrumentationScope, Key,
        logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity},
        trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
    };
    use opentelemetry_proto::{
        tonic::collector::logs::v1::ExportLogsServiceRequest,
        transform::{
            common::tonic::ResourceAttributesWithSchema,
            logs::tonic::group_logs_by_resource_and_scope,
        },
    };
    use opentelemetry_sdk::{
        Resource,
        error::OTelSdkResult,
        logs::{LogBatch, LogProcessor, SdkLogRecord, SdkLoggerProvider},
    };
    use prost::Message as _;

    /// Keeps what it is given, for the batch.
    #[derive(Debug, Default, Clone)]
    struct Keep(std::sync::Arc<std::sync::Mutex<Vec<(SdkLogRecord, InstrumentationScope)>>>);

    impl LogProcessor for Keep {
        fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
            let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
            kept.push((record.clone(), scope.clone()));
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    fn records() -> Vec<(SdkLogRecord, InstrumentationScope)> {
        let kept = Keep::default();
        let provider = SdkLoggerProvider::builder()
            .with_log_processor(kept.clone())
            .build();
        let appender = provider.logger_with_scope(
            InstrumentationScope::builder("opentelemetry-appender-tracing")
                .with_version("0.33.1")
                .build(),
        );
        let span = SpanContext::new(
            TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736),
            SpanId::from(0x00f067aa0ba902b7),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_764_000_000_000_000_001);
        for (target, message) in [
            ("inventory_service::handlers", "stock reserved"),
            ("inventory_service::stock", "slow lookup"),
            ("inventory_service::handlers", "stock released"),
        ] {
            let mut record = appender.create_log_record();
            record.set_target(target);
            record.set_event_name("reservation");
            record.set_timestamp(at);
            record.set_observed_timestamp(at + Duration::from_micros(3));
            record.set_severity_number(Severity::Info);
            record.set_severity_text("INFO");
            record.set_body(AnyValue::String(
                format!("{message} {}", "é".repeat(20)).into(),
            ));
            record.add_attribute("item", "book");
            record.add_attribute("note", "é".repeat(20));
            record.add_attribute("reserved", 8_i64);
            record.add_attribute("ratio", 0.0_f64);
            record.add_attribute("ok", true);
            record.add_attribute("", "an empty key");
            record.add_attribute("k".repeat(200), i64::MAX);
            record.add_attribute("raw", AnyValue::Bytes(Box::new(vec![0, 1, 2])));
            record.add_attribute(
                "list",
                AnyValue::ListAny(Box::new(vec![
                    AnyValue::Int(-1),
                    AnyValue::String("".into()),
                ])),
            );
            record.add_attribute(
                "map",
                AnyValue::Map(Box::new(HashMap::from([(
                    Key::new("nested"),
                    AnyValue::Boolean(false),
                )]))),
            );
            let _attached = opentelemetry::Context::new()
                .with_remote_span_context(span.clone())
                .attach();
            appender.emit(record);
        }
        // One record without a span, a target, a body or a time.
        let bare = appender.create_log_record();
        appender.emit(bare);
        let kept = kept.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.clone()
    }

    fn resource() -> Resource {
        Resource::builder_empty()
            .with_schema_url(
                [opentelemetry::KeyValue::new(
                    "service.name",
                    "inventory-service",
                )],
                "https://s",
            )
            .build()
    }

    fn decode_ours(
        kept: &[(SdkLogRecord, InstrumentationScope)],
        limit: usize,
    ) -> ExportLogsServiceRequest {
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            kept.iter().map(|(r, s)| (r, s)).collect();
        let resource = resource();
        let bytes = super::request(
            &LogBatch::new(&refs),
            &super::super::common::resource(&resource),
            "https://s",
            limit,
        );
        ExportLogsServiceRequest::decode(bytes.as_slice()).expect("our request decodes")
    }

    #[test]
    fn a_batch_encodes_to_what_opentelemetry_otlp_would_send() {
        let kept = records();
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            kept.iter().map(|(r, s)| (r, s)).collect();
        let mut expected = ExportLogsServiceRequest {
            resource_logs: group_logs_by_resource_and_scope(
                &LogBatch::new(&refs),
                &ResourceAttributesWithSchema::from(&resource()),
            ),
        };
        let mut ours = decode_ours(&kept, usize::MAX);
        // opentelemetry-proto groups through a HashMap: its scopes come in any order.
        for request in [&mut expected, &mut ours] {
            let scopes = &mut request.resource_logs[0].scope_logs;
            scopes.sort_by(|a, b| {
                a.scope
                    .as_ref()
                    .map(|s| &s.name)
                    .cmp(&b.scope.as_ref().map(|s| &s.name))
            });
        }
        assert_eq!(ours.resource_logs[0].scope_logs.len(), 3);
        assert_eq!(ours, expected);
    }

    #[test]
    fn bodies_and_attributes_are_cut_to_the_limit() {
        let decoded = decode_ours(&records(), 16);
        let record = &decoded.resource_logs[0].scope_logs[0].log_records[0];
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        assert_eq!(
            record.body.clone().and_then(|b| b.value),
            // "stock reserved " is 15 bytes, and "é" two: the cut falls before it.
            Some(Value::StringValue("stock reserved ".into()))
        );
        // 40 bytes, cut to 16: 8 characters.
        let note = record.attributes.iter().find(|kv| kv.key == "note");
        assert_eq!(
            note.and_then(|kv| kv.value.clone()).and_then(|v| v.value),
            Some(Value::StringValue("é".repeat(8)))
        );
        assert_eq!(record.trace_id.len(), 16);
    }
}
