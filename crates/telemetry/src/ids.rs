//! Trace and span ids as the lowercase hex that log lines, exemplars and `X-Trace-Id` carry,
//! written into a buffer on the stack.
//!
//! `TraceId`'s `Display` goes through `core::fmt`'s integer padding one digit at a time into a
//! new `String`: about 800 instructions an id, and order-service wrote thirteen an order
//! (BENCHMARKS.md, tenth round). Here it is a table lookup a byte (data-encoding's `HEXLOWER`).

use opentelemetry::trace::{SpanId, TraceId};

/// An id's hex digits.
#[derive(Clone, Debug)]
pub(crate) struct Hex<const N: usize>([u8; N]);

impl<const N: usize> Hex<N> {
    pub(crate) fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }

    pub(crate) fn as_str(&self) -> &str {
        // Always ASCII: `HEXLOWER` writes only `0-9a-f`.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The 32 digits of `id`, as `TraceId`'s `Display` writes them.
pub(crate) fn trace_id_hex(id: TraceId) -> Hex<32> {
    let mut digits = [0; 32];
    data_encoding::HEXLOWER.encode_mut(&id.to_bytes(), &mut digits);
    Hex(digits)
}

/// The 16 digits of `id`, as `SpanId`'s `Display` writes them.
pub(crate) fn span_id_hex(id: SpanId) -> Hex<16> {
    let mut digits = [0; 16];
    data_encoding::HEXLOWER.encode_mut(&id.to_bytes(), &mut digits);
    Hex(digits)
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceId};

    use super::{span_id_hex, trace_id_hex};

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
}
