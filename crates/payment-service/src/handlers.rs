//! The routes of payment-service.

use axum::{Json, Router, routing};
use service_kit::{ApiError, ApiJson, app::api, item::validate_item};

use crate::api::{Charge, ChargeRequest};

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
