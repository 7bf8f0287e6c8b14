//! The `baggage` a request brings, read as W3C Baggage means it.
//!
//! opentelemetry_sdk 0.33.1's `BaggagePropagator` (`src/propagation/baggage.rs`) reads only
//! the first `baggage` field, and cuts a value at its second `=` (`split('=')`):
//! `token=YWJjZA==` arrives as `YWJjZA` and is passed on so. W3C Baggage allows several fields,
//! one list as RFC 9110 §5.3 joins them, and `=` in a value (`baggage-octet` includes it:
//! base64's padding, say). [`W3cBaggage`] extracts as the SDK does, with its limits (8 192
//! bytes of header, checked before any member is read; 64 members; the SDK's `Baggage` holds
//! each to its own), its percent-decoding and its properties, from every field, with a value
//! running to the member's first `;`. Injection is the SDK's.

use opentelemetry::{
    Context,
    baggage::{BaggageExt as _, KeyValueMetadata},
    propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter},
};
use opentelemetry_sdk::propagation::BaggagePropagator;
use percent_encoding::percent_decode_str;

/// W3C Baggage's limit on the header, all fields together, as the SDK has it.
const MAX_LENGTH: usize = 8192;

/// W3C Baggage's limit on members, as the SDK has it.
const MAX_MEMBERS: usize = 64;

/// W3C Baggage: extracted by [`member`], the SDK's rules with every field read and the whole
/// of each value; injected by the SDK's propagator.
#[derive(Debug, Default)]
pub(crate) struct W3cBaggage(BaggagePropagator);

impl TextMapPropagator for W3cBaggage {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        self.0.inject_context(cx, injector);
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let Some(fields) = extractor.get_all("baggage") else {
            return cx.clone();
        };
        // The fields as one, with a comma between each two.
        let length = fields.iter().map(|f| f.len()).sum::<usize>() + fields.len().saturating_sub(1);
        if length > MAX_LENGTH {
            return cx.clone();
        }
        cx.with_baggage(
            fields
                .iter()
                .flat_map(|field| field.split(','))
                .take(MAX_MEMBERS)
                .filter_map(member),
        )
    }

    fn fields(&self) -> FieldIter<'_> {
        self.0.fields()
    }
}

/// One list member, `key=value;property;…`, percent-decoded and trimmed as the SDK does it;
/// `None` if it has no `=` or is not UTF-8 once decoded.
fn member(text: &str) -> Option<KeyValueMetadata> {
    let mut parts = text.split(';');
    let (key, value) = parts.next()?.split_once('=')?;
    let key = percent_decode_str(key).decode_utf8().ok()?;
    let value = percent_decode_str(value).decode_utf8().ok()?;
    let properties: Vec<String> = parts
        .flat_map(|property| percent_decode_str(property).decode_utf8())
        .map(|property| property.trim().to_owned())
        .collect();
    Some(KeyValueMetadata::new(
        key.trim().to_owned(),
        value.trim().to_owned(),
        properties.join(";").as_str(),
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;

    use opentelemetry::{Context, baggage::BaggageExt as _, propagation::TextMapPropagator as _};

    use super::W3cBaggage;

    /// The baggage extracted from a request with `fields` as its `baggage` header fields, read
    /// through the SERVER span's own header adapter.
    fn extracted(fields: &[&str]) -> Vec<(String, String, String)> {
        let mut headers = http::HeaderMap::new();
        for field in fields {
            let value = http::HeaderValue::from_str(field).expect("a header value");
            headers.append(crate::propagation::BAGGAGE, value);
        }
        let extractor = crate::propagation::HeaderExtractor(&headers);
        entries(&W3cBaggage::default().extract_with_context(&Context::new(), &extractor))
    }

    /// The baggage of `context` as (key, value, metadata), sorted.
    pub(crate) fn entries(context: &Context) -> Vec<(String, String, String)> {
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
    fn every_baggage_field_is_read() {
        assert_eq!(
            extracted(&["user=alice", "tier=gold;p=1"]),
            [entry("tier", "gold", "p=1"), entry("user", "alice", "")]
        );
    }

    /// W3C Baggage's limits: all 64 members of a header of at most 8 192 bytes are kept, the
    /// `=`s in their values included; a header over 8 192 bytes, all fields together, is
    /// dropped whole, as the SDK drops one field over it.
    #[test]
    fn a_header_within_the_limits_is_kept_whole_and_one_over_them_dropped() {
        let value = format!("{}==", "b".repeat(118));
        let members: Vec<String> = (0..64).map(|i| format!("k{i:02}={value}")).collect();
        let header = members.join(",");
        assert!(header.len() <= 8192, "{}", header.len());
        let kept = extracted(&[&header]);
        assert_eq!(kept.len(), 64);
        assert!(kept.iter().all(|(_, v, _)| *v == value));
        let half = members[..40].join(",");
        assert!(half.len() * 2 > 8192);
        assert_eq!(extracted(&[&half, &half]), []);
    }

    /// A guard, not a test of the mends: the SDK's own extraction passes it too.
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
