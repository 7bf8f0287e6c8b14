//! Calling another service and reading its JSON answer.

use std::sync::Arc;

use axum::http::StatusCode;
use reqwest_middleware::RequestBuilder;
use serde::de::DeserializeOwned;
use url::Url;

use crate::api_error::ErrorBody;

/// Why a call to another service did not give the expected answer.
#[derive(Debug, thiserror::Error)]
pub enum DownstreamError {
    /// No answer: connection refused, timeout, reset.
    #[error("{service} unreachable: {source}")]
    Unreachable {
        /// The service called.
        service: &'static str,
        /// The transport error.
        #[source]
        source: reqwest_middleware::Error,
    },
    /// An answer with a non-2xx status.
    #[error("{service} answered {status}: {message}")]
    Status {
        /// The service called.
        service: &'static str,
        /// Its status code.
        status: StatusCode,
        /// Its `error` message, or the start of its body.
        message: String,
    },
    /// The call was not made: the caller's time budget was already spent.
    #[error("{service} not called: the time budget is spent")]
    BudgetSpent {
        /// The service that would have been called.
        service: &'static str,
    },
    /// The call was not made: an argument would have changed the path (`.` or `..`).
    #[error("{service} not called: {segment:?} is not a valid path segment")]
    InvalidSegment {
        /// The service that would have been called.
        service: &'static str,
        /// The segment refused.
        segment: String,
    },
    /// A 2xx answer whose body is not what the typed client expects.
    #[error("{service} sent an unreadable answer: {source}")]
    Decode {
        /// The service called.
        service: &'static str,
        /// The decoding error.
        #[source]
        source: reqwest::Error,
    },
}

impl DownstreamError {
    /// Whether the call gave up because its time ran out.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Unreachable {
                source: reqwest_middleware::Error::Reqwest(e),
                ..
            } => e.is_timeout(),
            Self::BudgetSpent { .. } => true,
            _ => false,
        }
    }

    /// Whether the request surely never reached the service (the connection was refused): a
    /// call that cannot have had an effect.
    pub fn never_sent(&self) -> bool {
        matches!(
            self,
            Self::Unreachable {
                source: reqwest_middleware::Error::Reqwest(e),
                ..
            } if e.is_connect()
        ) || matches!(self, Self::BudgetSpent { .. } | Self::InvalidSegment { .. })
    }

    /// Whether trying again could help: no answer, or a 502/503/504 (never a 4xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => matches!(status.as_u16(), 502..=504),
            _ => false,
        }
    }

    /// The status the service answered with, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Sends `request` and decodes a 2xx JSON answer as `T`. With a `timeout`, the request gives
/// up after it (inside the client, so its CLIENT span records the timeout as an error).
async fn call_json<T: DeserializeOwned>(
    service: &'static str,
    request: RequestBuilder,
    timeout: Option<std::time::Duration>,
) -> Result<T, DownstreamError> {
    let request = match timeout {
        Some(timeout) => request.timeout(timeout),
        None => request,
    };
    let response = request
        .send()
        .await
        .map_err(|source| DownstreamError::Unreachable { service, source })?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&body)
            .map(|b| b.error)
            .unwrap_or_else(|_| body.chars().take(200).collect());
        return Err(DownstreamError::Status {
            service,
            status,
            message,
        });
    }
    response
        .json()
        .await
        .map_err(|source| DownstreamError::Decode { service, source })
}

/// `base` with `segments` appended as path segments, each percent-encoded, so no segment can
/// add a path level, a query or a fragment. `.` and `..` are refused: URL normalisation would
/// turn them into a different path rather than encode them.
fn endpoint(service: &'static str, base: &Url, segments: &[&str]) -> Result<Url, DownstreamError> {
    if let Some(segment) = segments.iter().find(|s| matches!(**s, "." | "..")) {
        return Err(DownstreamError::InvalidSegment {
            service,
            segment: (*segment).to_owned(),
        });
    }
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    Ok(url)
}

