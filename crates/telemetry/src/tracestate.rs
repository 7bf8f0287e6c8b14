//! The `tracestate` a request brings, read as W3C Trace Context asks and held to 512 bytes.
//!
//! The SDK's `TraceState::from_str` (opentelemetry 0.33.1, `src/trace/span_context.rs`) reads
//! only one header, accepts what W3C refuses (an empty key, a duplicate key, `a==b` read as
//! `a=b`, a 33rd member, which it drops instead of refusing the list) and refuses what W3C
//! allows (`@` more than once in a key, followed by more than 13 characters, or by one of
//! `_-*/`). It also keeps 32 members
//! of 513 bytes each: 16 KB that the sampler copies into every span of the trace, in every
//! service, so that a few hundred such spans made one export request larger than the
//! collector's 4 MiB limit and lost everyone's spans with them. Here the list is read as W3C
//! Trace Context Level 2 defines it (spec/20-http_request_header_format.md, "tracestate Header
//! Field Values", and the test suite's `test/test.py`, w3c/trace-context acab820):
//! - several `tracestate` fields are one list, joined in their order (RFC 9110 §5.3);
//! - empty members and the spaces and tabs around a member are ignored;
//! - a malformed member, or more than 32, make the whole list malformed, and it is dropped
//!   (the `traceparent` beside it still counts);
//! - of a key given twice, the first (leftmost, most recent) member is kept;
//! - a list longer than [`MAX_LEN`] bytes loses whole members, those over 128 bytes first,
//!   then from the end, as W3C's "tracestate Limits" ask of a vendor that keeps less.
//!
//! A member whose key W3C allows but the SDK's `TraceState` cannot hold is left out alone:
//! the one departure from the test suite, whose `test_tracestate_key_illegal_vendor_format`
//! and `test_tracestate_key_length_limit` expect `foo@@bar`, `foo@bar@baz`, `t@` and 15 `v`s,
//! and 241 `t`s, `@` and 14 `v`s to be kept (the SDK refuses the whole list for any of them).

use opentelemetry::trace::TraceState;

/// The most `tracestate` bytes kept, and so passed on and exported with each span: the length
/// W3C asks every vendor to propagate at least.
pub(crate) const MAX_LEN: usize = 512;

/// W3C: "There can be a maximum of 32 list-members in a list."
const MAX_MEMBERS: usize = 32;

/// W3C: "Entries larger than 128 characters long SHOULD be removed first."
const LONG_MEMBER: usize = 128;

/// The trace state of `fields`, the values of a request's `tracestate` headers in order: empty
/// if the list they make is malformed (see the module's documentation).
pub(crate) fn parse<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> TraceState {
    match members(fields) {
        Some(members) if !members.is_empty() => held(members).unwrap_or_default(),
        _ => TraceState::NONE,
    }
}

/// The members of the list, duplicates after the first dropped, or `None` if it is malformed.
fn members<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<(&'a str, &'a str)>> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    let mut count = 0;
    for field in fields {
        for member in field.split(|&b| b == b',') {
            let member = trim_ows(member);
            if member.is_empty() {
                continue;
            }
            count += 1;
            if count > MAX_MEMBERS {
                return None;
            }
            let (key, value) = member_of(member)?;
            if !members.iter().any(|(known, _)| *known == key) {
                members.push((key, value));
            }
        }
    }
    Some(members)
}

/// `member` without the spaces and tabs around it (W3C's `OWS`).
fn trim_ows(member: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = member.iter().position(|b| !ows(b)).unwrap_or(member.len());
    let end = member
        .iter()
        .rposition(|b| !ows(b))
        .map_or(start, |last| last + 1);
    &member[start..end]
}

/// The key and value of one member (`key=value`, trimmed), if both are valid.
fn member_of(member: &[u8]) -> Option<(&str, &str)> {
    let at = member.iter().position(|&b| b == b'=')?;
    let (key, value) = (&member[..at], &member[at + 1..]);
    // Both checks admit ASCII only, so the bytes are UTF-8.
    (valid_key(key) && valid_value(value)).then(|| {
        (
            std::str::from_utf8(key).unwrap_or_default(),
            std::str::from_utf8(value).unwrap_or_default(),
        )
    })
}

