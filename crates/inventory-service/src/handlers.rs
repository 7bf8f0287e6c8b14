//! The routes of inventory-service.

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use axum::{Json, Router, extract::State, http::HeaderMap, routing};
use service_kit::{
    ApiError, ApiJson, ApiPath, app::api, faults::Faults, idempotency::IdempotencyStore,
    item::validate_item,
};
use utoipa::OpenApi;

use crate::{
    StockBook,
    api::{QuantityRequest, Reservation, ReservationRecord, ReservationRequest, StockLevel},
    faults::InventoryFaults,
    stock::StockError,
};

/// `inventory_units_total{item, operation}`: units reserved, confirmed, released and expired.
static UNITS: LazyLock<telemetry::CounterVec> = LazyLock::new(|| {
    telemetry::counter(
        "inventory_units",
        "Units reserved, confirmed, released and expired",
        &["item", "operation"],
    )
});

/// What the handlers share.
#[derive(Clone)]
struct Inventory {
    stock: StockBook,
    faults: Faults<InventoryFaults>,
    /// The lock of the lock fault (unused unless it is on).
    reservation_lock: Arc<tokio::sync::Mutex<()>>,
}

/// All routes, with the shared layers.
pub fn router(stock: StockBook, faults: Faults<InventoryFaults>) -> Router {
    let state = Inventory {
        stock,
        faults,
        reservation_lock: Arc::default(),
    };
    api(
        Router::new()
            .route("/stock/{item}", routing::get(stock_level))
            .route("/stock/{item}/reserve", routing::post(reserve))
            .route("/stock/{item}/confirm", routing::post(confirm))
            .route("/stock/{item}/release", routing::post(release)),
        ApiDoc::openapi(),
    )
    .with_state(state)
}

/// The OpenAPI description served on `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "inventory-service",
        description = "Stock per item, with atomic reservations."
    ),
    paths(stock_level, reserve, confirm, release)
)]
struct ApiDoc;

impl From<StockError> for ApiError {
    fn from(error: StockError) -> Self {
        match error {
            StockError::UnknownItem(_) => ApiError::not_found(error.to_string()),
            StockError::Insufficient { .. } => {
                ApiError::new(axum::http::StatusCode::CONFLICT, "Insufficient stock")
            }
            StockError::UnknownReservation => ApiError::not_found(error.to_string()),
            StockError::Ended(_) => {
                ApiError::new(axum::http::StatusCode::CONFLICT, error.to_string())
            }
            StockError::KeyReused => ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                error.to_string(),
            ),
        }
    }
}

/// Units of an item not reserved.
#[utoipa::path(get, path = "/stock/{item}", params(("item" = String, Path, description = "Item name, [A-Za-z0-9_-]{1,64}")),
    responses((status = 200, body = StockLevel), (status = 400, description = "Invalid request", body = service_kit::api_error::ErrorBody), (status = 404, description = "Unknown item or route", body = service_kit::api_error::ErrorBody)))]
async fn stock_level(
    State(Inventory { stock, .. }): State<Inventory>,
    ApiPath(item): ApiPath<String>,
) -> Result<Json<StockLevel>, ApiError> {
    validate_item(&item)?;
    let level = stock
        .level(&item)
        .ok_or_else(|| StockError::UnknownItem(item.clone()))?;
    Ok(Json(StockLevel {
        item,
        available: level.available,
        held: level.held,
        sold: level.sold,
    }))
}

/// Reserves units of an item (atomically: never below zero). With an `Idempotency-Key`, a
/// repeat returns the same reservation. Unconfirmed, it expires and its units return.
#[utoipa::path(post, path = "/stock/{item}/reserve", params(("item" = String, Path, description = "Item name, [A-Za-z0-9_-]{1,64}"), ("Idempotency-Key" = Option<String>, Header, description = "A repeat with this key gets the same reservation")), request_body = QuantityRequest,
    responses((status = 200, body = Reservation), (status = 400, description = "Invalid request", body = service_kit::api_error::ErrorBody), (status = 404, description = "Unknown item or route", body = service_kit::api_error::ErrorBody), (status = 409, description = "Conflict", body = service_kit::api_error::ErrorBody), (status = 408, description = "Body stopped arriving", body = service_kit::api_error::ErrorBody), (status = 413, description = "Body too large", body = service_kit::api_error::ErrorBody), (status = 415, description = "Not JSON", body = service_kit::api_error::ErrorBody), (status = 422, description = "Missing or mistyped field", body = service_kit::api_error::ErrorBody)))]
