//! W3C Trace Context (`traceparent`, `tracestate`) and the HTTP headers it travels in.
//!
//! [`TraceContext`] is the global propagator's first half (`crate::baggage` is the second):
//! the SDK's `TraceContextPropagator` formats each `traceparent` with `format!` (ids through
//! `core::fmt`, one digit at a time) and parses each by splitting into a `Vec` and
//! `u128::from_str_radix`: 4.7 k instructions an injection (its header adapter included) and
//! 3.7 k an extraction, for each of the five calls of an order (BENCHMARKS.md, tenth round). This one writes and reads the 55 bytes
//! in place, and follows the W3C recommendation more strictly than the SDK does: ids of the
//! wrong length, a version 00 header with anything after the flags, and hex with a sign are
//! refused (the SDK accepts the first two and `+` signs), two `traceparent` fields start a
//! new trace (W3C's test suite, `test_traceparent_duplicated`), and an empty `tracestate` is
//! not sent. `tracestate` is read by `crate::tracestate`, also more strictly than the SDK
//! reads it, from every field of it, and held to 512 bytes. [`HeaderInjector`] and [`HeaderExtractor`] name the three propagation headers with
//! constants, where tracing-opentelemetry-instrumentation-sdk's parse each name per call.
//!
//! The SERVER and CLIENT spans ([`extract_incoming`], [`inject`]) call the two propagators the global
//! one is made of directly, with the same result (a test compares them). Through the global
//! one, each call took its lock, cloned the current context only to build another from it,
//! made two dynamic calls, and looked each header up through an `Extractor`, which checks the
//! value is visible ASCII before the parser reads it again (BENCHMARKS.md, seventeenth round).
//! The global propagator stays set for any other code that propagates.
//!
//! Spec: <https://www.w3.org/TR/trace-context/#traceparent-header>.

use std::sync::LazyLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    Context,
    baggage::BaggageExt as _,
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
    trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId},
};
use opentelemetry_sdk::propagation::BaggagePropagator;

pub(crate) const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub(crate) const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
pub(crate) const BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// `00-` + 32 + `-` + 16 + `-` + 2.
const TRACEPARENT_LEN: usize = 55;

static FIELDS: LazyLock<[String; 2]> =
    LazyLock::new(|| ["traceparent".to_owned(), "tracestate".to_owned()]);

/// The W3C Trace Context propagator. See the module's documentation.
#[derive(Debug, Default)]
pub(crate) struct TraceContext;

impl TextMapPropagator for TraceContext {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        write_trace_context(cx.span().span_context(), |name, value| {
            // Always ASCII: `traceparent` writes only `0-9a-f` and `-`, and a `TraceState`
            // holds only what W3C allows.
            injector.set(name.as_str(), String::from_utf8_lossy(value).into_owned());
        });
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let traceparent = match extractor.get_all("traceparent").as_deref() {
            Some([one]) => parse(one.as_bytes()),
            _ => None,
        };
        match traceparent {
            Some(ids) => {
                let state = extractor.get_all("tracestate").unwrap_or_default();
                cx.with_remote_span_context(remote(ids, state.iter().map(|v| v.as_bytes())))
            }
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
    }
}

/// The remote span context of a parsed `traceparent` and the `tracestate` fields beside it (an
/// empty trace state if they are malformed).
fn remote<'a>(
    (trace_id, span_id, flags): (TraceId, SpanId, TraceFlags),
    state: impl IntoIterator<Item = &'a [u8]>,
) -> SpanContext {
    let state = crate::tracestate::parse(state);
    SpanContext::new(trace_id, span_id, flags, true, state)
}

/// Hands `set` the `traceparent` of `span` and its `tracestate` unless that is empty, if
/// `span` is valid.
fn write_trace_context(span: &SpanContext, mut set: impl FnMut(HeaderName, &[u8])) {
    if !span.is_valid() {
        return;
    }
    set(TRACEPARENT, &traceparent(span));
    let state = span.trace_state().header();
    if !state.is_empty() {
        set(TRACESTATE, state.as_bytes());
    }
}

