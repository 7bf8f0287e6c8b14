//! The routes of payment-service.

use std::sync::LazyLock;

use axum::{Json, Router, routing};
use service_kit::{ApiError, ApiJson, app::api, item::validate_item};

use crate::api::{Charge, ChargeRequest};

/// `payment_charges_total{item}` and `payment_amount_charged_total{item}`.
static CHARGES: LazyLock<telemetry::CounterVec> =
    LazyLock::new(|| telemetry::counter("payment_charges", "Charges made", &["item"]));
static AMOUNT: LazyLock<telemetry::CounterVec> = LazyLock::new(|| {
    telemetry::counter(
        "payment_amount_charged",
        "Sum of the amounts charged",
        &["item"],
    )
});

/// All routes, with the shared layers.
pub fn router() -> Router {
    api(Router::new().route("/charges", routing::post(charge)))
}

async fn charge(ApiJson(request): ApiJson<ChargeRequest>) -> Result<Json<Charge>, ApiError> {
    validate_item(&request.item)?;
    if !(request.amount.is_finite() && request.amount >= 0.0) {
        return Err(ApiError::bad_request("Amount must be non-negative"));
    }
    let charge_id = uuid::Uuid::new_v4().to_string();
    CHARGES.inc(&[&request.item]);
    AMOUNT.add(&[&request.item], request.amount);
    tracing::info!(
        charge_id,
        item = request.item,
        amount = request.amount,
        "charged"
    );
    Ok(Json(Charge {
        charge_id,
        item: request.item,
        amount: request.amount,
        status: "succeeded".to_owned(),
    }))
}