/// `key = ( lcalpha / DIGIT ) 0*255 ( keychar )`, `keychar = lcalpha / DIGIT / "_" / "-" /
/// "*" / "/" / "@"`.
fn valid_key(key: &[u8]) -> bool {
    let Some((&first, rest)) = key.split_first() else {
        return false;
    };
    key.len() <= 256
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && rest
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/@".contains(&b))
}

/// `value = 0*255(chr) nblk-chr`: printable ASCII but `,` and `=`, not ending in a space
/// (trailing spaces were trimmed as the member's optional whitespace).
fn valid_value(value: &[u8]) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && value.last() != Some(&b' ')
        && value
            .iter()
            .all(|&b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
}

/// `members` as a `TraceState` of at most [`MAX_LEN`] bytes, without the ones the SDK cannot
/// hold.
fn held(members: Vec<(&str, &str)>) -> Option<TraceState> {
    let mut members: Vec<(&str, &str)> = members
        .into_iter()
        .filter(|member| TraceState::from_key_value([*member]).is_ok())
        .collect();
    let length = |members: &[(&str, &str)]| -> usize {
        members
            .iter()
            .map(|(k, v)| k.len() + 1 + v.len())
            .sum::<usize>()
            + members.len().saturating_sub(1)
    };
    while length(&members) > MAX_LEN {
        let long = members
            .iter()
            .rposition(|(k, v)| k.len() + 1 + v.len() > LONG_MEMBER);
        match long {
            Some(at) => members.remove(at),
            None => members.pop()?,
        };
    }
    TraceState::from_key_value(members).ok()
}

#[cfg(test)]
mod tests {
    use super::{MAX_LEN, parse};

    fn read(fields: &[&str]) -> String {
        parse(fields.iter().map(|f| f.as_bytes())).header()
    }

