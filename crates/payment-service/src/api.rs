//! The JSON bodies of payment-service, used by the server and by [`crate::PaymentClient`].

use serde::{Deserialize, Serialize};

/// Body of `POST /charges`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChargeRequest {
    /// The item paid for.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub item: String,
    /// The amount; finite and >= 0.
    pub amount: f64,
}

/// Answer to a charge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Charge {
    /// Id of the charge (a UUID).
    pub charge_id: String,
    /// The item paid for.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub item: String,
    /// The amount charged.
    pub amount: f64,
    /// Always `succeeded` for a 200.
    pub status: String,
}
