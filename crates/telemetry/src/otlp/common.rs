//! The messages of `opentelemetry/proto/common/v1` and `resource/v1` that spans and log records
//! share: attributes, the instrumentation scope and the resource, written the way
//! opentelemetry-proto 0.33's `transform::common` converts them, with every string value cut to
//! the attribute length limit on the way.

use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::Resource;

use super::{
    request::Request,
    wire::{Member, Writer, field_len},
};
use crate::dropped::cut;

/// `KeyValue.key`, `KeyValue.value`.
const KEY: u32 = 1;
const VALUE: u32 = 2;

/// The `AnyValue` oneof members used here.
pub(crate) const STRING_VALUE: u32 = 1;
pub(crate) const BOOL_VALUE: u32 = 2;
pub(crate) const INT_VALUE: u32 = 3;
pub(crate) const DOUBLE_VALUE: u32 = 4;
pub(crate) const ARRAY_VALUE: u32 = 5;
pub(crate) const KVLIST_VALUE: u32 = 6;
pub(crate) const BYTES_VALUE: u32 = 7;
/// `ArrayValue.values` and `KeyValueList.values`.
pub(crate) const VALUES: u32 = 1;

/// Writes repeated `KeyValue` field `tag`.
pub(crate) fn attributes<'a>(
    w: &mut Writer,
    tag: u32,
    attributes: impl IntoIterator<Item = &'a KeyValue>,
    limit: usize,
) {
    for kv in attributes {
        key_value(w, tag, kv.key.as_str(), &kv.value, limit);
    }
}

/// Writes one `KeyValue` as field `tag`.
pub(crate) fn key_value(w: &mut Writer, tag: u32, key: &str, value: &Value, limit: usize) {
    let member = match value {
        Value::String(s) => Some(string_member(s.as_str(), limit)),
        Value::I64(i) => Some((INT_VALUE, Member::Varint(*i as u64))),
        Value::Bool(b) => Some((BOOL_VALUE, Member::Varint(u64::from(*b)))),
        _ => None,
    };
    pair(w, tag, key, member, |w| any_value(w, value, limit));
}

