//! The `baggage` a request brings, read as W3C Baggage means it, by the SDK's propagator.
//!
//! opentelemetry_sdk 0.33.1's `BaggagePropagator` (`src/propagation/baggage.rs`) reads only
//! the first `baggage` field, and cuts a value at its first `=` (`split('=')`): `token=YWJjZA==`
//! arrives as `YWJjZA` and is passed on so. W3C Baggage allows several fields, one list as
//! RFC 9110 §5.3 joins them, and `=` in a value (`baggage-octet` includes it: base64's padding,
//! say). [`W3cBaggage`] hands the SDK's propagator the fields joined, with each `=` inside a
//! value written `%3D`, which the SDK decodes back to `=` (and writes so when it injects).
//! Everything else is the SDK's: its limits (64 members, 8 192 bytes of header, counted after
//! the `%3D`s), percent-decoding, properties and injection.

use std::borrow::Cow;

use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
};
use opentelemetry_sdk::propagation::BaggagePropagator;

/// The SDK's W3C Baggage propagator, given every field and the whole of each value.
#[derive(Debug, Default)]
pub(crate) struct W3cBaggage(BaggagePropagator);

impl TextMapPropagator for W3cBaggage {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.0.inject_context(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extractor.get_all("baggage") {
            Some(fields) => self
                .0
                .extract_with_context(cx, &OneField(&as_one_field(&fields))),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        self.0.fields()
    }
}

/// A `baggage` header of one field, for the SDK's propagator.
struct OneField<'a>(&'a str);

impl Extractor for OneField<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "baggage").then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec!["baggage"]
    }
}

/// `fields` as one, joined by commas, with every `=` after a member's first (before its
/// properties) written `%3D`. Borrowed when that changes nothing.
fn as_one_field<'a>(fields: &[&'a str]) -> Cow<'a, str> {
    let joined = match fields {
        [one] => Cow::Borrowed(*one),
        many => Cow::Owned(many.join(",")),
    };
    let inner_equals = |member: &str| {
        let pair = member.split(';').next().unwrap_or_default();
        pair.bytes().filter(|&b| b == b'=').count() > 1
    };
    if !joined.split(',').any(inner_equals) {
        return joined;
    }
    let escaped: Vec<String> = joined
        .split(',')
        .map(|member| {
            let (pair, properties) = match member.split_once(';') {
                Some((pair, properties)) => (pair, Some(properties)),
                None => (member, None),
            };
            let pair = match pair.split_once('=') {
                Some((key, value)) => format!("{key}={}", value.replace('=', "%3D")),
                None => pair.to_owned(),
            };
            match properties {
                Some(properties) => format!("{pair};{properties}"),
                None => pair,
            }
        })
        .collect();
    Cow::Owned(escaped.join(","))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use opentelemetry::{
        Context,
        baggage::BaggageExt as _,
        propagation::{Extractor, TextMapPropagator as _},
    };

    use super::W3cBaggage;

    /// Headers of several fields each, as `http::HeaderMap` holds them.
    struct Fields(Vec<(&'static str, &'static str)>);

    impl Extractor for Fields {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
        }

        fn keys(&self) -> Vec<&str> {
            self.0.iter().map(|(k, _)| *k).collect()
        }

        fn get_all(&self, key: &str) -> Option<Vec<&str>> {
            let all: Vec<&str> = self
                .0
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .collect();
            (!all.is_empty()).then_some(all)
        }
    }

    fn extracted(fields: &[&'static str]) -> Vec<(String, String, String)> {
        let headers = Fields(fields.iter().map(|v| ("baggage", *v)).collect());
        let context = W3cBaggage::default().extract_with_context(&Context::new(), &headers);
        let mut entries: Vec<_> = context
            .baggage()
            .iter()
            .map(|(k, (v, m))| (k.to_string(), v.to_string(), m.as_str().to_owned()))
            .collect();
        entries.sort();
        entries
    }

    fn entry(key: &str, value: &str, metadata: &str) -> (String, String, String) {
        (key.to_owned(), value.to_owned(), metadata.to_owned())
    }

    #[test]
    fn a_value_keeps_its_equals_signs() {
        assert_eq!(
            extracted(&["token=YWJjZA==,user=alice"]),
            [entry("token", "YWJjZA==", ""), entry("user", "alice", "")]
        );
        assert_eq!(extracted(&["k=a=b;p=1=2"]), [entry("k", "a=b", "p=1=2")]);
        // The SDK's percent-decoding is kept: `%3D` written by a sender is `=` too.
        assert_eq!(extracted(&["k=a%3Db"]), [entry("k", "a=b", "")]);
    }

    #[test]
    fn every_baggage_field_is_read_in_order() {
        assert_eq!(
            extracted(&["user=alice", "tier=gold;p=1"]),
            [entry("tier", "gold", "p=1"), entry("user", "alice", "")]
        );
    }

    #[test]
    fn what_is_injected_is_extracted_unchanged() {
        let mut headers = HashMap::new();
        let context =
            Context::new().with_baggage([opentelemetry::KeyValue::new("token", "YWJjZA==")]);
        W3cBaggage::default().inject_context(&context, &mut headers);
        let back = W3cBaggage::default().extract(&headers);
        assert_eq!(
            back.baggage()
                .get("token")
                .map(ToString::to_string)
                .as_deref(),
            Some("YWJjZA==")
        );
    }
}
