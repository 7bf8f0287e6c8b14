//! The routes of order-service and the state they share.

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing,
};
use inventory_service::InventoryClient;
use notification_service::NotificationClient;
use payment_service::PaymentClient;
use service_kit::{ApiError, ApiJson, ApiPath, app::api};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::{
    OrderBook, Settings,
    api::{CreateOrder, Order},
    process::process_order,
    settings::{DOWNSTREAM_TIMEOUT, NOTIFICATION_TIMEOUT},
};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// inventory-service.
    pub inventory: InventoryClient,
    /// payment-service.
    pub payment: PaymentClient,
    /// notification-service, with its own short timeout.
    pub notification: NotificationClient,
    /// Orders created.
    pub orders: OrderBook,
    /// Fire-and-forget work still running (notifications), awaited at shutdown.
    pub background: TaskTracker,
    /// The time budget of one order.
    pub order_budget: std::time::Duration,
}

impl AppState {
    /// Clients for the services named in `settings`.
    pub fn new(settings: &Settings, background: TaskTracker) -> Result<Self, reqwest::Error> {
        let http = telemetry::http_client(DOWNSTREAM_TIMEOUT)?;
        let notify_http = telemetry::http_client(NOTIFICATION_TIMEOUT)?;
        Ok(Self {
            inventory: InventoryClient::new(settings.inventory_url.clone(), http.clone()),
            payment: PaymentClient::new(settings.payment_url.clone(), http),
            notification: NotificationClient::new(settings.notification_url.clone(), notify_http),
            orders: OrderBook::default(),
            background,
            order_budget: settings.order_budget,
        })
    }
}

/// All routes, with the shared layers.
pub fn router(state: AppState) -> Router {
    api(Router::new()
        .route("/orders", routing::post(create_order))
        .route("/orders/{id}", routing::get(get_order)))
    .with_state(state)
}

async fn create_order(
    State(state): State<AppState>,
    ApiJson(order): ApiJson<CreateOrder>,
) -> Result<impl IntoResponse, ApiError> {
    let created = process_order(&state, order).await?;
    let location = format!("/orders/{}", created.order_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(created),
    ))
}

async fn get_order(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Order>, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::bad_request("Order id must be a UUID"))?;
    state
        .orders
        .get(&id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("No such order"))
}
