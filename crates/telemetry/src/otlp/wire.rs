//! The Protocol Buffers wire format, written forward into one buffer.
//!
//! prost encodes a message in two passes (every nested message's length first, then its bytes)
//! and only from its own structs, which opentelemetry-otlp must first build from the SDK's,
//! allocating a `String` for every key and value. [`Writer`] writes a nested message's body in
//! place behind a length slot of one byte (two for a span or a log record, whose bodies are
//! mostly 128 to 16 383 bytes: [`Writer::long_message`]) and fits the slot afterwards if the
//! body's length takes another width, which moves that body. Field values follow proto3: a
//! scalar at its default is left out (as prost leaves it out), unless the caller says it is a
//! `oneof` member.
//! The varint and key primitives are prost's own; one-byte keys and varints, and
//! [`Writer::long_message`]'s two-byte length, are written inline.

use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

/// A message being written.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// A writer that appends to `buf`.
    pub(crate) fn from_vec(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// The key and length of a message field whose `len`-byte body the caller writes next
    /// (with [`Writer::raw`] and the like): for a body whose length is known beforehand, which
    /// [`Writer::message`] would otherwise move to widen its length.
    pub(crate) fn header(&mut self, tag: u32, len: usize) {
        self.key(tag, WireType::LengthDelimited);
        self.varint(len as u64);
    }

    /// Bytes already encoded (a message body), as they are.
    pub(crate) fn raw(&mut self, encoded: &[u8]) {
        self.buf.extend_from_slice(encoded);
    }

    /// A `string` field, left out when empty.
    pub(crate) fn string(&mut self, tag: u32, value: &str) {
        if !value.is_empty() {
            self.bytes_always(tag, value.as_bytes());
        }
    }

    /// A `bytes` (or `string`) field written even when empty: a `oneof` member, or an
    /// already-encoded message.
    pub(crate) fn bytes_always(&mut self, tag: u32, value: &[u8]) {
        self.header(tag, value.len());
        self.buf.extend_from_slice(value);
    }

    /// A `bytes` field, left out when empty.
    pub(crate) fn bytes(&mut self, tag: u32, value: &[u8]) {
        if !value.is_empty() {
            self.bytes_always(tag, value);
        }
    }

    /// A `uint32` field, left out when 0.
    pub(crate) fn uint32(&mut self, tag: u32, value: u32) {
        if value != 0 {
            self.varint_always(tag, u64::from(value));
        }
    }

    /// An enum field, left out when 0.
    pub(crate) fn enumeration(&mut self, tag: u32, value: i32) {
        if value != 0 {
            // Negative enum values are sign-extended to ten bytes, as prost writes `int32`.
            self.varint_always(tag, i64::from(value) as u64);
        }
    }

    /// An `int64` or `bool` field written even at its default (a `oneof` member).
    pub(crate) fn varint_always(&mut self, tag: u32, value: u64) {
        self.key(tag, WireType::Varint);
        self.varint(value);
    }

    /// A `double` field written even when 0 (a `oneof` member).
    pub(crate) fn double_always(&mut self, tag: u32, value: f64) {
        self.key(tag, WireType::SixtyFourBit);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    /// A `fixed64` field, left out when 0.
    pub(crate) fn fixed64(&mut self, tag: u32, value: u64) {
        if value != 0 {
            self.key(tag, WireType::SixtyFourBit);
            self.buf.extend_from_slice(&value.to_le_bytes());
        }
    }

    /// A `fixed32` field, left out when 0.
    pub(crate) fn fixed32(&mut self, tag: u32, value: u32) {
        if value != 0 {
            self.key(tag, WireType::ThirtyTwoBit);
            self.buf.extend_from_slice(&value.to_le_bytes());
        }
    }

    /// A message field (always written, as prost writes a `Some` message even when empty),
    /// its body written by `body`.
    pub(crate) fn message(&mut self, tag: u32, body: impl FnOnce(&mut Self)) {
        self.key(tag, WireType::LengthDelimited);
        let slot = self.buf.len();
        self.buf.push(0);
        body(self);
        let len = self.buf.len() - slot - 1;
        if len < 0x80 {
            self.buf[slot] = len as u8;
            return;
        }
        self.fit_length(slot, 1, len);
    }

    /// [`Writer::message`] for a body that most often takes 128 to 16 383 bytes (a span, a log
    /// record): its length slot is two bytes wide from the start, so that such a body is not
    /// moved to widen it, as [`Writer::message`] moves every body longer than 127 bytes.
    pub(crate) fn long_message(&mut self, tag: u32, body: impl FnOnce(&mut Self)) {
        self.key(tag, WireType::LengthDelimited);
        let slot = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        body(self);
        let len = self.buf.len() - slot - 2;
        if (0x80..0x4000).contains(&len) {
            self.buf[slot] = len as u8 | 0x80;
            self.buf[slot + 1] = (len >> 7) as u8;
            return;
        }
        self.fit_length(slot, 2, len);
    }

    /// Writes `len` as the varint at `slot`, which has `reserved` bytes before the body: the
    /// body moves (and the buffer grows or shrinks) when the varint takes another width.
    fn fit_length(&mut self, slot: usize, reserved: usize, len: usize) {
        debug_assert_eq!(
            self.buf.len(),
            slot + reserved + len,
            "the body ends the buffer"
        );
        let width = encoded_len_varint(len as u64);
        let body = slot + reserved..slot + reserved + len;
        if width > reserved {
            self.buf.resize(self.buf.len() + width - reserved, 0);
        }
        self.buf.copy_within(body, slot + width);
        self.buf.truncate(slot + width + len);
        encode_varint(len as u64, &mut &mut self.buf[slot..slot + width]);
    }

    /// A `KeyValue` message as field `tag`: the `string` field 1 `key`, and the message field
    /// 2 (its `AnyValue`) holding the one field `member_tag` with `member` (a string, an
    /// integer, a bool or bytes), written in one go when its whole body takes under 128
    /// bytes: every length is then one byte, known before anything is written. Otherwise
    /// `false`, with nothing written, and the caller writes it as nested [`Writer::message`]s,
    /// which write each length slot after the body it measures (for a string attribute, eight
    /// pushes, two copies and two slots filled in): the encoder's largest entry in the profile
    /// (BENCHMARKS.md, thirty-first round). An empty key is refused too, since proto3 leaves it
    /// out of the message (as prost writes it), and a tag of 16 or more, which takes a
    /// two-byte key.
    pub(crate) fn small_pair(
        &mut self,
        tag: u32,
        key: &[u8],
        member_tag: u32,
        member: Member<'_>,
    ) -> bool {
        if tag >= 16 || member_tag >= 16 || key.is_empty() {
            return false;
        }
        const LEN: u8 = WireType::LengthDelimited as u8;
        let (member_key, member_len) = match member {
            Member::Bytes(bytes) => ((member_tag << 3) as u8 | LEN, 1 + bytes.len()),
            Member::Varint(value) => (
                (member_tag << 3) as u8 | WireType::Varint as u8,
                encoded_len_varint(value),
            ),
        };
        let any_value = 1 + member_len;
        let body = 2 + key.len() + 2 + any_value;
        if body >= 0x80 {
            return false;
        }
        // Fixed-length pieces where it can: stores, where a slice of variable length is a call
        // to memcpy.
        self.buf.reserve(2 + body);
        self.buf.extend_from_slice(&[
            (tag << 3) as u8 | LEN,
            body as u8,
            (1 << 3) | LEN,
            key.len() as u8,
        ]);
        self.buf.extend_from_slice(key);
        match member {
            Member::Bytes(bytes) => {
                self.buf.extend_from_slice(&[
                    (2 << 3) | LEN,
                    any_value as u8,
                    member_key,
                    bytes.len() as u8,
                ]);
                self.buf.extend_from_slice(bytes);
            }
            Member::Varint(value) => {
                self.buf
                    .extend_from_slice(&[(2 << 3) | LEN, any_value as u8, member_key]);
                self.varint(value);
            }
        }
        true
    }

    /// A field's key. Every OTLP tag but `Span.flags` (16) is below 16, so a key is one byte
    /// (prost's `encode_key` is a call and a loop for it: a tenth of an exported span's
    /// instructions went to varints).
    fn key(&mut self, tag: u32, wire_type: WireType) {
        if tag < 16 {
            self.buf.push((tag << 3) as u8 | wire_type as u8);
        } else {
            encode_key(tag, wire_type, &mut self.buf);
        }
    }

    /// A varint: one byte for the lengths and small numbers most fields hold.
    fn varint(&mut self, value: u64) {
        if value < 0x80 {
            self.buf.push(value as u8);
        } else {
            encode_varint(value, &mut self.buf);
        }
    }
}

/// The one member of a small `AnyValue` ([`Writer::small_pair`]).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Member<'a> {
    /// A `string` or `bytes` member.
    Bytes(&'a [u8]),
    /// An `int64` (as its two's complement) or `bool` member.
    Varint(u64),
}

/// The bytes a message field of tag 1–15 with a `len`-byte body takes: key, length, body.
pub(crate) fn field_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::{Writer, field_len};

    #[test]
    fn a_nested_message_longer_than_127_bytes_gets_a_two_byte_length() {
        let mut writer = Writer::default();
        let body = vec![7_u8; 300];
        writer.message(1, |w| w.bytes_always(2, &body));
        let bytes = writer.into_vec();
        // key(1, LEN), varint 303 = [0xAF, 0x02], then key(2, LEN), varint 300, body.
        assert_eq!(&bytes[..3], &[0x0A, 0xAF, 0x02]);
        assert_eq!(&bytes[3..6], &[0x12, 0xAC, 0x02]);
        assert_eq!(bytes.len(), 3 + 3 + 300);
        assert!(bytes[6..].iter().all(|b| *b == 7));
    }

    #[test]
    fn a_long_message_is_written_as_its_length_written_ahead_would_be() {
        // Under 128 (its slot shrinks), the two-byte range, over 16 383 and over 2 097 151
        // (its slot widens to three and four bytes).
        for len in [0, 1, 126, 127, 128, 300, 16_383, 16_384, 70_000, 1 << 21] {
            let body = vec![7_u8; len];
            let mut ahead = Writer::default();
            ahead.bytes_always(1, b"before");
            ahead.header(2, len);
            ahead.raw(&body);
            ahead.bytes_always(3, b"after");
            let mut long = Writer::default();
            long.bytes_always(1, b"before");
            long.long_message(2, |w| w.raw(&body));
            long.bytes_always(3, b"after");
            assert!(long.into_vec() == ahead.into_vec(), "a body of {len} bytes");
        }
    }

    #[test]
    fn a_header_written_ahead_matches_a_nested_message() {
        let body = vec![7_u8; 300];
        let mut nested = Writer::default();
        nested.message(1, |w| w.raw(&body));
        let mut ahead = Writer::default();
        ahead.header(1, body.len());
        ahead.raw(&body);
        let (nested, ahead) = (nested.into_vec(), ahead.into_vec());
        assert_eq!(nested, ahead);
        assert_eq!(field_len(body.len()), ahead.len());
    }

    #[test]
    fn a_pair_is_written_in_one_go_only_when_its_body_takes_under_128_bytes() {
        use super::Member;
        // A bool's `AnyValue` takes 2 bytes: with a key of 121 bytes the body is 127.
        let mut writer = Writer::default();
        assert!(writer.small_pair(1, &[b'k'; 121], 2, Member::Varint(1)));
        assert_eq!(writer.into_vec().len(), 2 + 127);
        let refused: [(u32, &[u8], u32, Member<'_>); 5] = [
            (1, &[b'k'; 122], 2, Member::Varint(1)),
            (1, b"", 2, Member::Varint(1)),
            (16, b"k", 2, Member::Varint(1)),
            (1, b"k", 16, Member::Varint(1)),
            (1, b"k", 1, Member::Bytes(&[b'v'; 128])),
        ];
        for (tag, key, member_tag, member) in refused {
            let mut writer = Writer::default();
            writer.raw(b"before");
            assert!(
                !writer.small_pair(tag, key, member_tag, member),
                "{member:?}"
            );
            assert_eq!(writer.into_vec(), b"before", "nothing written");
        }
    }

    #[test]
    fn defaults_are_left_out_unless_always() {
        let mut writer = Writer::default();
        writer.string(1, "");
        writer.uint32(2, 0);
        writer.fixed64(3, 0);
        writer.enumeration(4, 0);
        writer.varint_always(5, 0);
        assert_eq!(writer.into_vec(), vec![0x28, 0x00]);
    }
}