/// What every typed client holds: which service, where, through which client, and the
/// per-call time limit. Typed clients wrap it and add one method per endpoint.
///
/// A clone shares everything but the time limit: one is made for every call
/// ([`Downstream::within`]) and the services' state is cloned for every request, and a deep
/// copy (the base URL, the client's middleware list) was three allocations each time.
#[derive(Clone)]
pub struct Downstream {
    target: Arc<Target>,
    /// Per-call time limit: the call's own ([`Downstream::limited`]), shortened to what is left
    /// of a caller's budget ([`Downstream::within`]).
    timeout: Option<std::time::Duration>,
}

/// Which service, where, and through which client.
struct Target {
    service: &'static str,
    base: Url,
    http: telemetry::HttpClient,
}

impl Downstream {
    /// `service` at `base`, called through `http`.
    pub fn new(service: &'static str, base: Url, http: telemetry::HttpClient) -> Self {
        Self {
            target: Arc::new(Target {
                service,
                base,
                http,
            }),
            timeout: None,
        }
    }

    /// The same, giving up on each call after `limit` at most: the call's own time limit.
    pub fn limited(self, limit: std::time::Duration) -> Self {
        Self {
            timeout: Some(limit),
            ..self
        }
    }

    /// The same, giving up on each call after its own limit or after `remaining` (what is left
    /// of a caller's budget), whichever is shorter. A per-request timeout replaces the
    /// client's, so the shorter of the two must be chosen here.
    pub fn within(&self, remaining: std::time::Duration) -> Self {
        Self {
            timeout: Some(self.timeout.map_or(remaining, |own| own.min(remaining))),
            ..self.clone()
        }
    }

    /// `GET` the path made of `segments`, decoding the JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, DownstreamError> {
        let target = &*self.target;
        let url = endpoint(target.service, &target.base, segments)?;
        call_json(target.service, target.http.get(url), self.timeout).await
    }

    /// `POST` `body` as JSON to the path made of `segments`, with extra `headers`.
    pub async fn post<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        headers: &[(&str, &str)],
        body: &B,
    ) -> Result<T, DownstreamError> {
        let target = &*self.target;
        let url = endpoint(target.service, &target.base, segments)?;
        let mut request = target.http.post(url).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        call_json(target.service, request, self.timeout).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_call_gets_the_shorter_of_its_own_limit_and_the_budget_left() {
        let http = telemetry::http_client(Duration::from_secs(30)).unwrap();
        let base = Url::parse("http://payment:8003").unwrap();
        let client = Downstream::new("payment", base, http).limited(Duration::from_secs(2));
        assert_eq!(
            client.within(Duration::from_secs(10)).timeout,
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            client.within(Duration::from_millis(300)).timeout,
            Some(Duration::from_millis(300))
        );
    }

    #[test]
    fn endpoint_appends_segments_to_any_base_path() {
        let base = Url::parse("http://inventory:8002").unwrap();
        assert_eq!(
            endpoint("inventory", &base, &["stock", "book", "reserve"])
                .unwrap()
                .as_str(),
            "http://inventory:8002/stock/book/reserve"
        );
        let prefixed = Url::parse("http://gw/inventory/").unwrap();
        assert_eq!(
            endpoint("inventory", &prefixed, &["stock", "pen"])
                .unwrap()
                .as_str(),
            "http://gw/inventory/stock/pen"
        );
    }

    #[test]
    fn a_segment_cannot_escape_its_place_in_the_path() {
        let base = Url::parse("http://inventory:8002/").unwrap();
        let url = endpoint("inventory", &base, &["stock", "../admin?x=1#f"]).unwrap();
        assert_eq!(url.path(), "/stock/..%2Fadmin%3Fx=1%23f");
        assert_eq!(url.query(), None);
        for dots in [".", ".."] {
            assert!(endpoint("inventory", &base, &["stock", dots, "reserve"]).is_err());
        }
    }
}
