//! The routes of notification-service.

use axum::{Json, Router, http::StatusCode, routing};
use service_kit::{ApiError, ApiJson, app::api, item::validate_item};

use crate::api::{NotifyAccepted, NotifyRequest};

/// All routes, with the shared layers.
pub fn router() -> Router {
    api(Router::new().route("/notify", routing::post(notify)))
}

async fn notify(
    ApiJson(request): ApiJson<NotifyRequest>,
) -> Result<(StatusCode, Json<NotifyAccepted>), ApiError> {
    validate_item(&request.item)?;
    if uuid::Uuid::parse_str(&request.order_id).is_err() {
        return Err(ApiError::bad_request("Order id must be a UUID"));
    }
    tracing::info!(
        order_id = request.order_id,
        item = request.item,
        "notification sent"
    );
    Ok((
        StatusCode::ACCEPTED,
        Json(NotifyAccepted {
            order_id: request.order_id,
            status: "accepted".to_owned(),
        }),
    ))
}
