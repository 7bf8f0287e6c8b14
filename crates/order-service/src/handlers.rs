//! The routes of order-service and the state they share.

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing,
};
use inventory_service::InventoryClient;
use notification_service::NotificationClient;
use payment_service::PaymentClient;
use service_kit::{
    ApiError, ApiJson, ApiPath,
    app::api,
    idempotency::{Answer, Claim, IdempotencyStore},
};
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use utoipa::OpenApi;
use uuid::Uuid;

use crate::{
    OrderBook, Settings,
    api::{CreateOrder, Order, OrderCreated},
    process::process_order,
    settings::{DOWNSTREAM_TIMEOUT, NOTIFICATION_TIMEOUT},
};

/// How many idempotency keys are remembered, and for how long.
const IDEMPOTENCY_KEYS: usize = 10_000;
const IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

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
    /// `Idempotency-Key`s seen, with their answers.
    pub idempotency: IdempotencyStore,
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
            idempotency: IdempotencyStore::new(IDEMPOTENCY_KEYS, IDEMPOTENCY_TTL),
        })
    }
}

/// The OpenAPI description served on `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "order-service",
        description = "Places orders across inventory, payment and notification."
    ),
    paths(create_order, get_order)
)]
struct ApiDoc;

/// All routes, with the shared layers.
pub fn router(state: AppState) -> Router {
    api(
        Router::new()
            .route("/orders", routing::post(create_order))
            .route("/orders/{id}", routing::get(get_order)),
        ApiDoc::openapi(),
    )
    .with_state(state)
}

/// `POST /orders`. With an `Idempotency-Key`, a repeat (even a concurrent one) gets the first
/// request's answer, and the order is placed, reserved and charged once.
#[utoipa::path(post, path = "/orders", request_body = CreateOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeats with this key get the first answer")),
    responses((status = 201, body = OrderCreated), (status = 400, description = "Invalid request", body = service_kit::api_error::ErrorBody), (status = 404, description = "Unknown item or route", body = service_kit::api_error::ErrorBody), (status = 409, description = "Conflict", body = service_kit::api_error::ErrorBody), (status = 413, description = "Body too large", body = service_kit::api_error::ErrorBody), (status = 415, description = "Not JSON", body = service_kit::api_error::ErrorBody), (status = 422, description = "Missing or mistyped field", body = service_kit::api_error::ErrorBody), (status = 502, description = "A dependency failed", body = service_kit::api_error::ErrorBody), (status = 504, description = "Out of time", body = service_kit::api_error::ErrorBody)))]
async fn create_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(order): ApiJson<CreateOrder>,
) -> Response {
    let key = match IdempotencyStore::key_of(&headers) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    let Some(key) = key else {
        return respond(place(&state, order, None).await);
    };
    // f64 has no Hash: the request's JSON is its fingerprint.
    let fingerprint = serde_json::to_string(&order).unwrap_or_default();
    let wait = state.order_budget + NOTIFICATION_TIMEOUT;
    match state.idempotency.claim(&key, &fingerprint, wait).await {
        Err(e) => e.into_response(),
        Ok(Claim::Repeat(answer)) => {
            let mut response = respond(answer);
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            response
        }
        Ok(Claim::New(pending)) => {
            let answer = place(&state, order, Some(&key)).await;
            pending.finish(answer.clone());
            respond(answer)
        }
    }
}

/// Runs the order and turns its outcome into a storable answer. The order runs in a task of
/// its own, tracked for shutdown: if the client goes away mid-order, the request future is
/// dropped, but a reservation already made is still paid for or released.
async fn place(state: &AppState, order: CreateOrder, key: Option<&str>) -> Answer {
    let task_state = state.clone();
    let key = key.map(str::to_owned);
    let outcome = state
        .background
        .spawn(
            async move { process_order(&task_state, order, key.as_deref()).await }
                .in_current_span(),
        )
        .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::error!(error = %e, "order task failed");
            return Answer {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: serde_json::json!({ "error": "Internal error" }),
            };
        }
    };
    match outcome {
        Ok(created) => Answer {
            status: StatusCode::CREATED,
            body: serde_json::to_value(created).unwrap_or_default(),
        },
        Err(e) => {
            let status = e.status();
            Answer {
                status,
                body: serde_json::json!({ "error": e.to_string() }),
            }
        }
    }
}

fn respond(answer: Answer) -> Response {
    let location = (answer.status == StatusCode::CREATED)
        .then(|| {
            answer.body["order_id"]
                .as_str()
                .map(|id| format!("/orders/{id}"))
        })
        .flatten();
    let mut response = (answer.status, Json(answer.body)).into_response();
    if let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

#[utoipa::path(get, path = "/orders/{id}", params(("id" = String, Path, description = "The order id (a UUID)")),
    responses((status = 200, body = Order), (status = 400, description = "Invalid request", body = service_kit::api_error::ErrorBody), (status = 404, description = "Unknown item or route", body = service_kit::api_error::ErrorBody)))]
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
