//! The routes of payment-service.

use std::sync::LazyLock;

use std::time::Duration;

use utoipa::OpenApi;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing,
};
use service_kit::{
    ApiError, ApiJson,
    app::api,
    faults::Faults,
    idempotency::{Answer, Claim, IdempotencyStore},
    item::validate_item,
};

use crate::{
    api::{Charge, ChargeRequest},
    faults::PaymentFaults,
};

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

/// The OpenAPI description served on `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "payment-service",
        description = "Charges an amount for an item."
    ),
    paths(charge_once)
)]
struct ApiDoc;

/// What the handlers share.
#[derive(Clone)]
struct Payments {
    /// Charge keys, kept a day, up to 10 000 of them (each holds its answer: at 100 000 the
    /// benchmark saw payment-service grow past 100 MiB).
    keys: IdempotencyStore,
    faults: Faults<PaymentFaults>,
}

/// All routes, with the shared layers.
pub fn router(faults: Faults<PaymentFaults>) -> Router {
    let state = Payments {
        keys: IdempotencyStore::new(10_000, Duration::from_secs(24 * 3600)),
        faults,
    };
    api(
        Router::new().route("/charges", routing::post(charge_once)),
        ApiDoc::openapi(),
    )
    .with_state(state)
}

/// `POST /charges`: with an `Idempotency-Key`, a repeat returns the first charge instead of
/// charging again.
#[utoipa::path(post, path = "/charges", request_body = ChargeRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "A repeat with this key gets the first charge")),
    responses((status = 200, body = Charge), (status = 400, description = "Invalid request", body = service_kit::api_error::ErrorBody), (status = 409, description = "Conflict", body = service_kit::api_error::ErrorBody), (status = 413, description = "Body too large", body = service_kit::api_error::ErrorBody), (status = 415, description = "Not JSON", body = service_kit::api_error::ErrorBody), (status = 422, description = "Missing or mistyped field", body = service_kit::api_error::ErrorBody), (status = 503, description = "Unavailable", body = service_kit::api_error::ErrorBody)))]
async fn charge_once(
    State(Payments { keys, faults }): State<Payments>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<ChargeRequest>,
) -> Response {
    let key = match IdempotencyStore::key_of(&headers) {
        Ok(Some(key)) => key,
        Ok(None) => return charge(request, &faults).into_response(),
        Err(e) => return e.into_response(),
    };
    let fingerprint = serde_json::to_string(&request).unwrap_or_default();
    match keys.claim(&key, &fingerprint, Duration::from_secs(5)).await {
        Err(e) => e.into_response(),
        Ok(Claim::Repeat(answer)) => (answer.status, Json(answer.body)).into_response(),
        Ok(Claim::New(pending)) => {
            let answer = match charge(request, &faults) {
                Ok(Json(charge)) => Answer {
                    status: StatusCode::OK,
                    body: serde_json::to_value(charge).unwrap_or_default(),
                },
                Err(e) => Answer {
                    status: e.status,
                    body: serde_json::json!({ "error": e.message }),
                },
            };
            pending.finish(answer.clone());
            (answer.status, Json(answer.body)).into_response()
        }
    }
}

fn charge(
    request: ChargeRequest,
    faults: &Faults<PaymentFaults>,
) -> Result<Json<Charge>, ApiError> {
    validate_item(&request.item)?;
    if !(request.amount.is_finite() && request.amount >= 0.0) {
        return Err(ApiError::bad_request("Amount must be non-negative"));
    }
    if fastrand::f64() < faults.current().failure_rate {
        tracing::warn!(
            item = request.item,
            "charge refused by the injected payment fault"
        );
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Payment provider unavailable",
        ));
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
