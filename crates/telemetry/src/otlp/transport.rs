//! Sending an encoded OTLP request: over gRPC (a unary call over tonic's channel, `grpc`) or
//! HTTP/protobuf (reqwest), with the OTLP specification's retries.
//!
//! Both are async and run on a tokio runtime: the service's own when it runs on one thread,
//! else one of the exporter's own thread (`processor`). A transport is made in the context of
//! the runtime it will run on: the gRPC channel's connection task is spawned there.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, uri::PathAndQuery};
use tonic::transport::{Channel, Endpoint};

use super::{grpc, request::Request};
use crate::config::{ExportSettings, Protocol};

/// Retries after the first attempt, and the first wait (doubled for each retry, plus up to
/// [`MAX_JITTER_MS`]): opentelemetry-otlp 0.33's recommended policy. A collector's own delay
/// (HTTP `Retry-After`, gRPC `RetryInfo`) is waited instead when it is longer; the export's
/// timeout bounds it all.
const RETRIES: u32 = 3;
const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_JITTER_MS: u64 = 100;

/// The most of a collector's answer that is read (opentelemetry-http's limit).
pub(super) const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Sent as `User-Agent` on both transports.
const USER_AGENT: &str = concat!("microservices-telemetry-otlp/", env!("CARGO_PKG_VERSION"));

/// Where one signal's requests go, and how.
pub(crate) enum Transport {
    Grpc {
        channel: Channel,
        path: PathAndQuery,
        /// [`grpc::call_headers`]: every call's, less its `grpc-timeout`.
        headers: HeaderMap,
    },
    Http {
        client: reqwest::Client,
        url: url::Url,
        headers: HeaderMap,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Grpc { path, .. } => write!(f, "OTLP/gRPC {path}"),
            Self::Http { url, .. } => write!(f, "OTLP/HTTP {url}"),
        }
    }
}

/// An attempt that failed, whether the specification lets it be tried again, and after how
/// long the collector asked for.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) message: String,
    pub(super) retryable: bool,
    pub(super) retry_after: Option<Duration>,
}

impl Failure {
    pub(super) fn unreachable(error: impl std::fmt::Display) -> Self {
        Self {
            message: format!("the collector is unreachable: {error}"),
            retryable: true,
            retry_after: None,
        }
    }
}