async fn reserve(
    State(inventory): State<Inventory>,
    headers: HeaderMap,
    ApiPath(item): ApiPath<String>,
    ApiJson(request): ApiJson<QuantityRequest>,
) -> Result<Json<Reservation>, ApiError> {
    let key = IdempotencyStore::key_of(&headers)?;
    let reserved = reserve_stock(&inventory, item, request.quantity, key).await?;
    // The lost-answer fault: the units are reserved, the answer is late.
    let delay = inventory.faults.current().answer_delay_ms;
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    Ok(Json(reserved))
}

#[tracing::instrument(
    name = "reserve_stock",
    skip(inventory, key),
    fields(
        inventory.item = item.as_str(),
        inventory.quantity = quantity,
        inventory.reservation_id = tracing::field::Empty,
        inventory.reservation.repeat = tracing::field::Empty,
    )
)]
async fn reserve_stock(
    inventory: &Inventory,
    item: String,
    quantity: i64,
    key: Option<String>,
) -> Result<Reservation, ApiError> {
    validate_item(&item)?;
    let units = positive(quantity)?;
    // A repeat (an order settling a reservation whose answer it lost) needs no lookup.
    let repeat = key
        .as_deref()
        .and_then(|k| inventory.stock.repeat(k, &item, units));
    let reserved = match repeat {
        Some(repeat) => repeat?,
        None => lookup_and_reserve(inventory, &item, units, key.as_deref()).await?,
    };
    let span = tracing::Span::current();
    span.record(
        "inventory.reservation_id",
        reserved.record.reservation_id.as_str(),
    );
    span.record("inventory.reservation.repeat", !reserved.created);
    if reserved.created {
        UNITS.add(&[&item, "reserved"], units as f64);
        tracing::info!(
            item,
            reserved = units,
            available = reserved.available,
            reservation_id = reserved.record.reservation_id,
            "stock reserved"
        );
    }
    Ok(Reservation {
        reservation_id: reserved.record.reservation_id,
        item,
        reserved: units,
        available: reserved.available,
        state: reserved.record.state,
        expires_in_ms: reserved
            .expires_in
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    })
}

/// The lookup (the planted `slow_lookup`), then the reservation itself.
async fn lookup_and_reserve(
    inventory: &Inventory,
    item: &str,
    units: u64,
    key: Option<&str>,
) -> Result<crate::stock::Reserved, StockError> {
    let faults = inventory.faults.current();
    // The lock fault: one lock for every reservation, held across the lookup's await.
    let _serialised = match faults.lock_held_across_await {
        true => Some(inventory.reservation_lock.lock().await),
        false => None,
    };
    let demand = if units > 5 || faults.slow_lookup_always {
        Demand::High
    } else {
        Demand::Normal
    };
    slow_lookup(demand, faults.lookup_scale).await;
    inventory.stock.reserve(item, units, key)
}

/// How much a reservation asks of the lookup.
#[derive(Debug, Clone, Copy)]
enum Demand {
    /// More than 5 units (or the slow-lookup fault).
    High,
    /// Up to 5 units.
    Normal,
}

/// The planted defect: a lookup that is slow for large orders. 0.27 s for high demand, 0.02 s
/// otherwise, plus up to 0.03 s of jitter, all times `scale`.
#[tracing::instrument(
    name = "slow_lookup",
    skip_all,
    fields(inventory.demand = match demand { Demand::High => "high", Demand::Normal => "normal" })
)]
async fn slow_lookup(demand: Demand, scale: f64) {
    let base = match demand {
        Demand::High => 0.27,
        Demand::Normal => 0.02,
    };
    let jitter = fastrand::f64() * 0.03;
    tokio::time::sleep(Duration::from_secs_f64((base + jitter) * scale)).await;
}

/// Sells a reservation's units (idempotent).
#[utoipa::path(post, path = "/stock/{item}/confirm", params(("item" = String, Path, description = "Item name, [A-Za-z0-9_-]{1,64}")), request_body = ReservationRequest,
    responses((status = 200, body = ReservationRecord), (status = 400, description = "Invalid request", body = service_kit::api_error::ErrorBody), (status = 404, description = "Unknown item, reservation or route", body = service_kit::api_error::ErrorBody), (status = 409, description = "Released or expired", body = service_kit::api_error::ErrorBody), (status = 408, description = "Body stopped arriving", body = service_kit::api_error::ErrorBody), (status = 413, description = "Body too large", body = service_kit::api_error::ErrorBody), (status = 415, description = "Not JSON", body = service_kit::api_error::ErrorBody), (status = 422, description = "Missing or mistyped field", body = service_kit::api_error::ErrorBody)))]
