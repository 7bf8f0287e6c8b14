//! The JSON bodies of inventory-service, used by the server and by [`crate::InventoryClient`].

use serde::{Deserialize, Serialize};

pub use crate::stock::{ReservationRecord, ReservationState};

/// `GET /stock/{item}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StockLevel {
    /// The item.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub item: String,
    /// Units free to reserve.
    pub available: u64,
    /// Units held by reservations not yet confirmed (they return if not confirmed in time).
    #[serde(default)]
    pub held: u64,
    /// Units sold (reserved and confirmed).
    #[serde(default)]
    pub sold: u64,
}

/// Body of `POST /stock/{item}/reserve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuantityRequest {
    /// Units; must be > 0. Signed so that a negative number is a 400 with a clear message,
    /// not a type error.
    pub quantity: i64,
}

/// Body of `POST /stock/{item}/confirm` and `POST /stock/{item}/release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReservationRequest {
    /// The reservation, as `reserve` answered it.
    pub reservation_id: String,
}

/// Answer to a reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reservation {
    /// The reservation's id: confirm or release it with this.
    pub reservation_id: String,
    /// The item.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub item: String,
    /// Units reserved.
    pub reserved: u64,
    /// Units still available after it.
    pub available: u64,
    /// `held` when fresh; a repeat with the same key shows what has happened to it since.
    pub state: ReservationState,
    /// Milliseconds left before an unconfirmed reservation expires and its units return.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_ms: Option<u64>,
}
