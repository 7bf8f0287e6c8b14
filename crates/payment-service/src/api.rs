//! The JSON bodies of payment-service, used by the server and by [`crate::PaymentClient`].
//! Money is in integer minor units (cents): a sum of charges is exact.

use serde::{Deserialize, Serialize};

pub use crate::ledger::{ChargeRecord, ChargeState};

/// Body of `POST /charges`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChargeRequest {
    /// The item paid for.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub item: String,
    /// The amount in cents; >= 0. Signed so that a negative amount is a 400 with a clear
    /// message, not a type error.
    pub amount_cents: i64,
}

/// Answer to a charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Charge {
    /// Id of the charge (a UUID).
    pub charge_id: String,
    /// The item paid for.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub item: String,
    /// The amount charged, in cents.
    pub amount_cents: u64,
    /// Always `succeeded` for a 200.
    pub status: String,
}
