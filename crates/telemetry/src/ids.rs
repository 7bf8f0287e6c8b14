//! Trace and span ids as the lowercase hex that log lines, exemplars and `X-Trace-Id` carry,
//! written into a buffer on the stack.
//!
//! `TraceId`'s `Display` goes through `core::fmt`'s integer padding one digit at a time into a
//! new `String`: about 800 instructions an id, and order-service wrote thirteen an order
//! (BENCHMARKS.md, tenth round). data-encoding's `HEXLOWER` did it for the tenth to the
//! thirteenth rounds, but its general codec (any bit width, padding, wrapping) took about 270
//! instructions for a trace id and 880 to read a `traceparent`'s ids back, ten thousand an
//! order (fourteenth round). Here a byte is one lookup in a table of digit pairs, and a digit
//! read back one lookup, checked once for the whole id: 2.6 k instructions an order fewer
//! than a lookup and a check a digit (nineteenth round).

use opentelemetry::trace::{SpanId, TraceId};

/// An id's hex digits.
#[derive(Clone, Debug)]
pub(crate) struct Hex<const N: usize>([u8; N]);

impl<const N: usize> Hex<N> {
    pub(crate) fn as_str(&self) -> &str {
        // Always ASCII: `write_hex` writes only `0-9a-f`.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The lowercase hex digits, by value.
const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The two lowercase hex digits of every byte.
static DIGIT_PAIRS: [[u8; 2]; 256] = {
    let mut pairs = [[0; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [DIGITS[byte >> 4], DIGITS[byte & 0x0f]];
        byte += 1;
    }
    pairs
};

/// The value of every lowercase hex digit, and [`NOT_HEX`] for every other byte.
static DIGIT_VALUES: [u8; 256] = {
    let mut values = [NOT_HEX; 256];
    let mut digit = 0;
    while digit < 16 {
        values[DIGITS[digit] as usize] = digit as u8;
        digit += 1;
    }
    values
};

/// Marks a byte that is not a lowercase hex digit: any bit above the low four will do.
const NOT_HEX: u8 = 0xf0;

/// Writes the lowercase hex digits of `bytes` into `digits`, two a byte (as far as both go).
pub(crate) fn write_hex(bytes: &[u8], digits: &mut [u8]) {
    for (byte, pair) in bytes.iter().zip(digits.chunks_exact_mut(2)) {
        pair.copy_from_slice(&DIGIT_PAIRS[usize::from(*byte)]);
    }
}

/// The `N` bytes of exactly `2 * N` lowercase hex digits; `None` for anything else (capitals
/// too: W3C Trace Context allows only lowercase).
pub(crate) fn read_hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let mut bytes = [0; N];
    // Every digit is read, then checked once: a branch a digit cost more than the lookups.
    let mut seen = 0;
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let high = DIGIT_VALUES[usize::from(pair[0])];
        let low = DIGIT_VALUES[usize::from(pair[1])];
        seen |= high | low;
        *byte = high << 4 | low;
    }
    (seen & NOT_HEX == 0).then_some(bytes)
}

/// The 32 digits of `id`, as `TraceId`'s `Display` writes them.
pub(crate) fn trace_id_hex(id: TraceId) -> Hex<32> {
    let mut digits = [0; 32];
    write_hex(&id.to_bytes(), &mut digits);
    Hex(digits)
}

/// The 16 digits of `id`, as `SpanId`'s `Display` writes them.
pub(crate) fn span_id_hex(id: SpanId) -> Hex<16> {
    let mut digits = [0; 16];
    write_hex(&id.to_bytes(), &mut digits);
    Hex(digits)
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceId};

    use super::{read_hex, span_id_hex, trace_id_hex, write_hex};

    #[test]
    fn ids_are_written_as_the_sdk_writes_them() {
        for trace in [0, 1, 0x0af7651916cd43dd8448eb211c80319c, u128::MAX] {
            let id = TraceId::from(trace);
            assert_eq!(trace_id_hex(id).as_str(), id.to_string());
        }
        for span in [0, 1, 0xb7ad6b7169203331, u64::MAX] {
            let id = SpanId::from(span);
            assert_eq!(span_id_hex(id).as_str(), id.to_string());
        }
    }

    #[test]
    fn hex_reads_back_what_it_writes_and_refuses_capitals_odd_lengths_and_other_characters() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut digits = vec![0; 512];
        write_hex(&bytes, &mut digits);
        for (byte, pair) in bytes.iter().zip(digits.chunks_exact(2)) {
            assert_eq!(pair, format!("{byte:02x}").as_bytes());
            assert_eq!(read_hex::<1>(pair), Some([*byte]));
        }
        assert_eq!(read_hex::<2>(b"00f0"), Some([0x00, 0xf0]));
        for bad in [&b"0A"[..], b"0", b"000", b"g0", b"-1", b" 1", b"+1"] {
            assert_eq!(read_hex::<1>(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn one_bad_digit_anywhere_in_an_id_refuses_the_whole_id() {
        let good = trace_id_hex(TraceId::from(0x0af7651916cd43dd8448eb211c80319c));
        assert!(read_hex::<16>(good.as_str().as_bytes()).is_some());
        for position in 0..32 {
            for bad in [b'G', b'F', b'g', b':', b'/', b'`', 0x80, 0xff] {
                let mut digits = *good.as_str().as_bytes().first_chunk::<32>().expect("32");
                digits[position] = bad;
                assert_eq!(read_hex::<16>(&digits), None, "{bad} at {position}");
            }
        }
    }
}
