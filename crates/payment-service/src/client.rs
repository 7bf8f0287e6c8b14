//! The typed client for payment-service.

use service_kit::{DownstreamError, downstream::Downstream};
use telemetry::HttpClient;
use url::Url;

use crate::api::{Charge, ChargeRecord, ChargeRequest};

/// Calls payment-service at a base URL. Cheap to clone.
#[derive(Clone)]
pub struct PaymentClient(Downstream);

impl PaymentClient {
    /// A client for the service at `base`, calling through `http`.
    pub fn new(base: Url, http: HttpClient) -> Self {
        Self(Downstream::new("payment-service", base, http))
    }

    /// The same client, giving up on each call after `limit` at most.
    pub fn limited(self, limit: std::time::Duration) -> Self {
        Self(self.0.limited(limit))
    }

    /// The same client, giving up on each call after its own limit or `remaining` (what is
    /// left of a caller's time budget), whichever comes first.
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

    /// `POST /charges/{key}/cancel`: for a key whose charge is in doubt, the charge if it was
    /// made; otherwise the key is cancelled and will never be charged.
    pub async fn settle(&self, key: &str) -> Result<ChargeRecord, DownstreamError> {
        self.0
            .post(&["charges", key, "cancel"], &[], &serde_json::json!({}))
            .await
    }

    /// `POST /charges/{key}/refund` (idempotent).
    pub async fn refund(&self, key: &str) -> Result<ChargeRecord, DownstreamError> {
        self.0
            .post(&["charges", key, "refund"], &[], &serde_json::json!({}))
            .await
    }

    /// `GET /charges/{key}`: what happened to a key (`Ok(None)` if payment does not know it).
    pub async fn charge_of(&self, key: &str) -> Result<Option<ChargeRecord>, DownstreamError> {
        match self.0.get(&["charges", key]).await {
            Ok(record) => Ok(Some(record)),
            Err(e) if e.status().is_some_and(|s| s.as_u16() == 404) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
