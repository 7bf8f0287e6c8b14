//! One OTLP/gRPC export attempt: a unary call over tonic's `Channel` (its HTTP/2 connection,
//! made lazily and again when lost, its timeouts and user agent), the request's bytes sent as
//! they were encoded, and the answer read by the gRPC protocol's rules.
//!
//! Not `tonic::client::Grpc` with a codec: its encoder copies every request into a buffer of
//! its own (`request` says what that cost). The rest of what it did is done here with tonic's
//! types: a call's headers (gRPC over HTTP/2: `te`, `content-type`, `grpc-timeout`, the
//! configured ones less those reserved to gRPC), the status from the trailers or from a
//! trailers-only answer, an HTTP status without one mapped as grpc's
//! `doc/http-grpc-status-mapping.md` has it (tonic 0.14.9, `src/status.rs`,
//! `infer_grpc_status`), and transport errors read by `Status::from_error`.
//!
//! Where it differs from tonic 0.14.9's client, on purpose: a `grpc-status-details-bin` that is
//! not base64 is ignored (tonic's `Status::from_header_map` panics, in the task that sends,
//! which would stop every later export); an accepted answer whose message is missing,
//! compressed or longer than [`MAX_RESPONSE_BYTES`] is still an acceptance, its partial success
//! unread, as over OTLP/HTTP (tonic failed the export: a missing or compressed message as
//! `Internal`, the batch counted lost though the collector had it; one over 4 MiB as
//! `OutOfRange`, retried, so the batch went again); an answer that is not HTTP 200 and has no
//! `grpc-status` in its headers is judged by its HTTP status without reading its body (tonic
//! read the body as gRPC frames first, and a proxy's 503 with an HTML body became a
//! non-retryable `Internal`); a `grpc-message` that is not UTF-8 is read lossily (tonic made
//! the code `Unknown`); `grpc-timeout` is in milliseconds (tonic used the finest unit that
//! fits); the request carries its `content-length`; and the export's deadline bounds the
//! whole attempt, the answer's body included (tonic's bounded the wait for the answer's head).

use std::time::Duration;

use base64::{
    Engine as _, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use bytes::{Bytes, BytesMut};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version, header};
use http_body_util::{BodyExt as _, Full};
use percent_encoding::percent_decode;
use tonic::{Code, Status, body::Body, transport::Channel};
use tonic_types::StatusExt as _;
use tower::{Service as _, ServiceExt};

use super::{
    request::{FRAME_HEAD, Request},
    transport::{Failure, MAX_RESPONSE_BYTES},
};

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
const GRPC_STATUS_DETAILS: HeaderName = HeaderName::from_static("grpc-status-details-bin");
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// Headers that belong to the call, not to the configured metadata: tonic 0.14.9's
/// `MetadataMap::GRPC_RESERVED_HEADERS`, which its client leaves out of a request's metadata
/// (`te` and `content-type` are then set by [`call_headers`] anyway).
const RESERVED: [HeaderName; 5] = [
    header::TE,
    header::CONTENT_TYPE,
    GRPC_MESSAGE,
    HeaderName::from_static("grpc-message-type"),
    GRPC_STATUS,
];

