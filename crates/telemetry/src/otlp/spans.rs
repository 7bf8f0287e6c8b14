//! `ExportTraceServiceRequest`, written straight from the SDK's `SpanData`, sixteen spans at a
//! time as they end (`processor`): the bytes opentelemetry-otlp 0.33 would send for the same
//! batch (`transform::trace` of opentelemetry-proto: one `ResourceSpans`, one `ScopeSpans` per
//! instrumentation scope in order of first appearance), without building its structs. The test
//! below decodes both and compares.

use opentelemetry::{
    InstrumentationScope,
    trace::{SpanKind, Status, TraceState},
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_sdk::{error::OTelSdkError, trace::SpanData};
use prost::Message as _;

use crate::dropped::Throttle;

use super::{
    common::{attributes, nanos, one_scope_head, one_scope_tail},
    processor::Batch,
    request::{FRAME_HEAD, Request},
    wire::Writer,
};

/// `Span.flags` bits of OTLP: the W3C flags, plus "the parent's remoteness is known" and
/// "the parent is remote".
const CONTEXT_HAS_IS_REMOTE: u32 = 0x100;
const CONTEXT_IS_REMOTE: u32 = 0x200;

/// Spans encoded as they end, sixteen at a time ([`EncodedSpans::hold`]): per instrumentation
/// scope, in order of first appearance (as opentelemetry-proto groups a batch), the
/// `ScopeSpans.spans` fields of its spans, each span's key, length and body.
///
/// The first scope's buffer starts with [`HEAD_ROOM`] bytes left free, for the request's head
/// and the gRPC frame's in front of it: a batch of one scope (every span of a service has the
/// same) becomes its request in place ([`EncodedSpans::into_request`]), where copying it into
/// a request of its own was 2 % of what an exported span costs (BENCHMARKS.md, fourteenth
/// round).
#[derive(Debug, Default)]
pub(crate) struct EncodedSpans {
    scopes: Vec<(InstrumentationScope, Vec<u8>)>,
    count: usize,
    /// Spans ended and not encoded yet ([`EncodedSpans::hold`]).
    held: Vec<SpanData>,
    /// The capacity the first scope's buffer is made with.
    expected: usize,
}

/// Room for what precedes the spans in a request: the gRPC frame's head ([`FRAME_HEAD`]), the
/// keys and lengths of `ResourceSpans` and `ScopeSpans`, the `Resource` message (about 250
/// bytes with the default attributes) and the `InstrumentationScope` message. A larger head
/// (a long `OTEL_RESOURCE_ATTRIBUTES`) is written in front of a copy instead.
const HEAD_ROOM: usize = 1024;

/// How many ended spans are encoded together ([`EncodedSpans::hold`]).
const ENCODED_TOGETHER: usize = 16;

impl EncodedSpans {
    /// Keeps `span` (as the SDK ended it), and encodes the spans kept once there are
    /// [`ENCODED_TOGETHER`]; the rest are encoded when the batch becomes its request.
    ///
    /// Why not each span as it ends: between two ends the thread runs a request's own code,
    /// which takes the first-level instruction cache, so the encoder and the drop of a
    /// `SpanData` were fetched again for every span. Sixteen at a time, that is once for
    /// sixteen: 13 % fewer of the misses that spans add to an order in callgrind's simulation
    /// of this machine's caches, for about the same instructions (BENCHMARKS.md, twenty-ninth
    /// round).
    /// Sixteen spans are a few kilobytes waiting, where the whole batch would be hundreds.
    pub(crate) fn hold(&mut self, span: SpanData, limit: usize) {
        self.held.push(span);
        if self.held.len() >= ENCODED_TOGETHER {
            self.encode_held(limit);
        }
    }

    /// Encodes the spans kept, in the order they ended, and frees them.
    fn encode_held(&mut self, limit: usize) {
        let mut held = std::mem::take(&mut self.held);
        for span in &held {
            self.push(span, limit);
        }
        held.clear();
        self.held = held;
    }

    /// The spans of each scope, without the first scope's head room.
    fn scopes(&self) -> impl Iterator<Item = (&InstrumentationScope, &[u8])> {
        self.scopes
            .iter()
            .enumerate()
            .map(|(i, (scope, spans))| (scope, &spans[if i == 0 { HEAD_ROOM } else { 0 }..]))
    }

    /// Encodes `span` after the others, its string values cut to `limit` bytes (only from
    /// [`EncodedSpans::encode_held`]: spans held would come after it).
    fn push(&mut self, span: &SpanData, limit: usize) {
        let at = match self
            .scopes
            .iter()
            .position(|(scope, _)| same_scope(scope, &span.instrumentation_scope))
        {
            Some(at) => at,
            None => {
                let expected = std::mem::take(&mut self.expected);
                let mut buf;
                if self.scopes.is_empty() {
                    buf = Vec::with_capacity(HEAD_ROOM + expected);
                    buf.resize(HEAD_ROOM, 0);
                } else {
                    buf = Vec::with_capacity(expected);
                }
                self.scopes.push((span.instrumentation_scope.clone(), buf));
                self.scopes.len() - 1
            }
        };
        let buf = &mut self.scopes[at].1;
        let mut w = Writer::from_vec(std::mem::take(buf));
        w.long_message(2, |w| write_span(w, span, limit));
        *buf = w.into_vec();
        self.count += 1;
    }

    /// The `ExportTraceServiceRequest` of these spans: one `ResourceSpans`, one `ScopeSpans`
    /// per scope. `resource` is [`super::common::resource`]'s encoding. Every length is known
    /// before its body is written, so each span's bytes are copied once, into the request.
    fn request(&self, resource: &[u8], schema_url: &str, limit: usize) -> Request {
        let scopes = self.scopes().map(|(scope, spans)| {
            (
                super::common::scope(scope, scope.name(), limit),
                spans,
                scope.schema_url().unwrap_or_default(),
            )
        });
        super::common::request(resource, schema_url, scopes)
    }
}

impl Batch for EncodedSpans {
    const ITEMS: &'static str = "spans";

    /// Spans whose first scope is expected to take about `bytes`: a buffer made that large
    /// at once is neither copied as it grows nor left twice as large as it needs.
    fn expecting(bytes: usize) -> Self {
        Self {
            expected: bytes,
            held: Vec::with_capacity(ENCODED_TOGETHER),
            ..Self::default()
        }
    }

    fn len(&self) -> usize {
        self.count + self.held.len()
    }

    /// The batch is full: its last spans are encoded now, on the thread that ended them, so
    /// that [`Batch::bytes`] is the whole batch's.
    fn filled(&mut self, limit: usize) {
        self.encode_held(limit);
    }

    fn bytes(&self) -> usize {
        self.scopes
            .iter()
            .map(|(_, spans)| spans.len())
            .sum::<usize>()
            - self.scopes.first().map_or(0, |_| HEAD_ROOM)
    }

    /// [`EncodedSpans::request`], written in place around the spans when they are of one
    /// scope and the head fits in [`HEAD_ROOM`].
    fn into_request(mut self, resource: &[u8], schema_url: &str, limit: usize) -> Request {
        self.encode_held(limit);
        if self.scopes.len() != 1 {
            return self.request(resource, schema_url, limit);
        }
        let spans = self.bytes();
        let Some((scope, buf)) = self.scopes.pop() else {
            return self.request(resource, schema_url, limit);
        };
        let message = super::common::scope(&scope, scope.name(), limit);
        let scope_schema = scope.schema_url().unwrap_or_default();
        let head = one_scope_head(resource, schema_url, &message, spans, scope_schema);
        let Some(start) = HEAD_ROOM.checked_sub(FRAME_HEAD + head.len()) else {
            let scopes = std::iter::once((message, &buf[HEAD_ROOM..], scope_schema));
            return super::common::request(resource, schema_url, scopes);
        };
        let mut w = Writer::from_vec(buf);
        one_scope_tail(&mut w, schema_url, scope_schema);
        let mut buf = w.into_vec();
        buf[HEAD_ROOM - head.len()..HEAD_ROOM].copy_from_slice(&head);
        Request::framed(buf, start)
    }

    fn answered(response: bytes::Bytes) {
        if let Ok(ExportTraceServiceResponse {
            partial_success: Some(partial),
        }) = ExportTraceServiceResponse::decode(response)
            && (partial.rejected_spans > 0 || !partial.error_message.is_empty())
        {
            crate::dropped::count_rejected(partial.rejected_spans, &partial.error_message);
        }
    }

    fn lost(count: usize, error: &OTelSdkError, throttle: &Throttle) {
        crate::dropped::count_failed_export(count, error, throttle);
    }

    fn queue_full(max_queue: usize, throttle: &Throttle) {
        crate::dropped::count_queue_full(max_queue, throttle);
    }
}

/// Whether spans of `a` and `b` go in one `ScopeSpans`: the same scope. Every span of a
/// service has the same one, whose name is one borrowed string (`crate::init_with`), so the
/// name is first compared by address.
fn same_scope(a: &InstrumentationScope, b: &InstrumentationScope) -> bool {
    let (x, y) = (a.name(), b.name());
    (std::ptr::eq(x, y) || x == y)
        && a.version() == b.version()
        && a.schema_url() == b.schema_url()
        && a.attributes().eq(b.attributes())
}

/// The request for `batch`, as [`EncodedSpans`] writes it.
#[cfg(test)]
pub(crate) fn request(
    batch: &[SpanData],
    resource: &[u8],
    schema_url: &str,
    limit: usize,
) -> Vec<u8> {
    let mut spans = EncodedSpans::default();
    for span in batch {
        spans.hold(span.clone(), limit);
    }
    spans
        .into_request(resource, schema_url, limit)
        .message()
        .to_vec()
}

/// The body of one `Span`.
fn write_span(w: &mut Writer, span: &SpanData, limit: usize) {
    let context = &span.span_context;
    w.bytes(1, &context.trace_id().to_bytes()); // trace_id
    w.bytes(2, &context.span_id().to_bytes()); // span_id
    trace_state(w, 3, context.trace_state()); // trace_state
    if span.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        w.bytes(4, &span.parent_span_id.to_bytes()); // parent_span_id
    }
    w.string(5, &span.name); // name
    w.enumeration(6, kind(&span.span_kind)); // kind
    w.fixed64(7, nanos(span.start_time)); // start_time_unix_nano
    w.fixed64(8, nanos(span.end_time)); // end_time_unix_nano
    attributes(w, 9, &span.attributes, limit); // attributes
    w.uint32(10, span.dropped_attributes_count); // dropped_attributes_count
    for event in span.events.iter() {
        // events: time_unix_nano, name, attributes, dropped_attributes_count
        w.message(11, |w| {
            w.fixed64(1, nanos(event.timestamp));
            w.string(2, &event.name);
            attributes(w, 3, &event.attributes, limit);
            w.uint32(4, event.dropped_attributes_count);
        });
    }
    w.uint32(12, span.events.dropped_count); // dropped_events_count
    for link in span.links.iter() {
        let linked = &link.span_context;
        // links: trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags
        w.message(13, |w| {
            w.bytes(1, &linked.trace_id().to_bytes());
            w.bytes(2, &linked.span_id().to_bytes());
            trace_state(w, 3, linked.trace_state());
            attributes(w, 4, &link.attributes, limit);
            w.uint32(5, link.dropped_attributes_count);
            w.fixed32(6, flags(linked.is_remote(), linked.trace_flags().to_u8()));
        });
    }
    w.uint32(14, span.links.dropped_count); // dropped_links_count
    // status (message, code): always present, as opentelemetry-proto sets it.
    w.message(15, |w| {
        if let Status::Error { description } = &span.status {
            w.string(2, crate::dropped::cut(description, limit));
        }
        w.enumeration(3, status_code(&span.status));
    });
    // flags: written last, in tag order, as prost writes it.
    w.fixed32(
        16,
        flags(span.parent_span_is_remote, context.trace_flags().to_u8()),
    );
}

