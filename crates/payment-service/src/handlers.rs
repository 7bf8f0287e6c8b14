//! The routes of payment-service.

use std::{sync::LazyLock, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing,
};
use service_kit::{
    ApiError, ApiJson, ApiPath, app::api, faults::Faults, idempotency::IdempotencyStore,
    item::validate_item,
};
use tracing::{Span, field::Empty};
use utoipa::OpenApi;

use crate::{
    api::{Charge, ChargeRecord, ChargeRequest},
    faults::PaymentFaults,
    ledger::{Ledger, LedgerError},
};

/// `payment_charges_total{item}` and `payment_amount_charged_cents_total{item}`; the same for
/// refunds. Cents are whole numbers, so the sums are exact.
static CHARGES: LazyLock<telemetry::CounterVec> =
    LazyLock::new(|| telemetry::counter("payment_charges", "Charges made", &["item"]));
static AMOUNT: LazyLock<telemetry::CounterVec> = LazyLock::new(|| {
    telemetry::counter(
        "payment_amount_charged_cents",
        "Sum of the amounts charged, in cents",
        &["item"],
    )
});
static REFUNDS: LazyLock<telemetry::CounterVec> =
    LazyLock::new(|| telemetry::counter("payment_refunds", "Charges refunded", &["item"]));
static REFUNDED: LazyLock<telemetry::CounterVec> = LazyLock::new(|| {
    telemetry::counter(
        "payment_amount_refunded_cents",
        "Sum of the amounts refunded, in cents",
        &["item"],
    )
});

/// The OpenAPI description served on `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "payment-service",
        description = "Charges an amount for an item, once per key; says what happened to a key."
    ),
    paths(charge_once, charge_of, cancel, refund)
)]
struct ApiDoc;

/// What the handlers share.
#[derive(Clone)]
struct Payments {
    ledger: Ledger,
    faults: Faults<PaymentFaults>,
}

/// All routes, with the shared layers.
pub fn router(ledger: Ledger, faults: Faults<PaymentFaults>) -> Router {
    let state = Payments { ledger, faults };
    api(
        Router::new()
            .route("/charges", routing::post(charge_once))
            .route("/charges/{key}", routing::get(charge_of))
            .route("/charges/{key}/cancel", routing::post(cancel))
            .route("/charges/{key}/refund", routing::post(refund)),
        ApiDoc::openapi(),
    )
    .with_state(state)
}

/// `GET /charges` for the admin listener: every key remembered, for reconciliation.
pub fn admin_router(ledger: Ledger) -> Router {
    Router::new()
        .route(
            "/charges",
            routing::get(|State(ledger): State<Ledger>| async move { Json(ledger.all()) }),
        )
        .with_state(ledger)
}

impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        let status = match error {
            LedgerError::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            LedgerError::Cancelled => StatusCode::CONFLICT,
            LedgerError::NotCharged => StatusCode::NOT_FOUND,
        };
        ApiError::new(status, error.to_string())
    }
}

/// `POST /charges`: charges once per `Idempotency-Key` (required: a charge must be safe to
/// repeat); a repeat returns the first charge.
#[utoipa::path(post, path = "/charges", request_body = ChargeRequest,
    params(("Idempotency-Key" = String, Header, description = "Required; a repeat with this key gets the first charge")),
    responses((status = 200, body = Charge), (status = 400, description = "Invalid request", body = service_kit::api_error::ErrorBody), (status = 409, description = "Cancelled", body = service_kit::api_error::ErrorBody), (status = 408, description = "Body stopped arriving", body = service_kit::api_error::ErrorBody), (status = 413, description = "Body too large", body = service_kit::api_error::ErrorBody), (status = 415, description = "Not JSON", body = service_kit::api_error::ErrorBody), (status = 422, description = "Missing or mistyped field, or key reused", body = service_kit::api_error::ErrorBody), (status = 503, description = "Unavailable", body = service_kit::api_error::ErrorBody)))]
async fn charge_once(
    State(Payments { ledger, faults }): State<Payments>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<ChargeRequest>,
) -> Result<Json<Charge>, ApiError> {
    let key = IdempotencyStore::key_of(&headers)?.ok_or_else(|| {
        ApiError::bad_request("Idempotency-Key is required: a charge must be safe to repeat")
    })?;
    let faults = faults.current();
    let charge = charge(&ledger, &key, request, faults.failure_rate)?;
    // The slow-answer fault: the charge is made, its answer is late (the caller may give up).
    if faults.answer_delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.answer_delay_ms)).await;
    }
    Ok(Json(charge))
}

