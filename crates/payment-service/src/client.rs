//! The typed client for payment-service.

use service_kit::{
    DownstreamError,
    downstream::{call_json, endpoint},
};
use telemetry::HttpClient;
use url::Url;

use crate::api::{Charge, ChargeRequest};

/// Calls payment-service at a base URL. Cheap to clone.
#[derive(Clone)]
pub struct PaymentClient {
    base: Url,
    http: HttpClient,
    /// Per-call time limit, when shorter than the client's own.
    timeout: Option<std::time::Duration>,
}

impl PaymentClient {
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

    /// `POST /charges` with an idempotency key: the same key is never charged twice.
    pub async fn charge(
        &self,
        request: &ChargeRequest,
        key: &str,
    ) -> Result<Charge, DownstreamError> {
        let url = endpoint("payment-service", &self.base, &["charges"])?;
        let request = self
            .http
            .post(url)
            .header("idempotency-key", key)
            .json(request);
        call_json("payment-service", request, self.timeout).await
    }
}
