//! The routes of inventory-service.

use std::{sync::LazyLock, time::Duration};

use axum::{Json, Router, extract::State, routing};
use service_kit::{ApiError, ApiJson, ApiPath, app::api, item::validate_item};

use crate::{
    StockBook,
    api::{QuantityRequest, Release, Reservation, StockLevel},
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

/// All routes, with the shared layers.
pub fn router(stock: StockBook) -> Router {
    api(Router::new()
        .route("/stock/{item}", routing::get(stock_level))
        .route("/stock/{item}/reserve", routing::post(reserve))
        .route("/stock/{item}/release", routing::post(release)))
    .with_state(stock)
}

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

async fn stock_level(
    State(stock): State<StockBook>,
    ApiPath(item): ApiPath<String>,
) -> Result<Json<StockLevel>, ApiError> {
    validate_item(&item)?;
    let available = stock
        .available(&item)
        .ok_or_else(|| StockError::UnknownItem(item.clone()))?;
    Ok(Json(StockLevel { item, available }))
}

async fn reserve(
    State(stock): State<StockBook>,
    ApiPath(item): ApiPath<String>,
    ApiJson(request): ApiJson<QuantityRequest>,
) -> Result<Json<Reservation>, ApiError> {
    reserve_stock(&stock, item, request.quantity)
        .await
        .map(Json)
}

#[tracing::instrument(
    name = "reserve_stock",
    skip(stock),
    fields(inventory.item = %item, inventory.quantity = quantity)
)]
async fn reserve_stock(
    stock: &StockBook,
    item: String,
    quantity: i64,
) -> Result<Reservation, ApiError> {
    validate_item(&item)?;
    let units = positive(quantity)?;
    slow_lookup(units).await;
    let available = stock.reserve(&item, units)?;
    UNITS.add(&[&item, "reserved"], units as f64);
    tracing::info!(item, reserved = units, available, "stock reserved");
    Ok(Reservation {
        item,
        reserved: units,
        available,
    })
}

/// The planted defect: a lookup that is slow for large orders. 0.27 s above 5 units, 0.02 s
/// otherwise, plus up to 0.03 s of jitter.
#[tracing::instrument(
    name = "slow_lookup",
    fields(inventory.demand = if quantity > 5 { "high" } else { "normal" })
)]
async fn slow_lookup(quantity: u64) {
    let base = if quantity > 5 { 0.27 } else { 0.02 };
    let jitter = fastrand::f64() * 0.03;
    tokio::time::sleep(Duration::from_secs_f64(base + jitter)).await;
}

async fn release(
    State(stock): State<StockBook>,
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
