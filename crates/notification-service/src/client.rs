//! The typed client for notification-service.

use service_kit::{
    DownstreamError,
    downstream::{call_json, endpoint},
};
use telemetry::HttpClient;
use url::Url;

use crate::api::{NotifyAccepted, NotifyRequest};

/// Calls notification-service at a base URL. Cheap to clone.
#[derive(Clone)]
pub struct NotificationClient {
    base: Url,
    http: HttpClient,
    /// Per-call time limit, when shorter than the client's own.
    timeout: Option<std::time::Duration>,
}

impl NotificationClient {
    /// A client for the service at `base`, calling through `http`.
    pub fn new(base: Url, http: HttpClient) -> Self {
        Self {
            base,
            http,
            timeout: None,
        }
    }

    /// The same client, giving up on each call after `remaining` (what is left of a caller's
    /// time budget).
    pub fn within(&self, remaining: std::time::Duration) -> Self {
        Self {
            timeout: Some(remaining),
            ..self.clone()
        }
    }

    /// `POST /notify`.
    pub async fn notify(&self, request: &NotifyRequest) -> Result<NotifyAccepted, DownstreamError> {
        let url = endpoint("notification-service", &self.base, &["notify"])?;
        call_json(
            "notification-service",
            self.http.post(url).json(request),
            self.timeout,
        )
        .await
    }
}