/// The `traceparent` of `span`: version 00, and of the flags only "sampled" (the only one
/// version 00 defines).
fn traceparent(span: &SpanContext) -> [u8; TRACEPARENT_LEN] {
    let mut header = [b'-'; TRACEPARENT_LEN];
    header[..2].copy_from_slice(b"00");
    let flags = (span.trace_flags() & TraceFlags::SAMPLED).to_u8();
    crate::ids::write_hex(&span.trace_id().to_bytes(), &mut header[3..35]);
    crate::ids::write_hex(&span.span_id().to_bytes(), &mut header[36..52]);
    crate::ids::write_hex(&[flags], &mut header[53..55]);
    header
}

/// The ids and flags of a `traceparent`, if it is valid: `version-traceid-parentid-flags`,
/// lowercase hex of exactly 2, 32, 16 and 2 digits, neither id all zeros, version `ff`
/// refused; a later version may add fields after a `-`, version 00 may not. Of the flags only
/// "sampled" is kept.
fn parse(header: &[u8]) -> Option<(TraceId, SpanId, TraceFlags)> {
    let header = header.trim_ascii();
    let (head, rest) = header.split_at_checked(TRACEPARENT_LEN)?;
    let [version] = crate::ids::read_hex::<1>(&head[0..2])?;
    let valid_rest = match version {
        0 => rest.is_empty(),
        0xff => false,
        _ => rest.is_empty() || rest[0] == b'-',
    };
    if !valid_rest || head[2] != b'-' || head[35] != b'-' || head[52] != b'-' {
        return None;
    }
    let trace_id = TraceId::from_bytes(crate::ids::read_hex(&head[3..35])?);
    let span_id = SpanId::from_bytes(crate::ids::read_hex(&head[36..52])?);
    let [flags] = crate::ids::read_hex::<1>(&head[53..55])?;
    let flags = TraceFlags::new(flags) & TraceFlags::SAMPLED;
    (trace_id != TraceId::INVALID && span_id != SpanId::INVALID)
        .then_some((trace_id, span_id, flags))
}

/// Headers being written, for a propagator.
pub(crate) struct HeaderInjector<'a>(pub(crate) &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    /// Sets the header, unless the value is not a valid header value.
    fn set(&mut self, key: &str, value: String) {
        let Ok(value) = HeaderValue::try_from(value) else {
            return;
        };
        let name = match key {
            "traceparent" => TRACEPARENT,
            "tracestate" => TRACESTATE,
            "baggage" => BAGGAGE,
            other => match HeaderName::from_bytes(other.as_bytes()) {
                Ok(name) => name,
                Err(_) => return,
            },
        };
        self.0.insert(name, value);
    }
}

/// Headers received, for a propagator.
pub(crate) struct HeaderExtractor<'a>(pub(crate) &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    /// The header's value, if it is present and visible ASCII.
    fn get(&self, key: &str) -> Option<&str> {
        let value = match known(key) {
            Some(name) => self.0.get(name),
            None => self.0.get(key),
        };
        value.and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    /// Every field of the header, in order, if there is one and each is visible ASCII. A
    /// field that is not makes the whole header unreadable, as the SERVER span reads it: two
    /// `traceparent`s are a new trace and a `tracestate` with a malformed field is dropped.
    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let fields = match known(key) {
            Some(name) => self.0.get_all(name),
            None => self.0.get_all(key),
        };
        let values: Vec<&str> = fields
            .iter()
            .map(|value| value.to_str().ok())
            .collect::<Option<_>>()?;
        (!values.is_empty()).then_some(values)
    }
}

/// The constant of one of the three propagation headers, so that it is not parsed from `key`.
fn known(key: &str) -> Option<HeaderName> {
    match key {
        "traceparent" => Some(TRACEPARENT),
        "tracestate" => Some(TRACESTATE),
        "baggage" => Some(BAGGAGE),
        _ => None,
    }
}

