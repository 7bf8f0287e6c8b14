//! The typed client for inventory-service.

use service_kit::{
    DownstreamError,
    downstream::{call_json, endpoint},
};
use telemetry::HttpClient;
use url::Url;

use crate::api::{QuantityRequest, Release, Reservation, StockLevel};

/// Calls inventory-service at a base URL. Cheap to clone.
#[derive(Clone)]
pub struct InventoryClient {
    base: Url,
    http: HttpClient,
    /// Per-call time limit, when shorter than the client's own.
    timeout: Option<std::time::Duration>,
}

impl InventoryClient {
    const SERVICE: &'static str = "inventory-service";

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

    /// `GET /stock/{item}`.
    pub async fn stock(&self, item: &str) -> Result<StockLevel, DownstreamError> {
        let url = endpoint(Self::SERVICE, &self.base, &["stock", item])?;
        call_json(Self::SERVICE, self.http.get(url), self.timeout).await
    }

    /// `POST /stock/{item}/reserve`.
    pub async fn reserve(&self, item: &str, quantity: i64) -> Result<Reservation, DownstreamError> {
        let url = endpoint(Self::SERVICE, &self.base, &["stock", item, "reserve"])?;
        let body = QuantityRequest { quantity };
        call_json(Self::SERVICE, self.http.post(url).json(&body), self.timeout).await
    }

    /// `POST /stock/{item}/release`.
    pub async fn release(&self, item: &str, quantity: i64) -> Result<Release, DownstreamError> {
        let url = endpoint(Self::SERVICE, &self.base, &["stock", item, "release"])?;
        let body = QuantityRequest { quantity };
        call_json(Self::SERVICE, self.http.post(url).json(&body), self.timeout).await
    }
}