impl Transport {
    /// The transport `settings` describe (their endpoint, for gRPC the collector's address,
    /// for HTTP the signal's URL), `grpc_path` being the service method of the signal. gRPC
    /// needs the runtime it will be sent from.
    pub(crate) fn new(settings: &ExportSettings, grpc_path: &'static str) -> Result<Self, String> {
        let endpoint = &settings.endpoint;
        if endpoint.scheme() == "https" {
            return Err(
                "https is not built in (every hop of this system is plain http); \
                        use an http:// endpoint"
                    .to_owned(),
            );
        }
        match settings.protocol {
            Protocol::Grpc => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err("the gRPC exporter must be built inside the tokio runtime".into());
                }
                // The channel's own limit is one attempt's ceiling; each attempt also carries
                // what is left of the export's timeout as its `grpc-timeout`.
                let channel = Endpoint::from_shared(endpoint.to_string())
                    .and_then(|e| e.user_agent(USER_AGENT))
                    .map_err(|e| e.to_string())?
                    .timeout(settings.timeout)
                    .connect_timeout(settings.timeout)
                    .connect_lazy();
                Ok(Self::Grpc {
                    channel,
                    path: PathAndQuery::from_static(grpc_path),
                    headers: grpc::call_headers(&settings.headers),
                })
            }
            Protocol::HttpProtobuf => {
                let client = reqwest::Client::builder()
                    .user_agent(USER_AGENT)
                    .timeout(settings.timeout)
                    .connect_timeout(settings.timeout)
                    .build()
                    .map_err(|e| e.to_string())?;
                let mut headers = settings.headers.clone();
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-protobuf"),
                );
                Ok(Self::Http {
                    client,
                    url: endpoint.clone(),
                    headers,
                })
            }
        }
    }

    /// Sends `request`, retrying what may be retried while `timeout` allows; returns the
    /// response's body (an `Export…ServiceResponse`).
    pub(crate) async fn send(&self, request: Request, timeout: Duration) -> Result<Bytes, String> {
        let start = Instant::now();
        let mut delay = FIRST_DELAY;
        let mut attempt = 0;
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            let failure = match self.attempt(&request, left).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            let backoff = delay + Duration::from_millis(fastrand::u64(0..=MAX_JITTER_MS));
            let wait = failure
                .retry_after
                .map_or(backoff, |asked| asked.max(backoff));
            // Saturating: a collector may ask for any delay (`Retry-After` is up to u64::MAX s).
            if !failure.retryable
                || attempt == RETRIES
                || start.elapsed().saturating_add(wait) >= timeout
            {
                return Err(failure.message);
            }
            tokio::time::sleep(wait).await;
            delay *= 2;
            attempt += 1;
        }
    }

    /// One attempt, given `left` of the export's timeout.
    async fn attempt(&self, request: &Request, left: Duration) -> Result<Bytes, Failure> {
        match self {
            Self::Grpc {
                channel,
                path,
                headers,
            } => grpc::unary(channel, path, headers, request, left).await,
            Self::Http {
                client,
                url,
                headers,
            } => {
                let response = client
                    .post(url.clone())
                    .headers(headers.clone())
                    .timeout(left)
                    .body(request.message())
                    .send()
                    .await
                    .map_err(Failure::unreachable)?;
                let status = response.status();
                if !status.is_success() {
                    // OTLP/HTTP: these four may be retried, every other status may not. The
                    // body is left out of the message: a collector may echo the request's
                    // credentials there.
                    let retry_after = response
                        .headers()
                        .get(http::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()?.trim().parse().ok())
                        .map(Duration::from_secs);
                    return Err(Failure {
                        message: format!("the collector answered {status}"),
                        retryable: matches!(status.as_u16(), 429 | 502 | 503 | 504),
                        retry_after,
                    });
                }
                // Accepted: a body that breaks off is not a reason to send the batch again (the
                // collector has it); only its partial success, if any, goes unread.
                Ok(read_at_most(response, MAX_RESPONSE_BYTES)
                    .await
                    .unwrap_or_default())
            }
        }
    }
}