    /// The cases of W3C's test suite (w3c/trace-context acab820, `test/test.py`), each with
    /// what it accepts, but the keys the SDK cannot hold (the next test).
    #[test]
    fn tracestate_is_read_as_the_w3c_test_suite_expects() {
        // test_tracestate_included_traceparent_included, _ows_handling
        assert_eq!(read(&["foo=1,bar=2"]), "foo=1,bar=2");
        assert_eq!(
            read(&["foo=1 \t , \t bar=2, \t baz=3"]),
            "foo=1,bar=2,baz=3"
        );
        assert_eq!(
            read(&["foo=1\t \t,\t \tbar=2,\t \tbaz=3"]),
            "foo=1,bar=2,baz=3"
        );
        for one in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
            assert_eq!(read(&[one]), "foo=1", "{one:?}");
        }
        // test_tracestate_empty_header
        assert_eq!(read(&[""]), "");
        assert_eq!(read(&["foo=1", ""]), "foo=1");
        assert_eq!(read(&["", "foo=1"]), "foo=1");
        // test_tracestate_multiple_headers_different_keys
        assert_eq!(
            read(&["foo=1,bar=2", "rojo=1,congo=2", "baz=3"]),
            "foo=1,bar=2,rojo=1,congo=2,baz=3"
        );
        // test_tracestate_duplicated_keys: either kept, or one of them dropped.
        assert_eq!(read(&["foo=1,foo=1"]), "foo=1");
        assert_eq!(read(&["foo=1,foo=2"]), "foo=1");
        assert_eq!(read(&["foo=1", "foo=2"]), "foo=1");
        // test_tracestate_all_allowed_characters
        let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
        let value: String = (0x20u8..=0x7e)
            .filter(|&b| b != b',' && b != b'=')
            .map(char::from)
            .collect();
        assert_eq!(read(&[&format!("{key}={value}")]), format!("{key}={value}"));
        // test_tracestate_key_illegal_characters
        for malformed in ["foo =1", "FOO=1", "foo.bar=1"] {
            assert_eq!(read(&[malformed]), "", "{malformed:?}");
        }
        // test_tracestate_key_illegal_vendor_format: a key may hold `@`, not begin with it.
        assert_eq!(read(&["foo@=1,bar=2"]), "foo@=1,bar=2");
        assert_eq!(read(&["@foo=1,bar=2"]), "");
        // test_tracestate_value_illegal_characters
        assert_eq!(read(&["foo=bar=baz"]), "");
        assert_eq!(read(&["foo=,bar=3"]), "");
        // test_tracestate_member_count_limit: 32 members, but not 33.
        let members = |n: usize| {
            (1..=n)
                .map(|i| format!("bar{i:02}={i:02}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(read(&[&members(32)]).split(',').count(), 32);
        // Thirty across three fields, the last ten repeating keys of the first: twenty.
        assert_eq!(
            read(&[&members(20), "", &members(10)]).split(',').count(),
            20
        );
        assert_eq!(read(&[&members(33)]), "");
        assert_eq!(read(&[&members(30), "bar31=31,bar32=32,bar33=33"]), "");
        // test_tracestate_key_length_limit: 256 characters, not 257.
        let key = "z".repeat(256);
        assert_eq!(
            read(&["foo=1", &format!("{key}=1")]),
            format!("foo=1,{key}=1")
        );
        assert_eq!(read(&["foo=1", &format!("{}=1", "z".repeat(257))]), "");
        // A value of 256 characters, not 257.
        let value = "v".repeat(256);
        assert_eq!(read(&[&format!("k={value}")]), format!("k={value}"));
        assert_eq!(read(&[&format!("k={value}v")]), "");
        // Not text at all.
        assert_eq!(parse([&b"foo=\xe9"[..]]).header(), "");
    }

    /// What W3C allows and the SDK's `TraceState` cannot hold is left out, the rest kept,
    /// where the test suite expects all of it (see the module's documentation).
    #[test]
    fn a_member_the_sdk_cannot_hold_is_left_out_alone() {
        assert_eq!(read(&["foo@@bar=1,bar=2"]), "bar=2");
        assert_eq!(read(&["foo@bar@baz=1,bar=2"]), "bar=2");
        let key = format!("{}@{}", "t".repeat(241), "v".repeat(14));
        assert_eq!(read(&["foo=1", &format!("{key}=1")]), "foo=1");
        assert_eq!(
            read(&["foo=1", &format!("t@{}=1", "v".repeat(15))]),
            "foo=1"
        );
    }

    #[test]
    fn a_long_list_loses_whole_members_the_longest_first_then_from_the_end() {
        let long = format!("long={}", "l".repeat(200));
        let short = |i: usize| format!("s{i:02}={}", "x".repeat(36));
        // Sixteen short members of 40 bytes and the long one of 205, with commas: 861 bytes.
        let mut fields: Vec<String> = (0..8).map(short).collect();
        fields.push(long.clone());
        fields.extend((8..16).map(short));
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let header = read(&[&fields.join(",")]);
        assert!(header.len() <= MAX_LEN, "{}", header.len());
        assert!(!header.contains("long="), "{header}");
        // Without the long one, 16 × 40 + 15 = 655 > 512: the last four go too (12 × 40 + 11).
        let kept: Vec<&str> = header.split(',').collect();
        assert_eq!(kept.len(), 12, "{header}");
        assert_eq!(kept.first().map(|m| &m[..3]), Some("s00"));
        assert_eq!(kept.last().map(|m| &m[..3]), Some("s11"));
        // 32 members of 461 bytes each, which the SDK kept whole (15 KB): the first is left.
        let huge: Vec<String> = (0..32)
            .map(|i| format!("k{i:03}{}={}", "k".repeat(200), "v".repeat(256)))
            .collect();
        let huge: Vec<&str> = huge.iter().map(String::as_str).collect();
        assert_eq!(read(&huge), huge[0]);
    }
}