/// A `trace_state` field: the W3C `tracestate` header's text, left out when empty. Most spans
/// have none, and are not made to build an empty string for it.
fn trace_state(w: &mut Writer, tag: u32, state: &TraceState) {
    if *state != TraceState::NONE {
        w.string(tag, &state.header());
    }
}

fn flags(remote: bool, trace_flags: u8) -> u32 {
    let mut flags = u32::from(trace_flags) | CONTEXT_HAS_IS_REMOTE;
    if remote {
        flags |= CONTEXT_IS_REMOTE;
    }
    flags
}

/// `Span.SpanKind` (0 is UNSPECIFIED, never sent).
fn kind(kind: &SpanKind) -> i32 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// `Status.StatusCode`.
fn status_code(status: &Status) -> i32 {
    match status {
        Status::Unset => 0,
        Status::Ok => 1,
        Status::Error { .. } => 2,
    }
}

#[cfg(test)]
mod tests {
    use std::{
        borrow::Cow,
        time::{Duration, SystemTime},
    };

    use opentelemetry::{
        Array, InstrumentationScope, KeyValue, Value,
        trace::{
            Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
        },
    };
    use opentelemetry_proto::{
        tonic::collector::trace::v1::ExportTraceServiceRequest,
        transform::{
            common::tonic::ResourceAttributesWithSchema,
            trace::tonic::group_spans_by_resource_and_scope,
        },
    };
    use opentelemetry_sdk::{
        Resource,
        trace::{SpanData, SpanEvents, SpanLinks},
    };
    use prost::Message as _;