/// The first `limit` bytes of `response`'s body: a collector's answer is small, and one that
/// is not is cut rather than held whole.
async fn read_at_most(mut response: reqwest::Response, limit: usize) -> reqwest::Result<Bytes> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == limit {
            break;
        }
    }
    Ok(body.into())
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::{Duration, Instant},
    };

    use axum::{Router, extract::State, http::StatusCode, routing::post};
    use bytes::Bytes;
    use http::HeaderMap;
    use http_body_util::BodyExt as _;
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    };
    use prost::Message as _;

    use super::{Request, Transport};
    use crate::config::{ExportSettings, Protocol};

    /// The value behind `mutex`, even if a panicking test thread poisoned it.
    fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A collector that answers each request with the next status of its script (200 once the
    /// script is spent) and keeps every request's headers.
    #[derive(Clone, Default)]
    struct Scripted {
        answers: Arc<Mutex<Vec<u16>>>,
        seen: Arc<Mutex<Vec<HeaderMap>>>,
    }

    /// A 429 comes with `Retry-After: 1`, a 502 with the longest delay a `u64` can say.
    async fn answer(
        State(collector): State<Scripted>,
        headers: HeaderMap,
    ) -> (StatusCode, [(&'static str, &'static str); 1]) {
        lock(&collector.seen).push(headers);
        let mut answers = lock(&collector.answers);
        let code = if answers.is_empty() {
            200
        } else {
            answers.remove(0)
        };
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
        let after = match code {
            429 => "1",
            502 => "18446744073709551615",
            _ => "0",
        };
        (status, [("retry-after", after)])
    }

    /// Runs a scripted collector; returns its runtime (keep it), its state and its URL.
    fn collector(script: &[u16]) -> (tokio::runtime::Runtime, Scripted, url::Url) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let state = Scripted::default();
        lock(&state.answers).extend_from_slice(script);
        let app = Router::new()
            .route("/v1/traces", post(answer))
            .with_state(state.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a port");
        let url = format!(
            "http://{}/v1/traces",
            listener.local_addr().expect("an address")
        );
        runtime.spawn(async move { axum::serve(listener, app).await });
        (runtime, state, url::Url::parse(&url).expect("a URL"))
    }

    fn settings(protocol: Protocol, endpoint: &url::Url, timeout: Duration) -> ExportSettings {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer abc".parse().expect("a value"));
        ExportSettings {
            protocol,
            endpoint: endpoint.clone(),
            headers,
            timeout,
        }
    }

    /// An HTTP/protobuf transport to `url`, with the test settings.
    fn http_transport(url: &url::Url, timeout: Duration) -> Transport {
        Transport::new(&settings(Protocol::HttpProtobuf, url, timeout), "").expect("built")
    }

    /// An `ExportTraceServiceRequest` of one empty `ResourceSpans`.
    fn test_request() -> Request {
        let mut buf = Request::buffer(2);
        buf.extend_from_slice(b"\x0a\x00");
        Request::framed(buf, 0)
    }

    /// Sends one request the way the batch processor's own thread does: on a runtime of one
    /// thread, not the collector's.
    fn send(transport: &Transport, timeout: Duration) -> Result<Bytes, String> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(transport.send(test_request(), timeout))
    }

    #[test]
    fn an_http_export_is_retried_on_503_and_carries_the_configured_headers() {
        let (_runtime, collector, url) = collector(&[503, 503]);
        let timeout = Duration::from_secs(5);
        let transport = http_transport(&url, timeout);
        assert!(send(&transport, timeout).is_ok());
        let seen = lock(&collector.seen);
        assert_eq!(seen.len(), 3, "two refusals, then the accepted attempt");
        for headers in seen.iter() {
            assert_eq!(headers["authorization"], "Bearer abc");
            assert_eq!(headers["content-type"], "application/x-protobuf");
        }
    }

    #[test]
    fn an_http_export_throttled_with_429_waits_as_long_as_retry_after_asks() {
        let (_runtime, collector, url) = collector(&[429]);
        let timeout = Duration::from_secs(5);
        let transport = http_transport(&url, timeout);
        let started = Instant::now();
        assert!(send(&transport, timeout).is_ok());
        // The backoff alone would have waited 100–200 ms.
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(lock(&collector.seen).len(), 2);
    }

    #[test]
    fn an_http_export_accepted_with_a_body_that_breaks_off_is_not_sent_again() {
        // A collector that answers 200 with a body 100 bytes long, sends 3 and hangs up.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let url = url::Url::parse(&format!(
            "http://{}/v1/traces",
            listener.local_addr().expect("an address")
        ))
        .expect("a URL");
        let requests = Arc::new(Mutex::new(0));
        let counted = requests.clone();
        std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                // The whole request, so that closing with bytes unread does not reset the
                // connection before the answer is read: whatever arrives within 200 ms.
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let mut request = [0u8; 4096];
                while stream.read(&mut request).is_ok_and(|n| n > 0) {}
                *lock(&counted) += 1;
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc");
            }
        });
        let timeout = Duration::from_secs(5);
        let transport = http_transport(&url, timeout);
        assert!(
            send(&transport, timeout).is_ok(),
            "the collector accepted it"
        );
        assert_eq!(*lock(&requests), 1, "sent once");
    }

    #[test]
    fn an_http_export_told_to_retry_after_ages_gives_up_without_waiting() {
        // The second answer asks for 584 billion years, a second into the export.
        let (_runtime, collector, url) = collector(&[429, 502]);
        let started = Instant::now();
        let error = send(
            &http_transport(&url, Duration::from_secs(5)),
            Duration::from_secs(5),
        )
        .expect_err("given up");
        assert!(error.contains("502"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(4));
        assert_eq!(lock(&collector.seen).len(), 2);
    }

    #[test]
    fn an_http_export_refused_with_400_is_not_retried_and_says_why() {
        let (_runtime, collector, url) = collector(&[400]);
        let timeout = Duration::from_secs(5);
        let transport = http_transport(&url, timeout);
        let error = send(&transport, timeout).expect_err("refused");
        assert!(error.contains("400"), "{error}");
        assert_eq!(lock(&collector.seen).len(), 1);
    }

    /// A gRPC collector that answers each export with the next code of its script (then OK,
    /// with a partial success of two rejected spans) and keeps every request's metadata.
    #[derive(Clone, Default)]
    struct ScriptedGrpc {
        answers: Arc<Mutex<Vec<tonic::Code>>>,
        /// Sent with each refusal as `RetryInfo`, when set.
        retry_after: Arc<Mutex<Option<Duration>>>,
        seen: Arc<Mutex<Vec<tonic::metadata::MetadataMap>>>,
    }

    #[tonic::async_trait]
    impl TraceService for ScriptedGrpc {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let mut seen = lock(&self.seen);
            seen.push(request.metadata().clone());
            let mut answers = lock(&self.answers);
            if !answers.is_empty() {
                let code = answers.remove(0);
                return Err(match *lock(&self.retry_after) {
                    Some(delay) => <tonic::Status as tonic_types::StatusExt>::with_error_details(
                        code,
                        "scripted",
                        tonic_types::ErrorDetails::with_retry_info(Some(delay)),
                    ),
                    None => tonic::Status::new(code, "scripted"),
                });
            }
            Ok(tonic::Response::new(ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans: 2,
                    error_message: "two spans too old".into(),
                }),
            }))
        }
    }

    /// Runs a scripted gRPC collector; returns its runtime (keep it), its state and a
    /// transport to it, made on that runtime.
    fn grpc_collector(
        script: &[tonic::Code],
    ) -> (tokio::runtime::Runtime, ScriptedGrpc, Transport) {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let collector = ScriptedGrpc::default();
        lock(&collector.answers).extend_from_slice(script);
        let routes = tonic::service::Routes::new(TraceServiceServer::new(collector.clone()));
        let transport = serve_grpc(&runtime, routes, &[]);
        (runtime, collector, transport)
    }

    /// Serves `routes` over HTTP/2 on `runtime`; returns a gRPC transport to them, made on that
    /// runtime, with the test settings' headers and `configured`.
    fn serve_grpc(
        runtime: &tokio::runtime::Runtime,
        routes: tonic::service::Routes,
        configured: &[(&'static str, &'static str)],
    ) -> Transport {
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a port");
        let url = url::Url::parse(&format!(
            "http://{}",
            listener.local_addr().expect("an address")
        ))
        .expect("a URL");
        let server = tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        runtime.spawn(server);
        let _on_runtime = runtime.enter();
        let mut settings = settings(Protocol::Grpc, &url, Duration::from_secs(5));
        for (name, value) in configured {
            settings
                .headers
                .insert(*name, value.parse().expect("a value"));
        }
        Transport::new(
            &settings,
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        )
        .expect("built")
    }

    #[test]
    fn a_grpc_export_is_retried_on_unavailable_with_its_metadata_and_returns_the_answer() {
        let (_runtime, collector, transport) = grpc_collector(&[tonic::Code::Unavailable]);
        let answer = send(&transport, Duration::from_secs(5)).expect("accepted");
        let answer = ExportTraceServiceResponse::decode(answer).expect("a response");
        assert_eq!(answer.partial_success.map(|p| p.rejected_spans), Some(2));
        let seen = lock(&collector.seen);
        assert_eq!(seen.len(), 2, "one refusal, then the accepted attempt");
        for metadata in seen.iter() {
            assert_eq!(
                metadata.get("authorization").and_then(|v| v.to_str().ok()),
                Some("Bearer abc")
            );
        }
    }

    #[test]
    fn a_grpc_export_throttled_with_retry_info_waits_as_long_as_asked() {
        let (_runtime, collector, transport) = grpc_collector(&[tonic::Code::ResourceExhausted]);
        *lock(&collector.retry_after) = Some(Duration::from_millis(1200));
        let started = Instant::now();
        send(&transport, Duration::from_secs(5)).expect("accepted once the delay had passed");
        assert!(started.elapsed() >= Duration::from_millis(1200));
        assert_eq!(lock(&collector.seen).len(), 2);
    }

    /// An answer of `status` with `headers` and an empty body.
    fn reply(status: u16, headers: &[(&str, &str)]) -> http::Response<axum::body::Body> {
        let mut response = http::Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        response.body(axum::body::Body::empty()).unwrap_or_default()
    }

    /// An HTTP/2 server that is no gRPC service: it answers each request with the next answer
    /// of its script (then a trailers-only OK) and keeps each request's headers. The transport
    /// to it has the test settings' headers and `configured`.
    fn http2_collector(
        script: Vec<http::Response<axum::body::Body>>,
        configured: &[(&'static str, &'static str)],
    ) -> (
        tokio::runtime::Runtime,
        Arc<Mutex<Vec<HeaderMap>>>,
        Transport,
    ) {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let script = Arc::new(Mutex::new(script));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        let answer = move |headers: HeaderMap| {
            lock(&kept).push(headers);
            let mut script = lock(&script);
            std::future::ready(if script.is_empty() {
                reply(200, &[("grpc-status", "0")])
            } else {
                script.remove(0)
            })
        };
        let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
        let router = Router::new().route(path, post(answer));
        let transport = serve_grpc(&runtime, tonic::service::Routes::from(router), configured);
        (runtime, seen, transport)
    }

    #[test]
    fn a_grpc_call_carries_grpc_s_headers_and_the_configured_ones_but_not_those_grpc_reserves() {
        let configured = [
            ("content-type", "text/plain"),
            ("te", "gzip"),
            ("grpc-status", "13"),
            ("grpc-message", "configured"),
            ("x-tenant", "a"),
        ];
        let (_runtime, seen, transport) = http2_collector(Vec::new(), &configured);
        send(&transport, Duration::from_secs(3)).expect("accepted");
        let seen = lock(&seen);
        let headers = seen.first().expect("one call");
        let value = |name| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(value("content-type"), Some("application/grpc"));
        assert_eq!(value("te"), Some("trailers"));
        assert_eq!(value("authorization"), Some("Bearer abc"));
        assert_eq!(value("x-tenant"), Some("a"));
        assert_eq!(value("grpc-status"), None);
        assert_eq!(value("grpc-message"), None);
        // What is left of the 3 s, in milliseconds (gRPC over HTTP/2: at most eight digits
        // and a unit).
        let timeout = value("grpc-timeout").unwrap_or_default();
        let millis: u64 = timeout
            .strip_suffix('m')
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("grpc-timeout {timeout:?}"));
        assert!(
            (1..=3000).contains(&millis) && timeout.len() <= 9,
            "{timeout}"
        );
    }

    #[test]
    fn a_grpc_export_answered_without_a_grpc_status_is_judged_by_its_http_status() {
        // A proxy's 503: Unavailable, tried again; then a trailers-only OK.
        let (_runtime, seen, transport) = http2_collector(vec![reply(503, &[])], &[]);
        let answer = send(&transport, Duration::from_secs(5)).expect("accepted");
        assert!(answer.is_empty(), "a trailers-only answer has no message");
        assert_eq!(lock(&seen).len(), 2);

        // 404, no such service: Unimplemented, not tried again.
        let (_runtime, seen, transport) = http2_collector(vec![reply(404, &[])], &[]);
        let error = send(&transport, Duration::from_secs(5)).expect_err("refused");
        assert!(
            error.contains("Unimplemented") && error.contains("404"),
            "{error}"
        );
        assert_eq!(lock(&seen).len(), 1);

        // A 200 that ends without a status (cut short): Unknown, not tried again.
        let (_runtime, seen, transport) = http2_collector(
            vec![reply(200, &[("content-type", "application/grpc")])],
            &[],
        );
        let error = send(&transport, Duration::from_secs(5)).expect_err("no status");
        assert!(error.contains("Unknown"), "{error}");
        assert_eq!(lock(&seen).len(), 1);
    }

    #[test]
    fn a_grpc_acceptance_longer_than_the_answer_limit_is_still_an_acceptance() {
        // 5 MiB of message in its frame, then an OK status: the batch is delivered, its
        // answer (a partial success, if any) unread, and it is not sent again.
        let mut body = vec![0u8; 5 << 20];
        body[1..5].copy_from_slice(&((5u32 << 20) - 5).to_be_bytes());
        let mut status = HeaderMap::new();
        status.insert("grpc-status", "0".parse().expect("a value"));
        let body = http_body_util::Full::new(Bytes::from(body))
            .with_trailers(std::future::ready(Some(Ok(status))));
        let accepted = http::Response::builder()
            .header("content-type", "application/grpc")
            .body(axum::body::Body::new(body))
            .unwrap_or_default();
        let (_runtime, seen, transport) = http2_collector(vec![accepted], &[]);
        let answer = send(&transport, Duration::from_secs(5)).expect("accepted");
        assert!(answer.is_empty());
        assert_eq!(lock(&seen).len(), 1);
    }

    #[test]
    fn a_grpc_refusal_with_details_that_are_not_base64_is_read_without_them() {
        // tonic's own reading of these details panics; here the refusal is read without them:
        // RESOURCE_EXHAUSTED without a RetryInfo, not tried again, the message decoded.
        let refusal = reply(
            200,
            &[
                ("content-type", "application/grpc"),
                ("grpc-status", "8"),
                ("grpc-message", "queue%20full"),
                ("grpc-status-details-bin", "not base64!"),
            ],
        );
        let (_runtime, seen, transport) = http2_collector(vec![refusal], &[]);
        let error = send(&transport, Duration::from_secs(5)).expect_err("refused");
        assert!(
            error.contains("ResourceExhausted") && error.contains("queue full"),
            "{error}"
        );
        assert_eq!(lock(&seen).len(), 1);
    }

    /// An export refused with `code` is tried once, and the error names the code.
    fn refused_once(code: tonic::Code) {
        let (_runtime, collector, transport) = grpc_collector(&[code]);
        let error = send(&transport, Duration::from_secs(5)).expect_err("refused");
        assert!(error.contains(&format!("{code:?}")), "{error}");
        assert_eq!(lock(&collector.seen).len(), 1);
    }

    #[test]
    fn a_grpc_export_refused_as_invalid_is_not_retried_and_says_why() {
        refused_once(tonic::Code::InvalidArgument);
    }

    #[test]
    fn a_grpc_export_refused_as_exhausted_without_retry_info_is_not_retried() {
        refused_once(tonic::Code::ResourceExhausted);
    }

    #[test]
    fn an_unreachable_collector_fails_instead_of_hanging() {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a port")
            .port();
        let timeout = Duration::from_millis(1500);
        for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
            let runtime = tokio::runtime::Runtime::new().expect("a runtime");
            let url = url::Url::parse(&format!("http://127.0.0.1:{port}")).expect("a URL");
            let transport = {
                let _on_runtime = runtime.enter();
                Transport::new(&settings(protocol, &url, timeout), "/x.Service/Export")
                    .expect("built")
            };
            let started = Instant::now();
            let error = send(&transport, timeout).expect_err("nothing listens");
            // Retries stop before the timeout; the bound is loose (a shared machine), the
            // point is that a dead collector costs one timeout, not a hang.
            assert!(
                started.elapsed() < timeout * 3,
                "{protocol:?}: {:?}",
                started.elapsed()
            );
            assert!(
                error.contains("unreachable") || error.contains("Unavailable"),
                "{error}"
            );
        }
    }

    #[test]
    fn an_https_endpoint_is_refused_when_built() {
        let url = url::Url::parse("https://collector:4317").expect("a URL");
        let error = Transport::new(
            &settings(Protocol::Grpc, &url, Duration::from_secs(1)),
            "/x",
        )
        .expect_err("no TLS");
        assert!(error.contains("https"), "{error}");
    }
}