/// `grpc-status-details-bin`'s base64, padded or not (tonic's own reading of it).
const DETAILS: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The headers of every call: `configured` (`OTEL_EXPORTER_OTLP_HEADERS`, or the signal's
/// own `_TRACES_`/`_LOGS_HEADERS`) less those reserved to gRPC, and the two a gRPC request
/// must carry.
pub(super) fn call_headers(configured: &HeaderMap) -> HeaderMap {
    let mut headers = configured.clone();
    for name in &RESERVED {
        headers.remove(name);
    }
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers
}

/// Sends `request` to the method `path` with `headers` ([`call_headers`]), given `left` of
/// the export's timeout, which bounds the whole attempt (the answer's body included) and goes
/// to the collector as `grpc-timeout`; returns the answer's message.
pub(super) async fn unary(
    channel: &Channel,
    path: &PathAndQuery,
    headers: &HeaderMap,
    request: &Request,
    left: Duration,
) -> Result<Bytes, Failure> {
    let Some(frame) = request.frame() else {
        return Err(Failure {
            message: format!(
                "a request of {} bytes is more than a gRPC message can carry",
                request.len()
            ),
            retryable: false,
            retry_after: None,
        });
    };
    let mut call = http::Request::new(Body::new(Full::new(frame)));
    *call.method_mut() = Method::POST;
    *call.uri_mut() = Uri::from(path.clone());
    *call.version_mut() = Version::HTTP_2;
    *call.headers_mut() = headers.clone();
    call.headers_mut().insert(GRPC_TIMEOUT, grpc_timeout(left));
    match tokio::time::timeout(left, answer(channel.clone(), call)).await {
        Ok(answered) => answered,
        Err(_) => Err(Failure {
            message: format!(
                "the collector did not answer within {}",
                humantime::format_duration(left)
            ),
            retryable: true,
            retry_after: None,
        }),
    }
}

/// The call's answer: its message if the status is OK.
async fn answer(mut channel: Channel, call: http::Request<Body>) -> Result<Bytes, Failure> {
    ServiceExt::<http::Request<Body>>::ready(&mut channel)
        .await
        .map_err(Failure::unreachable)?;
    let response = channel
        .call(call)
        .await
        .map_err(|error| failure(Status::from_error(Box::new(error))))?;
    let (head, body) = response.into_parts();
    // A trailers-only answer (how a server refuses a call before any message, mostly): the
    // status is in the headers, and no message follows.
    if let Some(status) = status_in(&head.headers) {
        return match status.code() {
            Code::Ok => Ok(Bytes::new()),
            _ => Err(failure(status)),
        };
    }
    if head.status != StatusCode::OK {
        // Not a gRPC server's answer (a proxy's, say): its body is not read.
        let message = format!("HTTP {} without a gRPC status", head.status);
        return Err(failure(Status::new(code_of_http(head.status), message)));
    }
    let (message, trailers) = read_body(body).await.map_err(failure)?;
    let status = trailers.as_ref().and_then(status_in).unwrap_or_else(|| {
        Status::unknown("the answer ended without a grpc-status (cut by a proxy?)")
    });
    if status.code() != Code::Ok {
        return Err(failure(status));
    }
    Ok(message_in(message))
}

/// An answer's body, its frame's head and first [`MAX_RESPONSE_BYTES`] kept and the rest read
/// and dropped (a collector's answer is small, and one that is not is cut rather than held
/// whole), and its trailers.
async fn read_body(mut body: Body) -> Result<(Bytes, Option<HeaderMap>), Status> {
    let mut kept = BytesMut::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            let room = FRAME_HEAD + MAX_RESPONSE_BYTES - kept.len();
            kept.extend_from_slice(&data[..data.len().min(room)]);
        } else if let Ok(last) = frame.into_trailers() {
            trailers = Some(last);
        }
    }
    Ok((kept.freeze(), trailers))
}

/// The message of an accepted answer's body: one frame, not compressed (this client accepts
/// no compression). An answer whose message cannot be read is still an acceptance (the
/// collector has the batch), with its partial success, if any, unread: as over OTLP/HTTP.
fn message_in(body: Bytes) -> Bytes {
    let Some(&[0, a, b, c, d]) = body.get(..FRAME_HEAD) else {
        return Bytes::new();
    };
    let end = FRAME_HEAD.saturating_add(u32::from_be_bytes([a, b, c, d]) as usize);
    if end > body.len() {
        return Bytes::new();
    }
    body.slice(FRAME_HEAD..end)
}

