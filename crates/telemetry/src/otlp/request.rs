//! An export request as both transports send it: the protobuf message (`Export…ServiceRequest`)
//! with the head of its gRPC frame written in front of it, so that neither transport copies it.
//!
//! gRPC sends a message behind a compression flag and the message's length (gRPC over HTTP/2,
//! "Length-Prefixed-Message"). tonic's client writes those five bytes into a buffer of its own
//! and copies the message in after them: every export's bytes once more (about 5 k instructions
//! an order), in a buffer grown from 8 KiB and freed for each batch. Without that copy and
//! tonic's client, spans over gRPC run 6–8 k fewer instructions an order (3–4 % of a span's),
//! the default 9 k (BENCHMARKS.md, thirtieth round). So the batches leave the five bytes free
//! where they write the request (`spans`, `common::request`), the frame's head is written
//! there, the gRPC transport (`grpc`) sends the bytes whole, and OTLP/HTTP sends the message
//! alone: a slice of the same bytes.

use bytes::Bytes;

/// The head of a gRPC frame: a compression flag (0: not compressed) and the message's length,
/// four bytes big-endian.
pub(crate) const FRAME_HEAD: usize = 5;

/// A message and its gRPC frame's head, in one buffer.
#[derive(Debug)]
pub(crate) struct Request(Bytes);

impl Request {
    /// A buffer of `capacity` bytes more than [`FRAME_HEAD`], the first [`FRAME_HEAD`] written
    /// free: a message written after them becomes its request by [`Request::framed`] at 0.
    pub(crate) fn buffer(capacity: usize) -> Vec<u8> {
        let mut buf = Vec::with_capacity(FRAME_HEAD + capacity);
        buf.resize(FRAME_HEAD, 0);
        buf
    }

    /// The request whose message is `buf[start + FRAME_HEAD..]`, its frame's head written in
    /// the [`FRAME_HEAD`] bytes before it, which the caller left free.
    pub(crate) fn framed(mut buf: Vec<u8>, start: usize) -> Self {
        let message = buf.len() - start - FRAME_HEAD;
        // A message of 4 GiB or more has no length a frame can carry: [`Request::frame`]
        // refuses it, OTLP/HTTP may still send it.
        let length = u32::try_from(message).unwrap_or(u32::MAX);
        buf[start] = 0;
        buf[start + 1..start + FRAME_HEAD].copy_from_slice(&length.to_be_bytes());
        Self(Bytes::from(buf).slice(start..))
    }

    /// The message alone: OTLP/HTTP's body.
    pub(crate) fn message(&self) -> Bytes {
        self.0.slice(FRAME_HEAD..)
    }

    /// The message in its gRPC frame, or `None` if it is too long for one.
    pub(crate) fn frame(&self) -> Option<Bytes> {
        let fits = u32::try_from(self.0.len() - FRAME_HEAD).is_ok();
        fits.then(|| self.0.clone())
    }

    /// The message's length.
    pub(crate) fn len(&self) -> usize {
        self.0.len() - FRAME_HEAD
    }
}

#[cfg(test)]
mod tests {
    use super::{FRAME_HEAD, Request};

    #[test]
    fn a_framed_request_is_its_message_behind_a_zero_flag_and_its_length() {
        let message: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
        // Written in place, after bytes the request does not include.
        let mut buf = vec![7u8; 9 + FRAME_HEAD];
        buf.extend_from_slice(&message);
        let request = Request::framed(buf, 9);
        assert_eq!(request.message().as_ref(), message.as_slice());
        assert_eq!(request.len(), 300);
        let frame = request.frame().expect("fits a frame");
        assert_eq!(&frame[..FRAME_HEAD], &[0, 0, 0, 1, 44]);
        assert_eq!(&frame[FRAME_HEAD..], message.as_slice());

        // Written after a buffer's free head.
        let mut buf = Request::buffer(2);
        buf.extend_from_slice(b"\x0a\x00");
        let request = Request::framed(buf, 0);
        assert_eq!(
            request.frame().expect("fits").as_ref(),
            b"\x00\x00\x00\x00\x02\x0a\x00"
        );
        assert_eq!(request.message().as_ref(), b"\x0a\x00");

        let empty = Request::framed(Request::buffer(0), 0);
        assert_eq!(empty.frame().expect("fits").as_ref(), &[0; FRAME_HEAD]);
        assert!(empty.message().is_empty());
    }
}