/// Charges under `key` (no span of its own: the SERVER span is the charge, and its log line
/// carries the charge id).
fn charge(
    ledger: &Ledger,
    key: &str,
    request: ChargeRequest,
    failure_rate: f64,
) -> Result<Charge, ApiError> {
    validate_item(&request.item)?;
    let cents = u64::try_from(request.amount_cents)
        .map_err(|_| ApiError::bad_request("Amount must be non-negative"))?;
    let charged = ledger
        .charge(key, &request.item, cents, || fastrand::f64() < failure_rate)?
        .ok_or_else(|| {
            tracing::warn!(
                item = request.item,
                "charge refused by the injected payment fault"
            );
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Payment provider unavailable",
            )
        })?;
    if charged.created {
        CHARGES.inc(&[&request.item]);
        AMOUNT.add(&[&request.item], cents as f64);
        tracing::info!(
            charge_id = charged.charge.charge_id,
            item = request.item,
            amount_cents = cents,
            "charged"
        );
    } else {
        tracing::info!(
            charge_id = charged.charge.charge_id,
            "repeat of a charge already made"
        );
    }
    Ok(charged.charge)
}

/// What happened to a key: charged, refunded or cancelled (404 if it is unknown).
#[utoipa::path(get, path = "/charges/{key}", params(("key" = String, Path, description = "The charge's idempotency key")),
    responses((status = 200, body = ChargeRecord), (status = 400, description = "Invalid key", body = service_kit::api_error::ErrorBody), (status = 404, description = "Unknown key", body = service_kit::api_error::ErrorBody)))]
async fn charge_of(
    State(Payments { ledger, .. }): State<Payments>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<ChargeRecord>, ApiError> {
    valid_key(&key)?;
    ledger
        .get(&key)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("No charge with this key"))
}

/// Settles a key in doubt: answers the charge if there was one, else cancels the key so that
/// it is never charged. Idempotent.
#[utoipa::path(post, path = "/charges/{key}/cancel", params(("key" = String, Path, description = "The charge's idempotency key")),
    responses((status = 200, body = ChargeRecord), (status = 400, description = "Invalid key", body = service_kit::api_error::ErrorBody)))]
async fn cancel(
    State(Payments { ledger, .. }): State<Payments>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<ChargeRecord>, ApiError> {
    valid_key(&key)?;
    Ok(Json(cancel_charge(&ledger, &key)))
}

#[tracing::instrument(name = "cancel_charge", skip_all, fields(payment.outcome = Empty))]
fn cancel_charge(ledger: &Ledger, key: &str) -> ChargeRecord {
    let record = ledger.cancel(key);
    let outcome = serde_json::to_value(record.state).unwrap_or_default();
    Span::current().record("payment.outcome", outcome.as_str().unwrap_or(""));
    tracing::info!(outcome = %outcome, "charge settled");
    record
}

/// Refunds the charge of a key. Idempotent.
#[utoipa::path(post, path = "/charges/{key}/refund", params(("key" = String, Path, description = "The charge's idempotency key")),
    responses((status = 200, body = ChargeRecord), (status = 400, description = "Invalid key", body = service_kit::api_error::ErrorBody), (status = 404, description = "Nothing charged with this key", body = service_kit::api_error::ErrorBody)))]
async fn refund(
    State(Payments { ledger, .. }): State<Payments>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<ChargeRecord>, ApiError> {
    valid_key(&key)?;
    refund_charge(&ledger, &key).map(Json)
}

#[tracing::instrument(name = "refund_charge", skip_all, fields(payment.charge_id = Empty))]
fn refund_charge(ledger: &Ledger, key: &str) -> Result<ChargeRecord, ApiError> {
    let (record, refunded) = ledger.refund(key)?;
    if let Some(charge) = &record.charge {
        Span::current().record("payment.charge_id", charge.charge_id.as_str());
        if refunded {
            REFUNDS.inc(&[&charge.item]);
            REFUNDED.add(&[&charge.item], charge.amount_cents as f64);
            tracing::info!(
                charge_id = charge.charge_id,
                amount_cents = charge.amount_cents,
                "refunded"
            );
        }
    }
    Ok(record)
}

fn valid_key(key: &str) -> Result<(), ApiError> {
    if IdempotencyStore::is_valid_key(key) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "A charge key is 1-200 visible ASCII characters",
        ))
    }
}
