//! The routes of notification-service.

use axum::{Json, Router, extract::State, http::StatusCode, routing};
use service_kit::{ApiError, ApiJson, app::api, faults::Faults, item::validate_item};

use crate::{
    api::{NotifyAccepted, NotifyRequest},
    faults::NotificationFaults,
};

/// All routes, with the shared layers.
pub fn router(faults: Faults<NotificationFaults>) -> Router {
    api(Router::new().route("/notify", routing::post(notify))).with_state(faults)
}

async fn notify(
    State(faults): State<Faults<NotificationFaults>>,
    ApiJson(request): ApiJson<NotifyRequest>,
) -> Result<(StatusCode, Json<NotifyAccepted>), ApiError> {
    validate_item(&request.item)?;
    if uuid::Uuid::parse_str(&request.order_id).is_err() {
        return Err(ApiError::bad_request("Order id must be a UUID"));
    }
    let delay = faults.current().delay_ms;
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
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