async fn confirm(
    State(Inventory { stock, .. }): State<Inventory>,
    ApiPath(item): ApiPath<String>,
    ApiJson(request): ApiJson<ReservationRequest>,
) -> Result<Json<ReservationRecord>, ApiError> {
    confirm_reservation(&stock, item, request.reservation_id).map(Json)
}

#[tracing::instrument(
    name = "confirm_reservation",
    skip(stock),
    fields(inventory.item = item.as_str(), inventory.reservation_id = reservation_id.as_str())
)]
fn confirm_reservation(
    stock: &StockBook,
    item: String,
    reservation_id: String,
) -> Result<ReservationRecord, ApiError> {
    validate_item(&item)?;
    Ok(counted(stock.confirm(&item, &reservation_id)?, "confirmed"))
}

/// Gives a reservation's units back (idempotent). Only reserved units can come back: there is
/// no way to add units that were not reserved.
#[utoipa::path(post, path = "/stock/{item}/release", params(("item" = String, Path, description = "Item name, [A-Za-z0-9_-]{1,64}")), request_body = ReservationRequest,
    responses((status = 200, body = ReservationRecord), (status = 400, description = "Invalid request", body = service_kit::api_error::ErrorBody), (status = 404, description = "Unknown item, reservation or route", body = service_kit::api_error::ErrorBody), (status = 409, description = "Already confirmed", body = service_kit::api_error::ErrorBody), (status = 408, description = "Body stopped arriving", body = service_kit::api_error::ErrorBody), (status = 413, description = "Body too large", body = service_kit::api_error::ErrorBody), (status = 415, description = "Not JSON", body = service_kit::api_error::ErrorBody), (status = 422, description = "Missing or mistyped field", body = service_kit::api_error::ErrorBody)))]
async fn release(
    State(Inventory { stock, .. }): State<Inventory>,
    ApiPath(item): ApiPath<String>,
    ApiJson(request): ApiJson<ReservationRequest>,
) -> Result<Json<ReservationRecord>, ApiError> {
    release_reservation(&stock, item, request.reservation_id).map(Json)
}

#[tracing::instrument(
    name = "release_reservation",
    skip(stock),
    fields(inventory.item = item.as_str(), inventory.reservation_id = reservation_id.as_str())
)]
fn release_reservation(
    stock: &StockBook,
    item: String,
    reservation_id: String,
) -> Result<ReservationRecord, ApiError> {
    validate_item(&item)?;
    Ok(counted(stock.release(&item, &reservation_id)?, "released"))
}

/// Counts and logs a confirm or release that moved units (a repeat moves none).
fn counted(ended: crate::stock::Ended, operation: &str) -> ReservationRecord {
    let record = ended.record;
    if ended.changed {
        UNITS.add(&[&record.item, operation], record.quantity as f64);
        tracing::info!(
            item = record.item,
            reservation_id = record.reservation_id,
            units = record.quantity,
            operation,
            "reservation ended"
        );
    }
    record
}

/// Every 250 ms, returns the units of reservations nobody confirmed in time, each in an
/// `expire_reservation` span (a trace of its own: it belongs to no request) that says whose
/// units came back, until `stop` is cancelled.
pub async fn expire_reservations(stock: StockBook, stop: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        for record in stock.expire_due() {
            let span = tracing::info_span!(
                "expire_reservation",
                inventory.item = %record.item,
                inventory.quantity = i64::try_from(record.quantity).unwrap_or(i64::MAX),
                inventory.reservation_id = %record.reservation_id,
                inventory.reservation.key = record.key.as_deref().unwrap_or(""),
            );
            let _entered = span.enter();
            UNITS.add(&[&record.item, "expired"], record.quantity as f64);
            tracing::warn!(
                item = record.item,
                units = record.quantity,
                reservation_id = record.reservation_id,
                "reservation expired unconfirmed: its units are available again"
            );
        }
    }
}

/// `GET /reservations` for the admin listener: every reservation remembered, for
/// reconciliation.
pub fn admin_router(stock: StockBook) -> Router {
    Router::new()
        .route(
            "/reservations",
            routing::get(
                |State(stock): State<StockBook>| async move { Json(stock.reservations()) },
            ),
        )
        .with_state(stock)
}

fn positive(quantity: i64) -> Result<u64, ApiError> {
    u64::try_from(quantity)
        .ok()
        .filter(|&q| q > 0)
        .ok_or_else(|| ApiError::bad_request("Quantity must be positive"))
}
