//! The routes of notification-service.

use axum::{Json, Router, extract::State, http::StatusCode, routing};
use service_kit::{ApiError, ApiJson, app::api, faults::Faults, item::validate_item};
use utoipa::OpenApi;

use crate::{
    api::{NotifyAccepted, NotifyRequest},
    faults::NotificationFaults,
};

/// The OpenAPI description served on `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "notification-service",
        description = "Notifies of a created order."
    ),
    paths(notify)
)]
struct ApiDoc;

/// All routes, with the shared layers.
pub fn router(faults: Faults<NotificationFaults>) -> Router {
    api(
        Router::new().route("/notify", routing::post(notify)),
        ApiDoc::openapi(),
    )
    .with_state(faults)
}

#[utoipa::path(post, path = "/notify", request_body = NotifyRequest,
    responses((status = 202, body = NotifyAccepted), (status = 400, description = "Invalid request", body = service_kit::api_error::ErrorBody), (status = 408, description = "Body stopped arriving", body = service_kit::api_error::ErrorBody), (status = 413, description = "Body too large", body = service_kit::api_error::ErrorBody), (status = 415, description = "Not JSON", body = service_kit::api_error::ErrorBody), (status = 422, description = "Missing or mistyped field", body = service_kit::api_error::ErrorBody)))]
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
