//! W3C Trace Context (`traceparent`, `tracestate`) and the HTTP headers it travels in.
//!
//! [`TraceContext`] is the global propagator's first half (Baggage, the SDK's, is the second):
//! the SDK's `TraceContextPropagator` formats each `traceparent` with `format!` (ids through
//! `core::fmt`, one digit at a time) and parses each by splitting into a `Vec` and
//! `u128::from_str_radix`: 4.7 k instructions an injection (its header adapter included) and
//! 3.7 k an extraction, for each of the five calls of an order (BENCHMARKS.md, tenth round). This one writes and reads the 55 bytes
//! in place, and follows the W3C recommendation more strictly than the SDK does: ids of the
//! wrong length, a version 00 header with anything after the flags, and hex with a sign are
//! refused (the SDK accepts the first two and `+` signs), and an empty `tracestate` is not
//! sent. [`HeaderInjector`] and [`HeaderExtractor`] name the three propagation headers with
//! constants, where tracing-opentelemetry-instrumentation-sdk's parse each name per call.
//!
//! Spec: <https://www.w3.org/TR/trace-context/#traceparent-header>.

use std::{str::FromStr as _, sync::LazyLock};

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
    trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState},
};

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const BAGGAGE: HeaderName = HeaderName::from_static("baggage");

/// `00-` + 32 + `-` + 16 + `-` + 2.
const TRACEPARENT_LEN: usize = 55;

static FIELDS: LazyLock<[String; 2]> =
    LazyLock::new(|| ["traceparent".to_owned(), "tracestate".to_owned()]);

/// The W3C Trace Context propagator. See the module's documentation.
#[derive(Debug, Default)]
pub(crate) struct TraceContext;

impl TextMapPropagator for TraceContext {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let span_context = span.span_context();
        if !span_context.is_valid() {
            return;
        }
        // Always ASCII: `traceparent` writes only `0-9a-f` and `-`.
        let header = std::str::from_utf8(&traceparent(span_context))
            .unwrap_or_default()
            .to_owned();
        injector.set("traceparent", header);
        let state = span_context.trace_state().header();
        if !state.is_empty() {
            injector.set("tracestate", state);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let Some((trace_id, span_id, flags)) = extractor.get("traceparent").and_then(parse) else {
            return cx.clone();
        };
        let state = extractor
            .get("tracestate")
            .and_then(|state| TraceState::from_str(state).ok())
            .unwrap_or_default();
        cx.with_remote_span_context(SpanContext::new(trace_id, span_id, flags, true, state))
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
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
fn parse(header: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let header = header.trim().as_bytes();
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
        let value = match key {
            "traceparent" => self.0.get(TRACEPARENT),
            "tracestate" => self.0.get(TRACESTATE),
            "baggage" => self.0.get(BAGGAGE),
            other => self.0.get(other),
        };
        value.and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Writes the trace context (and baggage) of `context` into `headers`, with the global
/// propagator.
pub(crate) fn inject(context: &Context, headers: &mut HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(context, &mut HeaderInjector(headers));
    });
}

/// The context `headers` carry (a new one if they carry none, or a malformed one), with the
/// global propagator.
pub(crate) fn extract(headers: &HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::{
        Context,
        propagation::TextMapPropagator as _,
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
