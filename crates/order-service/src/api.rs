//! The JSON bodies of order-service.

use serde::{Deserialize, Serialize};

use crate::money::Price;

/// Body of `POST /orders`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateOrder {
    /// The item, `[A-Za-z0-9_-]{1,64}`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub item: String,
    /// Units, > 0. Signed so that `-1` gets "Quantity must be positive", not a type error.
    pub quantity: i64,
    /// Unit price, >= 0, at most two decimals (it is read exactly, as cents).
    #[schema(value_type = f64)]
    pub price: Price,
}

/// Answer to `POST /orders` (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderCreated {
    /// The new order's id (a UUID).
    pub order_id: String,
    /// Always `created`.
    pub status: String,
}

/// Answer to `GET /orders/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Order {
    /// The order's id.
    pub order_id: String,
    /// The item.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub item: String,
    /// Units.
    pub quantity: i64,
    /// Unit price.
    pub price: f64,
    /// `price × quantity`, as charged.
    pub amount: f64,
    /// The same, exactly, in cents.
    pub amount_cents: u64,
    /// The payment-service charge.
    pub charge_id: String,
    /// The inventory-service reservation, confirmed.
    pub reservation_id: String,
    /// Always `created`.
    pub status: String,
}