/// Writes the trace context of `span` and the baggage of `context` into `headers`, as the
/// global propagator does for a context holding both (see the module's documentation).
pub(crate) fn inject(span: &SpanContext, context: &Context, headers: &mut HeaderMap) {
    write_trace_context(span, |name, value| {
        if let Ok(value) = HeaderValue::from_maybe_shared(shared(value)) {
            headers.insert(name, value);
        }
    });
    if !context.baggage().is_empty() {
        BaggagePropagator::new().inject_context(context, &mut HeaderInjector(headers));
    }
}

/// The first value of each of a few header names in a request, found in one pass over its
/// headers: each `get` hashes its name and probes the map (about 150 instructions), and the
/// SERVER span asked for five headers of every request (BENCHMARKS.md, nineteenth round).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FirstValues<'h, const N: usize> {
    /// The first value of each name, as `get` finds it.
    pub(crate) values: [Option<&'h HeaderValue>; N],
    /// Whether each name came more than once.
    pub(crate) repeated: [bool; N],
}

/// The [`FirstValues`] of `names` in `headers`.
pub(crate) fn first_values<'h, const N: usize>(
    headers: &'h HeaderMap,
    names: &[HeaderName; N],
) -> FirstValues<'h, N> {
    let mut found = FirstValues {
        values: [None; N],
        repeated: [false; N],
    };
    for (name, value) in headers {
        if let Some(slot) = names.iter().position(|wanted| wanted == name) {
            match found.values[slot] {
                Some(_) => found.repeated[slot] = true,
                None => found.values[slot] = Some(value),
            }
        }
    }
    found
}

/// The trace-context headers of a request, as [`first_values`] of [`TRACEPARENT`],
/// [`TRACESTATE`] and [`BAGGAGE`], in that order, found them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Incoming<'h> {
    /// The one `traceparent`; none if there were two or more, which W3C's test suite expects
    /// to start a new trace (`test_traceparent_duplicated`).
    traceparent: Option<&'h HeaderValue>,
    /// The first `tracestate`, and whether there are more fields of it to read.
    tracestate: Option<&'h HeaderValue>,
    more_tracestate: bool,
    /// Whether there is a `baggage`.
    baggage: bool,
}

