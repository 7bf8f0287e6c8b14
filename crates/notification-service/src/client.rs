//! The typed client for notification-service.

use service_kit::{DownstreamError, downstream::Downstream};
use telemetry::HttpClient;
use url::Url;

use crate::api::{NotifyAccepted, NotifyRequest};

/// Calls notification-service at a base URL. Cheap to clone.
#[derive(Clone)]
pub struct NotificationClient(Downstream);

impl NotificationClient {
    /// A client for the service at `base`, calling through `http`.
    pub fn new(base: Url, http: HttpClient) -> Self {
        Self(Downstream::new("notification-service", base, http))
    }

    /// `POST /notify`.
    pub async fn notify(&self, request: &NotifyRequest) -> Result<NotifyAccepted, DownstreamError> {
        self.0.post(&["notify"], &[], request).await
    }
}
