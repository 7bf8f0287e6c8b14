//! The routes of inventory-service.

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use axum::{Json, Router, extract::State, routing};
use service_kit::{ApiError, ApiJson, ApiPath, app::api, faults::Faults, item::validate_item};
use utoipa::OpenApi;

use crate::{
    StockBook,
    api::{QuantityRequest, Release, Reservation, StockLevel},
    faults::InventoryFaults,
    stock::StockError,
};

/// `inventory_units_total{item, operation}`: units reserved and released.
static UNITS: LazyLock<telemetry::CounterVec> = LazyLock::new(|| {
    telemetry::counter(
        "inventory_units",
        "Units reserved and released",
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
    paths(stock_level, reserve, release)
)]
struct ApiDoc;

impl From<StockError> for ApiError {
    fn from(error: StockError) -> Self {
        match error {
            StockError::UnknownItem(_) => ApiError::not_found(error.to_string()),
            StockError::Insufficient { .. } => {
                ApiError::new(axum::http::StatusCode::CONFLICT, "Insufficient stock")
            }
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
    let available = stock
        .available(&item)
        .ok_or_else(|| StockError::UnknownItem(item.clone()))?;
    Ok(Json(StockLevel { item, available }))
}

/// Reserves units of an item (atomically: never below zero).
#[utoipa::path(post, path = "/stock/{item}/reserve", params(("item" = String, Path, description = "Item name, [A-Za-z0-9_-]{1,64}")), request_body = QuantityRequest,
    responses((status = 200, body = Reservation), (status = 400, description = "Invalid request", body = service_kit::api_error::ErrorBody), (status = 404, description = "Unknown item or route", body = service_kit::api_error::ErrorBody), (status = 409, description = "Conflict", body = service_kit::api_error::ErrorBody), (status = 413, description = "Body too large", body = service_kit::api_error::ErrorBody), (status = 415, description = "Not JSON", body = service_kit::api_error::ErrorBody), (status = 422, description = "Missing or mistyped field", body = service_kit::api_error::ErrorBody)))]
async fn reserve(
    State(inventory): State<Inventory>,
    ApiPath(item): ApiPath<String>,
    ApiJson(request): ApiJson<QuantityRequest>,
) -> Result<Json<Reservation>, ApiError> {
    reserve_stock(&inventory, item, request.quantity)
        .await
        .map(Json)
}

#[tracing::instrument(
    name = "reserve_stock",
    skip(inventory),
    fields(inventory.item = %item, inventory.quantity = quantity)
)]
async fn reserve_stock(
    inventory: &Inventory,
    item: String,
    quantity: i64,
) -> Result<Reservation, ApiError> {
    validate_item(&item)?;
    let units = positive(quantity)?;
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
    let available = inventory.stock.reserve(&item, units)?;
    UNITS.add(&[&item, "reserved"], units as f64);
    tracing::info!(item, reserved = units, available, "stock reserved");
    Ok(Reservation {
        item,
        reserved: units,
        available,
    })
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

/// Gives reserved units back.
#[utoipa::path(post, path = "/stock/{item}/release", params(("item" = String, Path, description = "Item name, [A-Za-z0-9_-]{1,64}")), request_body = QuantityRequest,
    responses((status = 200, body = Release), (status = 400, description = "Invalid request", body = service_kit::api_error::ErrorBody), (status = 404, description = "Unknown item or route", body = service_kit::api_error::ErrorBody), (status = 413, description = "Body too large", body = service_kit::api_error::ErrorBody), (status = 415, description = "Not JSON", body = service_kit::api_error::ErrorBody), (status = 422, description = "Missing or mistyped field", body = service_kit::api_error::ErrorBody)))]
async fn release(
    State(Inventory { stock, .. }): State<Inventory>,
    ApiPath(item): ApiPath<String>,
    ApiJson(request): ApiJson<QuantityRequest>,
) -> Result<Json<Release>, ApiError> {
    validate_item(&item)?;
    let units = positive(request.quantity)?;
    let available = stock.release(&item, units)?;
    UNITS.add(&[&item, "released"], units as f64);
    tracing::info!(item, released = units, available, "stock released");
    Ok(Json(Release {
        item,
        released: units,
        available,
    }))
}

fn positive(quantity: i64) -> Result<u64, ApiError> {
    u64::try_from(quantity)
        .ok()
        .filter(|&q| q > 0)
        .ok_or_else(|| ApiError::bad_request("Quantity must be positive"))
}