impl<'h> Incoming<'h> {
    pub(crate) fn new(
        [traceparent, tracestate, baggage]: [Option<&'h HeaderValue>; 3],
        [traceparent_repeated, more_tracestate, _]: [bool; 3],
    ) -> Self {
        Self {
            traceparent: traceparent.filter(|_| !traceparent_repeated),
            tracestate,
            more_tracestate,
            baggage: baggage.is_some(),
        }
    }
}

/// `value` as bytes that are shared from the start. reqwest clones every request's headers
/// (0.13, `Client::execute_request`), and a value made by `HeaderValue::from_bytes` holds a
/// `Vec`, which its first clone turns into a shared allocation: a second allocation for every
/// call. These are counted, not copied, when cloned.
fn shared(value: &[u8]) -> Bytes {
    match <[u8; TRACEPARENT_LEN]>::try_from(value) {
        Ok(traceparent) => Bytes::from_owner(traceparent),
        Err(_) => Bytes::from_owner(value.to_vec()),
    }
}

/// [`extract_incoming`] of `headers`, finding the trace-context headers itself: what the tests
/// compare with the global propagator.
#[cfg(test)]
pub(crate) fn extract(headers: &HeaderMap) -> Context {
    let incoming = first_values(headers, &[TRACEPARENT, TRACESTATE, BAGGAGE]);
    extract_incoming(Incoming::new(incoming.values, incoming.repeated), headers)
}

/// The context a request's headers carry on top of the current one (which is all there is if
/// they carry none, or a malformed one), as the global propagator extracts it (see the
/// module's documentation): `incoming` are its trace-context headers, found already among
/// `headers` (which the baggage, when there is one, is read from).
pub(crate) fn extract_incoming(incoming: Incoming<'_>, headers: &HeaderMap) -> Context {
    Context::map_current(|current| {
        let traceparent = incoming.traceparent.map(HeaderValue::as_bytes);
        let context = match traceparent.and_then(parse) {
            // Only a request with more than one `tracestate` looks them all up.
            Some(ids) if incoming.more_tracestate => current.with_remote_span_context(remote(
                ids,
                headers
                    .get_all(TRACESTATE)
                    .iter()
                    .map(HeaderValue::as_bytes),
            )),
            Some(ids) => current.with_remote_span_context(remote(
                ids,
                incoming.tracestate.map(HeaderValue::as_bytes),
            )),
            None => current.clone(),
        };
        match incoming.baggage {
            true => crate::baggage::W3cBaggage::default()
                .extract_with_context(&context, &HeaderExtractor(headers)),
            false => context,
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::{
        Context, KeyValue,
        baggage::BaggageExt as _,
        propagation::{TextMapCompositePropagator, TextMapPropagator as _},
        trace::{SpanContext, TraceContextExt as _, TraceFlags, TraceState},
    };
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    use super::TraceContext;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn extracted(traceparent: &str, tracestate: Option<&str>) -> SpanContext {
        let mut headers = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
        if let Some(state) = tracestate {
            headers.insert("tracestate".to_owned(), state.to_owned());
        }
        TraceContext.extract(&headers).span().span_context().clone()
    }

    fn sdk_extracted(traceparent: &str) -> SpanContext {
        let headers = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
        TraceContextPropagator::new()
            .extract(&headers)
            .span()
            .span_context()
            .clone()
    }

    /// The SDK's own test vectors (opentelemetry_sdk 0.33.1, `src/propagation/trace_context.rs`),
    /// and the cases where W3C and the SDK part.
    #[test]
    fn traceparent_is_read_as_the_sdk_reads_it_and_as_w3c_requires() {
        let valid = [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            VALID,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09",
            "02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-08",
            "02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-XYZxsf09",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-",
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
        ];
        for header in valid {
            let ours = extracted(header, None);
            assert!(ours.is_valid() && ours.is_remote(), "{header}");
            assert_eq!(ours, sdk_extracted(header), "{header}");
        }
        let invalid_for_both = [
            "0000-00000000000000000000000000000000-0000000000000000-01",
            "00-ab00000000000000000000000000000000-cd00000000000000-01",
            "00-ab000000000000000000000000000000-cd0000000000000000-01",
            "00-ab000000000000000000000000000000-cd00000000000000-0100",
            "qw-00000000000000000000000000000000-0000000000000000-01",
            "00-qw000000000000000000000000000000-cd00000000000000-01",
            "00-ab000000000000000000000000000000-qw00000000000000-01",
            "00-ab000000000000000000000000000000-cd00000000000000-qw",
            "A0-00000000000000000000000000000000-0000000000000000-01",
            "00-AB000000000000000000000000000000-cd00000000000000-01",
            "00-ab000000000000000000000000000000-CD00000000000000-01",
            "00-ab000000000000000000000000000000-cd00000000000000-A1",
            "00-00000000000000000000000000000000-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "",
        ];
        for header in invalid_for_both {
            assert_eq!(
                extracted(header, None),
                SpanContext::empty_context(),
                "{header}"
            );
            assert_eq!(
                sdk_extracted(header),
                SpanContext::empty_context(),
                "{header}"
            );
        }
        // W3C: ids are exactly 32 and 16 digits, version 00 ends at the flags, no signs.
        let invalid_for_w3c_only = [
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ];
        for header in invalid_for_w3c_only {
            assert_eq!(
                extracted(header, None),
                SpanContext::empty_context(),
                "{header}"
            );
        }
    }

    #[test]
    fn tracestate_travels_with_a_valid_traceparent_and_a_malformed_one_is_dropped() {
        let kept = extracted(VALID, Some("vendor=opaque,other=1"));
        assert_eq!(kept.trace_state().header(), "vendor=opaque,other=1");
        let malformed = extracted(VALID, Some("not a list entry"));
        assert!(malformed.is_valid());
        assert_eq!(malformed.trace_state().header(), "");
    }

    #[test]
    fn injected_traceparent_is_what_the_sdk_writes_and_an_empty_tracestate_is_left_out() {
        let cases = [
            (TraceFlags::SAMPLED, "foo=bar"),
            (TraceFlags::default(), ""),
            (TraceFlags::new(0xff), "a=1,b=2"),
        ];
        for (flags, state) in cases {
            let span = SpanContext::new(
                0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736.into(),
                0x00f0_67aa_0ba9_02b7.into(),
                flags,
                false,
                state.parse::<TraceState>().expect("a valid tracestate"),
            );
            let context = Context::new().with_remote_span_context(span);
            let mut ours = HashMap::new();
            TraceContext.inject_context(&context, &mut ours);
            let mut sdk = HashMap::new();
            TraceContextPropagator::new().inject_context(&context, &mut sdk);
            assert_eq!(ours.get("traceparent"), sdk.get("traceparent"));
            assert_eq!(ours.get("tracestate").map_or("", String::as_str), state);
        }
        let mut nothing = HashMap::new();
        TraceContext.inject_context(&Context::new(), &mut nothing);
        assert!(nothing.is_empty(), "{nothing:?}");
    }

    /// The global propagator as `init_with` sets it.
    fn global() -> TextMapCompositePropagator {
        TextMapCompositePropagator::new(vec![
            Box::new(TraceContext),
            Box::new(crate::baggage::W3cBaggage::default()),
        ])
    }

    #[test]
    fn the_spans_extract_what_the_global_propagator_extracts() {
        let cases: [&[(&str, &[u8])]; 9] = [
            &[],
            &[("traceparent", VALID.as_bytes())],
            &[(
                "traceparent",
                b" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\t",
            )],
            &[(
                "traceparent",
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\xe9",
            )],
            &[
                ("traceparent", VALID.as_bytes()),
                ("tracestate", b"vendor=opaque,other=1"),
            ],
            &[
                ("traceparent", VALID.as_bytes()),
                ("tracestate", b"not a list entry"),
            ],
            &[(
                "traceparent",
                b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            )],
            &[
                ("traceparent", VALID.as_bytes()),
                ("baggage", b"user=alice,tier=gold;p=1"),
            ],
            &[("baggage", b"user=alice")],
        ];
        for case in cases {
            let mut headers = http::HeaderMap::new();
            for (name, value) in case {
                headers.insert(
                    http::HeaderName::from_static(name),
                    http::HeaderValue::from_bytes(value).expect("a header value"),
                );
            }
            let ours = super::extract(&headers);
            let theirs = global().extract(&super::HeaderExtractor(&headers));
            assert_eq!(
                ours.span().span_context(),
                theirs.span().span_context(),
                "{headers:?}"
            );
            let entries = crate::baggage::tests::entries;
            assert_eq!(entries(&ours), entries(&theirs), "{headers:?}");
        }
    }

    #[test]
    fn the_spans_inject_what_the_global_propagator_injects() {
        let span = |state: &str| {
            SpanContext::new(
                0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736.into(),
                0x00f0_67aa_0ba9_02b7.into(),
                TraceFlags::SAMPLED,
                false,
                state.parse::<TraceState>().expect("a valid tracestate"),
            )
        };
        let cases = [
            Context::new(),
            Context::new().with_remote_span_context(span("")),
            Context::new().with_remote_span_context(span("foo=bar,a=1")),
            Context::new()
                .with_remote_span_context(span(""))
                .with_baggage([KeyValue::new("user", "alice")]),
            Context::new().with_baggage([KeyValue::new("user", "a b;c")]),
        ];
        for context in cases {
            let mut ours = http::HeaderMap::new();
            super::inject(context.span().span_context(), &context, &mut ours);
            let mut theirs = http::HeaderMap::new();
            global().inject_context(&context, &mut super::HeaderInjector(&mut theirs));
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn first_values_finds_what_get_finds_for_each_name_in_one_pass() {
        use http::{HeaderMap, HeaderValue, header};
        let mut headers = HeaderMap::new();
        headers.append(header::HOST, HeaderValue::from_static("order:8001"));
        headers.append(super::TRACEPARENT, HeaderValue::from_static(VALID));
        headers.append(super::TRACEPARENT, HeaderValue::from_static("second"));
        headers.append(header::ACCEPT, HeaderValue::from_static("*/*"));
        headers.append(super::BAGGAGE, HeaderValue::from_static("user=alice"));
        let names = [
            header::USER_AGENT,
            super::TRACEPARENT,
            header::HOST,
            super::TRACESTATE,
            super::BAGGAGE,
        ];
        let found = super::first_values(&headers, &names);
        for (name, value) in names.iter().zip(found.values) {
            assert_eq!(value, headers.get(name), "{name}");
        }
        assert_eq!(
            found.values[1].map(HeaderValue::as_bytes),
            Some(VALID.as_bytes())
        );
        assert_eq!(found.repeated, [false, true, false, false, false]);
        let empty = HeaderMap::new();
        let none = super::first_values(&empty, &names);
        assert_eq!((none.values, none.repeated), ([None; 5], [false; 5]));
    }

    /// A request's header fields, in order.
    type Fields = &'static [(&'static str, &'static str)];

    /// W3C's test suite (w3c/trace-context acab820, `test/test.py`): two `traceparent` fields
    /// start a new trace (`test_traceparent_duplicated`), several `tracestate` fields are one
    /// list (`test_tracestate_multiple_headers_different_keys`), and a malformed `tracestate`
    /// loses itself, not the trace (`test_tracestate_value_illegal_characters`). Read the same
    /// by the SERVER span and by the global propagator.
    #[test]
    fn repeated_trace_context_fields_are_read_as_the_w3c_test_suite_expects() {
        const OTHER: &str = "00-12345678901234567890123456789012-1234567890123456-01";
        let cases: [(Fields, bool, &str); 5] = [
            (&[("traceparent", VALID), ("traceparent", OTHER)], false, ""),
            (
                &[
                    ("traceparent", VALID),
                    ("tracestate", "foo=1,bar=2"),
                    ("tracestate", "rojo=1,congo=2"),
                    ("tracestate", "baz=3"),
                ],
                true,
                "foo=1,bar=2,rojo=1,congo=2,baz=3",
            ),
            (
                &[
                    ("traceparent", VALID),
                    ("tracestate", ""),
                    ("tracestate", "foo=1"),
                ],
                true,
                "foo=1",
            ),
            (
                &[("traceparent", VALID), ("tracestate", "foo=bar=baz")],
                true,
                "",
            ),
            (&[("tracestate", "foo=1")], false, ""),
        ];
        for (fields, continued, state) in cases {
            let mut headers = http::HeaderMap::new();
            for (name, value) in fields {
                headers.append(
                    http::HeaderName::from_static(name),
                    http::HeaderValue::from_static(value),
                );
            }
            for context in [
                super::extract(&headers),
                global().extract(&super::HeaderExtractor(&headers)),
            ] {
                let span = context.span().span_context().clone();
                assert_eq!(span.is_valid(), continued, "{fields:?}");
                if continued {
                    assert_eq!(
                        format!("{:032x}", span.trace_id()),
                        "4bf92f3577b34da6a3ce929d0e0e4736"
                    );
                }
                assert_eq!(span.trace_state().header(), state, "{fields:?}");
            }
        }
    }

    #[test]
    fn what_is_injected_is_extracted_unchanged() {
        let span = SpanContext::new(
            0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c.into(),
            0xb7ad_6b71_6920_3331.into(),
            TraceFlags::SAMPLED,
            true,
            "congo=t61rcWkgMzE"
                .parse::<TraceState>()
                .expect("a valid tracestate"),
        );
        let mut headers = http::HeaderMap::new();
        let context = Context::new().with_remote_span_context(span.clone());
        TraceContext.inject_context(&context, &mut super::HeaderInjector(&mut headers));
        let back = TraceContext.extract(&super::HeaderExtractor(&headers));
        assert_eq!(back.span().span_context(), &span);
    }
}