/// A `KeyValue` as field `tag`: in one go ([`Writer::small_pair`]) when its `AnyValue` is the
/// one member `member` and fits, otherwise as nested messages, the `AnyValue`'s body written
/// by `any_value`. Spans' and log records' attributes both come through here.
pub(crate) fn pair(
    w: &mut Writer,
    tag: u32,
    key: &str,
    member: Option<(u32, Member<'_>)>,
    any_value: impl FnOnce(&mut Writer),
) {
    if let Some((member_tag, member)) = member
        && w.small_pair(tag, key.as_bytes(), member_tag, member)
    {
        return;
    }
    w.message(tag, |w| {
        w.string(KEY, key);
        w.message(VALUE, any_value);
    });
}

/// A string `AnyValue` member, cut to `limit` bytes, for [`pair`].
pub(crate) fn string_member(value: &str, limit: usize) -> (u32, Member<'_>) {
    (STRING_VALUE, Member::Bytes(cut(value, limit).as_bytes()))
}

/// The body of an `AnyValue`.
fn any_value(w: &mut Writer, value: &Value, limit: usize) {
    match value {
        Value::Bool(b) => w.varint_always(BOOL_VALUE, u64::from(*b)),
        Value::I64(i) => w.varint_always(INT_VALUE, *i as u64),
        Value::F64(f) => w.double_always(DOUBLE_VALUE, *f),
        Value::String(s) => string_value(w, s.as_str(), limit),
        Value::Array(array) => w.message(ARRAY_VALUE, |w| match array {
            Array::Bool(items) => each(w, items, |w, b| w.varint_always(BOOL_VALUE, u64::from(*b))),
            Array::I64(items) => each(w, items, |w, i| w.varint_always(INT_VALUE, *i as u64)),
            Array::F64(items) => each(w, items, |w, f| w.double_always(DOUBLE_VALUE, *f)),
            Array::String(items) => each(w, items, |w, s: &StringValue| {
                string_value(w, s.as_str(), limit);
            }),
            // A kind of array newer than this code: its text rather than nothing.
            other => each(w, &[other.to_string()], |w, s| string_value(w, s, limit)),
        }),
        // A kind of value newer than this code: its text rather than nothing.
        other => string_value(w, &other.as_str(), limit),
    }
}

/// `ArrayValue.values`: one `AnyValue` per item.
fn each<T>(w: &mut Writer, items: &[T], mut item: impl FnMut(&mut Writer, &T)) {
    for value in items {
        w.message(VALUES, |w| item(w, value));
    }
}

/// A string `AnyValue` member, cut to `limit` bytes.
pub(crate) fn string_value(w: &mut Writer, value: &str, limit: usize) {
    w.bytes_always(STRING_VALUE, cut(value, limit).as_bytes());
}

/// The body of an `InstrumentationScope` named `name` (a log record's target names its scope).
pub(crate) fn scope(scope: &InstrumentationScope, name: &str, limit: usize) -> Vec<u8> {
    let mut w = Writer::default();
    w.string(1, name); // name
    w.string(2, scope.version().unwrap_or_default()); // version
    attributes(&mut w, 3, scope.attributes(), limit); // attributes
    w.into_vec()
}

/// The body of the `Resource` message for `resource`, encoded once per exporter (the SDK hands
/// the resource over once, at start).
pub(crate) fn resource(resource: &Resource) -> Vec<u8> {
    let mut w = Writer::default();
    for (key, value) in resource.iter() {
        key_value(&mut w, 1, key.as_str(), value, usize::MAX); // Resource.attributes
    }
    w.into_vec()
}

/// Nanoseconds since the Unix epoch (0 for a time before it), as opentelemetry-proto counts.
pub(crate) fn nanos(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// An `ExportTraceServiceRequest` or `ExportLogsServiceRequest` (the two have one shape): one
/// `ResourceSpans`/`ResourceLogs` with `resource` (`resource`'s encoding) and `schema_url`, and
/// per scope its `InstrumentationScope` message, its items' encoded fields (`ScopeSpans.spans`,
/// `ScopeLogs.log_records`: tag 2) and its schema URL. Every length is known before its body is
/// written, so each item's bytes are copied once, into the request (behind its gRPC frame's
/// head).
pub(crate) fn request<'a>(
    resource: &[u8],
    schema_url: &str,
    scopes: impl Iterator<Item = (Vec<u8>, &'a [u8], &'a str)>,
) -> Request {
    // Per scope: its message, its items, its schema URL and the length of its body.
    let scopes: Vec<_> = scopes
        .map(|(message, items, schema)| {
            let len = scope_len(&message, items.len(), schema);
            (message, items, schema, len)
        })
        .collect();
    let resource_body = resource_len(resource, scopes.iter().map(|s| s.3), schema_url);
    let mut w = Writer::from_vec(Request::buffer(field_len(resource_body)));
    // resource_spans / resource_logs
    w.header(1, resource_body);
    // .resource
    w.bytes_always(1, resource);
    for (message, items, schema, len) in &scopes {
        // .scope_spans / .scope_logs: scope, items, schema_url
        w.header(2, *len);
        w.bytes_always(1, message);
        w.raw(items);
        w.string(3, schema);
    }
    w.string(3, schema_url);
    Request::framed(w.into_vec(), 0)
}

/// What [`request`] writes before the items when there is one scope (`message`, `items` bytes
/// of items, `scope_schema`); [`one_scope_tail`] is what it writes after them.
pub(crate) fn one_scope_head(
    resource: &[u8],
    schema_url: &str,
    message: &[u8],
    items: usize,
    scope_schema: &str,
) -> Vec<u8> {
    let scope_body = scope_len(message, items, scope_schema);
    let resource_body = resource_len(resource, std::iter::once(scope_body), schema_url);
    let mut w = Writer::with_capacity(field_len(resource_body) - items);
    w.header(1, resource_body);
    w.bytes_always(1, resource);
    w.header(2, scope_body);
    w.bytes_always(1, message);
    w.into_vec()
}

/// What [`request`] writes after the items of its only scope.
pub(crate) fn one_scope_tail(w: &mut Writer, schema_url: &str, scope_schema: &str) {
    w.string(3, scope_schema);
    w.string(3, schema_url);
}

/// The body length of a `ScopeSpans`/`ScopeLogs`.
fn scope_len(message: &[u8], items: usize, schema: &str) -> usize {
    field_len(message.len()) + items + string_len(schema)
}

/// The body length of a `ResourceSpans`/`ResourceLogs` whose scopes' bodies are `scopes` long.
fn resource_len(resource: &[u8], scopes: impl Iterator<Item = usize>, schema_url: &str) -> usize {
    field_len(resource.len()) + scopes.map(field_len).sum::<usize>() + string_len(schema_url)
}

/// The bytes a `string` field of tag 1–15 takes (none when empty: proto3 leaves it out).
fn string_len(value: &str) -> usize {
    if value.is_empty() {
        0
    } else {
        field_len(value.len())
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::Value;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

    use super::{Writer, key_value};

    /// What prost writes for `key` and `value` as a span's attributes field (9).
    fn prost_wrote(key: &str, value: any_value::Value) -> Vec<u8> {
        let message = KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        };
        let mut buf = Vec::new();
        prost::encoding::message::encode(9, &message, &mut buf);
        buf
    }

    fn ours(key: &str, value: &Value, limit: usize) -> Vec<u8> {
        let mut w = Writer::default();
        w.raw(b"before");
        key_value(&mut w, 9, key, value, limit);
        w.into_vec().split_off(6)
    }

    #[test]
    fn an_attribute_is_written_as_prost_writes_it_on_either_side_of_one_byte_lengths() {
        // A body of 127 bytes is the last written in one go: every length around it, from
        // either the key or the value, and the varints of every width.
        for key_len in [
            0, 1, 2, 60, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 127, 128, 200,
        ] {
            let key = "k".repeat(key_len);
            for value_len in [
                0, 1, 2, 60, 115, 116, 117, 118, 119, 120, 121, 122, 123, 127, 128, 300,
            ] {
                let text = "v".repeat(value_len);
                let value = Value::from(text.clone());
                let expected = prost_wrote(&key, any_value::Value::StringValue(text));
                assert_eq!(
                    ours(&key, &value, usize::MAX),
                    expected,
                    "{key_len}/{value_len}"
                );
            }
            // 1, 2^7, 2^14 … 2^56 take one to nine varint bytes, a negative number ten.
            let widths =
                (0..9)
                    .map(|bytes| 1_i64 << (7 * bytes))
                    .chain([0, 127, -1, i64::MIN, i64::MAX]);
            for int in widths {
                let expected = prost_wrote(&key, any_value::Value::IntValue(int));
                assert_eq!(
                    ours(&key, &Value::I64(int), usize::MAX),
                    expected,
                    "{key_len}/{int}"
                );
            }
            for flag in [false, true] {
                let expected = prost_wrote(&key, any_value::Value::BoolValue(flag));
                assert_eq!(
                    ours(&key, &Value::Bool(flag), usize::MAX),
                    expected,
                    "{key_len}/{flag}"
                );
            }
        }
    }

    #[test]
    fn a_string_attribute_is_cut_before_its_length_is_written() {
        // 60 bytes cut to 40, on a character boundary: short enough either way to be written
        // in one go, so only the cut tells them apart.
        let value = Value::from("é".repeat(30));
        let expected = prost_wrote("k", any_value::Value::StringValue("é".repeat(20)));
        assert_eq!(ours("k", &value, 41), expected);
    }
}
