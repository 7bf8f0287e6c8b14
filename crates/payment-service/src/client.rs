//! The typed client for payment-service.

use service_kit::{DownstreamError, downstream::Downstream};
use telemetry::HttpClient;
use url::Url;

use crate::api::{Charge, ChargeRequest};

/// Calls payment-service at a base URL. Cheap to clone.
#[derive(Clone)]
pub struct PaymentClient(Downstream);

impl PaymentClient {
    /// A client for the service at `base`, calling through `http`.
    pub fn new(base: Url, http: HttpClient) -> Self {
        Self(Downstream::new("payment-service", base, http))
    }

    /// The same client, giving up on each call after `remaining` (what is left of a caller's
    /// time budget).
    pub fn within(&self, remaining: std::time::Duration) -> Self {
        Self(self.0.within(remaining))
    }

    /// `POST /charges` with an idempotency key: the same key is never charged twice.
    pub async fn charge(
        &self,
        request: &ChargeRequest,
        key: &str,
    ) -> Result<Charge, DownstreamError> {
        self.0
            .post(&["charges"], &[("idempotency-key", key)], request)
            .await
    }
}