    use super::request;

    fn context(trace: u128, span: u64, remote: bool) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            remote,
            TraceState::from_key_value([("vendor", "value")]).expect("a valid trace state"),
        )
    }

    fn span(name: &'static str, scope: &InstrumentationScope, parent: u64) -> SpanData {
        let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_764_000_000_123_456_789);
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "exception",
            start + Duration::from_micros(5),
            vec![
                KeyValue::new("exception.message", "é".repeat(40)),
                KeyValue::new("empty", ""),
            ],
            2,
        ));
        events.dropped_count = 3;
        let mut links = SpanLinks::default();
        links.links.push(Link::new(
            context(7, 8, true),
            vec![KeyValue::new("link.kind", "follows")],
            1,
        ));
        SpanData {
            span_context: context(0x0af7651916cd43dd8448eb211c80319c, parent + 1, false),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: parent % 2 == 1,
            span_kind: SpanKind::Server,
            name: Cow::Borrowed(name),
            start_time: start,
            end_time: start + Duration::from_millis(300),
            attributes: vec![
                KeyValue::new("http.request.method", "POST"),
                KeyValue::new("http.response.status_code", 201_i64),
                KeyValue::new("negative", -5_i64),
                KeyValue::new("ratio", 0.0_f64),
                KeyValue::new("flag", false),
                KeyValue::new("long", "x".repeat(3000)),
                KeyValue::new("", "an empty key"),
                KeyValue::new("k".repeat(200), i64::MIN),
                KeyValue::new("just_over_one_byte", "y".repeat(125)),
                KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
                KeyValue::new("ints", Value::Array(Array::I64(vec![1, -1]))),
                KeyValue::new("floats", Value::Array(Array::F64(vec![0.5]))),
                KeyValue::new(
                    "strings",
                    Value::Array(Array::String(vec!["a".into(), "".into()])),
                ),
            ],
            dropped_attributes_count: 4,
            events,
            links,
            status: Status::error("payment declined"),
            instrumentation_scope: scope.clone(),
        }
    }

    fn batch() -> Vec<SpanData> {
        let tracing = InstrumentationScope::builder("tracing-opentelemetry")
            .with_version("0.34.0")
            .build();
        let api = InstrumentationScope::builder("order-service")
            .with_schema_url("https://opentelemetry.io/schemas/1.38.0")
            .with_attributes([KeyValue::new("scope.attr", 1_i64)])
            .build();
        let mut root = span("POST /orders", &api, 0);
        root.status = Status::Unset;
        root.parent_span_id = SpanId::INVALID;
        root.span_context = SpanContext::new(
            TraceId::from(1),
            SpanId::from(2),
            TraceFlags::default(),
            false,
            TraceState::default(),
        );
        let mut ok = span("reserve_stock", &tracing, 3);
        ok.status = Status::Ok;
        ok.span_kind = SpanKind::Internal;
        let mut client = span("POST", &api, 4);
        client.span_kind = SpanKind::Client;
        client.events = SpanEvents::default();
        client.links = SpanLinks::default();
        let mut consumer = span("consume", &tracing, 5);
        consumer.span_kind = SpanKind::Consumer;
        let mut producer = span("produce", &api, 6);
        producer.span_kind = SpanKind::Producer;
        vec![root, ok, client, consumer, producer]
    }

    fn test_resource() -> Resource {
        Resource::builder_empty()
            .with_schema_url(
                [KeyValue::new("service.name", "order-service")],
                "https://s",
            )
            .with_attributes([
                KeyValue::new("service.version", "1.2.3"),
                KeyValue::new("pid", 42_i64),
            ])
            .build()
    }

    /// What opentelemetry-otlp 0.33 sends for `batch` (its tonic and HTTP exporters both build
    /// this request).
    fn crate_request(batch: Vec<SpanData>, resource: &Resource) -> ExportTraceServiceRequest {
        let resource = ResourceAttributesWithSchema::from(resource);
        ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(batch, &resource),
        }
    }

    fn ours(batch: &[SpanData], resource: &Resource, limit: usize) -> ExportTraceServiceRequest {
        let bytes = super::request(
            batch,
            &super::super::common::resource(resource),
            resource.schema_url().unwrap_or_default(),
            limit,
        );
        ExportTraceServiceRequest::decode(bytes.as_slice()).expect("our request decodes")
    }

    #[test]
    fn a_batch_encodes_to_what_opentelemetry_otlp_would_send() {
        let resource = test_resource();
        let expected = crate_request(batch(), &resource);
        assert_eq!(ours(&batch(), &resource, usize::MAX), expected);
        // The same bytes, too: prost writes fields in the order this encoder does.
        let bytes = request(
            &batch(),
            &super::super::common::resource(&resource),
            "https://s",
            usize::MAX,
        );
        assert!(
            bytes == expected.encode_to_vec(),
            "the same message, in other bytes"
        );
    }

    #[test]
    fn string_values_are_cut_to_the_limit_on_a_character_boundary() {
        let resource = test_resource();
        let decoded = ours(&batch(), &resource, 5);
        let span = &decoded.resource_spans[0].scope_spans[0].spans[0];
        let long = span
            .attributes
            .iter()
            .find(|kv| kv.key == "long")
            .and_then(|kv| kv.value.clone())
            .and_then(|v| v.value);
        assert_eq!(
            long,
            Some(
                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                    "xxxxx".into()
                )
            )
        );
        let event = &span.events[0].attributes[0];
        assert_eq!(
            event.value.clone().and_then(|v| v.value),
            // "é" is two bytes: five bytes hold two of them.
            Some(
                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue("éé".into())
            )
        );
        let failed = &decoded.resource_spans[0].scope_spans[0].spans[1];
        assert_eq!(
            failed.status.as_ref().map(|s| s.message.as_str()),
            Some("payme")
        );
        // The resource is never cut.
        let resource = decoded.resource_spans[0]
            .resource
            .as_ref()
            .expect("a resource");
        assert!(
            resource
                .attributes
                .iter()
                .any(|kv| kv.key == "service.name")
        );
    }

    #[test]
    fn a_batch_of_one_scope_is_written_in_place_with_the_same_bytes() {
        let one_scope: Vec<SpanData> = batch()
            .into_iter()
            .filter(|s| s.instrumentation_scope.name() == "order-service")
            .collect();
        // A resource whose message fits in the head room, and one that does not.
        let large = Resource::builder_empty()
            .with_attributes([KeyValue::new("big", "x".repeat(2 * super::HEAD_ROOM))])
            .build();
        for resource in [test_resource(), large] {
            let expected = crate_request(one_scope.clone(), &resource);
            let bytes = request(
                &one_scope,
                &super::super::common::resource(&resource),
                resource.schema_url().unwrap_or_default(),
                usize::MAX,
            );
            assert!(
                bytes == expected.encode_to_vec(),
                "the same message, in other bytes"
            );
        }
    }

    #[test]
    fn spans_encoded_sixteen_at_a_time_keep_their_order_in_each_scope() {
        // 40 spans of two scopes: two sixteens encoded as they come, eight when the request
        // is made.
        let many: Vec<SpanData> = (0..8)
            .flat_map(|round| {
                batch().into_iter().map(move |mut span| {
                    span.name = format!("{}-{round}", span.name).into();
                    span
                })
            })
            .collect();
        assert_eq!(many.len(), 40);
        let resource = test_resource();
        assert_eq!(
            ours(&many, &resource, usize::MAX),
            crate_request(many.clone(), &resource)
        );
    }

    #[test]
    fn an_empty_batch_is_one_resource_and_no_scope() {
        let resource = test_resource();
        assert_eq!(
            ours(&[], &resource, 10),
            crate_request(Vec::new(), &resource)
        );
    }
}
