//! The typed client for inventory-service.

use service_kit::{DownstreamError, downstream::Downstream};
use telemetry::HttpClient;
use url::Url;

use crate::api::{QuantityRequest, Reservation, ReservationRecord, ReservationRequest, StockLevel};

/// Calls inventory-service at a base URL. Cheap to clone.
#[derive(Clone)]
pub struct InventoryClient(Downstream);

impl InventoryClient {
    /// A client for the service at `base`, calling through `http`.
    pub fn new(base: Url, http: HttpClient) -> Self {
        Self(Downstream::new("inventory-service", base, http))
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

    /// `GET /stock/{item}`.
    pub async fn stock(&self, item: &str) -> Result<StockLevel, DownstreamError> {
        self.0.get(&["stock", item]).await
    }

    /// `POST /stock/{item}/reserve` with idempotency key `key`: a repeat returns the same
    /// reservation.
    pub async fn reserve(
        &self,
        item: &str,
        quantity: i64,
        key: &str,
    ) -> Result<Reservation, DownstreamError> {
        self.0
            .post(
                &["stock", item, "reserve"],
                &[("idempotency-key", key)],
                &QuantityRequest { quantity },
            )
            .await
    }

    /// `POST /stock/{item}/confirm`: sells the reservation's units (idempotent).
    pub async fn confirm(
        &self,
        item: &str,
        reservation_id: &str,
    ) -> Result<ReservationRecord, DownstreamError> {
        self.end(item, "confirm", reservation_id).await
    }

    /// `POST /stock/{item}/release`: gives the reservation's units back (idempotent).
    pub async fn release(
        &self,
        item: &str,
        reservation_id: &str,
    ) -> Result<ReservationRecord, DownstreamError> {
        self.end(item, "release", reservation_id).await
    }

    async fn end(
        &self,
        item: &str,
        action: &str,
        reservation_id: &str,
    ) -> Result<ReservationRecord, DownstreamError> {
        let body = ReservationRequest {
            reservation_id: reservation_id.to_owned(),
        };
        self.0.post(&["stock", item, action], &[], &body).await
    }
}
