//! The JSON bodies of inventory-service, used by the server and by [`crate::InventoryClient`].

use serde::{Deserialize, Serialize};

/// `GET /stock/{item}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StockLevel {
    /// The item.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub item: String,
    /// Units not reserved.
    pub available: u64,
}

/// Body of `POST /stock/{item}/reserve` and `POST /stock/{item}/release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuantityRequest {
    /// Units; must be > 0. Signed so that a negative number is a 400 with a clear message,
    /// not a type error.
    pub quantity: i64,
}

/// Answer to a reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reservation {
    /// The item.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub item: String,
    /// Units reserved by this call.
    pub reserved: u64,
    /// Units still available after it.
    pub available: u64,
}

/// Answer to a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Release {
    /// The item.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub item: String,
    /// Units given back by this call.
    pub released: u64,
    /// Units available after it.
    pub available: u64,
}
