//! The typed client for inventory-service.

use service_kit::{DownstreamError, downstream::Downstream};
use telemetry::HttpClient;
use url::Url;

use crate::api::{QuantityRequest, Release, Reservation, StockLevel};

/// Calls inventory-service at a base URL. Cheap to clone.
#[derive(Clone)]
pub struct InventoryClient(Downstream);

impl InventoryClient {
    /// A client for the service at `base`, calling through `http`.
    pub fn new(base: Url, http: HttpClient) -> Self {
        Self(Downstream::new("inventory-service", base, http))
    }

    /// The same client, giving up on each call after `remaining` (what is left of a caller's
    /// time budget).
    pub fn within(&self, remaining: std::time::Duration) -> Self {
        Self(self.0.within(remaining))
    }

    /// `GET /stock/{item}`.
    pub async fn stock(&self, item: &str) -> Result<StockLevel, DownstreamError> {
        self.0.get(&["stock", item]).await
    }

    /// `POST /stock/{item}/reserve`.
    pub async fn reserve(&self, item: &str, quantity: i64) -> Result<Reservation, DownstreamError> {
        self.0
            .post(
                &["stock", item, "reserve"],
                &[],
                &QuantityRequest { quantity },
            )
            .await
    }

    /// `POST /stock/{item}/release`.
    pub async fn release(&self, item: &str, quantity: i64) -> Result<Release, DownstreamError> {
        self.0
            .post(
                &["stock", item, "release"],
                &[],
                &QuantityRequest { quantity },
            )
            .await
    }
}
