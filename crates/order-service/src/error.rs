//! Every way an order can fail.

use axum::http::StatusCode;
use service_kit::{ApiError, DownstreamError};

/// Why an order was not created. The `Display` form is the `error` of the JSON answer.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The request was wrong: its message says how (400).
    #[error("{0}")]
    Invalid(String),
    /// The item is not in the catalogue (404).
    #[error("Unknown item: {0}")]
    UnknownItem(String),
    /// Fewer units available than ordered (409).
    #[error("Insufficient stock")]
    InsufficientStock,
    /// inventory-service did not answer the stock check (502).
    #[error("Inventory check failed")]
    InventoryCheckFailed(#[source] DownstreamError),
    /// inventory-service did not answer the reservation (502).
    #[error("Inventory reserve failed")]
    InventoryReserveFailed(#[source] DownstreamError),
    /// payment-service did not charge (502).
    #[error("Payment failed")]
    PaymentFailed(#[source] DownstreamError),
    /// The charge was made but its units could not be confirmed (the reservation had
    /// expired, say), so the charge was refunded (502).
    #[error("Inventory confirm failed; the charge was refunded")]
    ConfirmFailed(#[source] DownstreamError),
    /// payment-service could not be asked what happened to a charge in doubt (502). The
    /// key is logged at ERROR for reconciliation; the reservation expires by itself.
    #[error("Payment outcome unknown")]
    PaymentUnresolved(#[source] DownstreamError),
    /// The order's time budget ran out during a step (504); the text names the step.
    #[error("{0} timed out")]
    TimedOut(&'static str, #[source] DownstreamError),
}

impl OrderError {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::UnknownItem(_) => StatusCode::NOT_FOUND,
            Self::InsufficientStock => StatusCode::CONFLICT,
            Self::InventoryCheckFailed(_)
            | Self::InventoryReserveFailed(_)
            | Self::PaymentFailed(_)
            | Self::ConfirmFailed(_)
            | Self::PaymentUnresolved(_) => StatusCode::BAD_GATEWAY,
            Self::TimedOut(..) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// A failure of the system rather than of the request: it marks spans ERROR.
    pub fn is_system_failure(&self) -> bool {
        self.status().is_server_error()
    }
}

impl OrderError {
    /// The error for a failed call of `step`: a timeout (504) if time ran out, else `failed`.
    pub fn from_call(
        step: &'static str,
        error: DownstreamError,
        failed: fn(DownstreamError) -> OrderError,
    ) -> Self {
        if error.is_timeout() {
            Self::TimedOut(step, error)
        } else {
            failed(error)
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> Self {
        ApiError::new(error.status(), error.to_string())
    }
}

impl From<ApiError> for OrderError {
    /// Validation rules shared with the other services answer [`ApiError`]s; all are 400s.
    fn from(error: ApiError) -> Self {
        Self::Invalid(error.message)
    }
}