/// The gRPC status in `headers` (an answer's trailers, or its headers when it has no body),
/// if any: the code, the percent-decoded message and the details.
fn status_in(headers: &HeaderMap) -> Option<Status> {
    let code = Code::from_bytes(headers.get(GRPC_STATUS)?.as_bytes());
    let message = headers
        .get(GRPC_MESSAGE)
        .map(|value| {
            percent_decode(value.as_bytes())
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    let details = headers
        .get(GRPC_STATUS_DETAILS)
        .and_then(|value| DETAILS.decode(value.as_bytes()).ok())
        .unwrap_or_default();
    Some(Status::with_details(code, message, details.into()))
}

/// The gRPC code of an HTTP status that came without one (grpc's
/// `doc/http-grpc-status-mapping.md`).
fn code_of_http(status: StatusCode) -> Code {
    match status {
        StatusCode::BAD_REQUEST => Code::Internal,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::Unimplemented,
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// `left` as a `grpc-timeout` value (at most eight digits and a unit): whole milliseconds, at
/// least one, or whole seconds beyond 99 999 999 ms.
fn grpc_timeout(left: Duration) -> HeaderValue {
    const MOST: u128 = 99_999_999;
    let millis = left.as_millis().max(1);
    let value = if millis <= MOST {
        format!("{millis}m")
    } else {
        format!("{}S", u128::from(left.as_secs()).min(MOST))
    };
    HeaderValue::try_from(value).unwrap_or(HeaderValue::from_static("99999999S"))
}

/// OTLP/gRPC: the codes the specification lets an exporter retry; `RESOURCE_EXHAUSTED` only
/// when the collector says when (`RetryInfo`), as opentelemetry-otlp 0.33 does.
fn failure(status: Status) -> Failure {
    let retry_after = status.get_details_retry_info().and_then(|r| r.retry_delay);
    let retryable = match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::ResourceExhausted => retry_after.is_some(),
        _ => false,
    };
    Failure {
        message: format!(
            "the collector answered {:?}: {}",
            status.code(),
            status.message()
        ),
        retryable,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};
    use tonic::Code;

    use super::{code_of_http, grpc_timeout, message_in, status_in};

    #[test]
    fn the_timeout_is_sent_in_at_most_eight_digits() {
        let value = |d| {
            grpc_timeout(d)
                .to_str()
                .map(str::to_owned)
                .unwrap_or_default()
        };
        assert_eq!(value(Duration::from_secs(10)), "10000m");
        assert_eq!(value(Duration::from_micros(300)), "1m");
        assert_eq!(value(Duration::ZERO), "1m");
        assert_eq!(value(Duration::from_millis(99_999_999)), "99999999m");
        assert_eq!(value(Duration::from_secs(100_000)), "100000S");
        assert_eq!(value(Duration::MAX), "99999999S");
    }

    #[test]
    fn a_status_is_read_with_its_message_decoded_and_malformed_details_ignored() {
        let mut headers = HeaderMap::new();
        assert!(status_in(&headers).is_none());
        headers.insert("grpc-status", "14".parse().expect("a value"));
        headers.insert(
            "grpc-message",
            "queue%20full%3A%20%C3%A9".parse().expect("a value"),
        );
        headers.insert(
            "grpc-status-details-bin",
            "not base64!".parse().expect("a value"),
        );
        let status = status_in(&headers).expect("a status");
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "queue full: é");
        assert!(status.details().is_empty());
    }

    #[test]
    fn an_http_status_without_a_grpc_status_maps_as_grpc_says() {
        assert_eq!(code_of_http(StatusCode::BAD_REQUEST), Code::Internal);
        assert_eq!(code_of_http(StatusCode::NOT_FOUND), Code::Unimplemented);
        assert_eq!(
            code_of_http(StatusCode::SERVICE_UNAVAILABLE),
            Code::Unavailable
        );
        assert_eq!(
            code_of_http(StatusCode::TOO_MANY_REQUESTS),
            Code::Unavailable
        );
        assert_eq!(
            code_of_http(StatusCode::INTERNAL_SERVER_ERROR),
            Code::Unknown
        );
    }

    #[test]
    fn an_answer_s_message_is_read_from_its_frame_or_left_unread() {
        let framed = Bytes::from_static(b"\x00\x00\x00\x00\x02\x0a\x00");
        assert_eq!(message_in(framed).as_ref(), b"\x0a\x00");
        // Compressed, cut short, or no frame at all: nothing to read.
        assert!(message_in(Bytes::from_static(b"\x01\x00\x00\x00\x02\x0a\x00")).is_empty());
        assert!(message_in(Bytes::from_static(b"\x00\x00\x00\x00\x09\x0a\x00")).is_empty());
        assert!(message_in(Bytes::from_static(b"\x00\x00")).is_empty());
        assert!(message_in(Bytes::new()).is_empty());
    }
}
