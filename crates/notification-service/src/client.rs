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
}

impl NotificationClient {
    /// A client for the service at `base`, calling through `http`.
    pub fn new(base: Url, http: HttpClient) -> Self {
        Self { base, http }
    }

    /// `POST /notify`.
    pub async fn notify(&self, request: &NotifyRequest) -> Result<NotifyAccepted, DownstreamError> {
        let url = endpoint("notification-service", &self.base, &["notify"])?;
        call_json("notification-service", self.http.post(url).json(request)).await
    }
}
