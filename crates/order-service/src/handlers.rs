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
    faults::Faults,
    idempotency::{Answer, Claim, IdempotencyStore},
};
use tokio_util::task::TaskTracker;
use utoipa::OpenApi;
use uuid::Uuid;

use crate::{
    OrderBook, Settings,
    api::{CreateOrder, Order, OrderCreated},
    faults::OrderFaults,
    process::{longest_order, process_order},
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
    /// The injected faults.
    pub faults: Faults<OrderFaults>,
}

impl AppState {
    /// Clients for the services named in `settings`.
    pub fn new(
        settings: &Settings,
        background: TaskTracker,
        faults: Faults<OrderFaults>,
    ) -> Result<Self, reqwest::Error> {
        let http = telemetry::http_client(DOWNSTREAM_TIMEOUT)?;
        let notify_http = telemetry::http_client(NOTIFICATION_TIMEOUT)?;
        Ok(Self {
            // Each call's own limit; within an order, what is left of its budget if shorter.
            inventory: InventoryClient::new(settings.inventory_url.clone(), http.clone())
                .limited(DOWNSTREAM_TIMEOUT),
            payment: PaymentClient::new(settings.payment_url.clone(), http)
                .limited(DOWNSTREAM_TIMEOUT),
            notification: NotificationClient::new(settings.notification_url.clone(), notify_http),
            orders: OrderBook::default(),
            background,
            order_budget: settings.order_budget,
            idempotency: IdempotencyStore::new(IDEMPOTENCY_KEYS, IDEMPOTENCY_TTL),
            faults,
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
    responses((status = 201, body = OrderCreated), (status = 400, description = "Invalid request", body = service_kit::api_error::ErrorBody), (status = 404, description = "Unknown item or route", body = service_kit::api_error::ErrorBody), (status = 409, description = "Conflict", body = service_kit::api_error::ErrorBody), (status = 408, description = "Body stopped arriving", body = service_kit::api_error::ErrorBody), (status = 413, description = "Body too large", body = service_kit::api_error::ErrorBody), (status = 415, description = "Not JSON", body = service_kit::api_error::ErrorBody), (status = 422, description = "Missing or mistyped field", body = service_kit::api_error::ErrorBody), (status = 502, description = "A dependency failed", body = service_kit::api_error::ErrorBody), (status = 504, description = "Out of time", body = service_kit::api_error::ErrorBody)))]
async fn create_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(order): ApiJson<CreateOrder>,
) -> Response {
    let key = match IdempotencyStore::key_of(&headers) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    // The whole order, its idempotency claim included, runs in a task of its own, tracked for
    // shutdown: a client that goes away drops only this wait, never the order nor its claim,
    // so a retry with the same key waits for the order still running instead of placing a
    // second one.
    let task_state = state.clone();
    let outcome = state
        .background
        .spawn(telemetry::in_current_trace(async move {
            run_order(&task_state, order, key).await
        }))
        .await;
    match outcome {
        Ok((answer, replayed)) => {
            let mut response = respond(answer);
            if replayed {
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            response
        }
        Err(e) => {
            // A panic: its claim was dropped unfinished, so a retry may place the order anew;
            // its reservation, if any, expires by itself.
            tracing::error!(error = %e, "order task failed");
            respond(Answer {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: serde_json::json!({ "error": "Internal error" }),
            })
        }
    }
}

/// Places the order, or with `key`, answers as the first request with that key did (waiting
/// for it if it is still running). Returns the answer and whether it is a replay.
async fn run_order(state: &AppState, order: CreateOrder, key: Option<String>) -> (Answer, bool) {
    let Some(key) = key else {
        return (place(state, order).await, false);
    };
    let wait = longest_order(state.order_budget) + NOTIFICATION_TIMEOUT;
    match state.idempotency.claim(&key, &order, wait).await {
        Err(e) => (
            Answer {
                status: e.status,
                body: serde_json::json!({ "error": e.message }),
            },
            false,
        ),
        Ok(Claim::Repeat(answer)) => (answer, true),
        Ok(Claim::New(pending)) => {
            let answer = place(state, order).await;
            pending.finish(answer.clone());
            (answer, false)
        }
    }
}

/// Runs a new order (with a new id) and turns its outcome into a storable answer.
async fn place(state: &AppState, order: CreateOrder) -> Answer {
    match process_order(state, order, service_kit::id::new_id()).await {
        Ok(created) => Answer {
            status: StatusCode::CREATED,
            body: serde_json::to_value(created).unwrap_or_default(),
        },
        Err(e) => Answer {
            status: e.status(),
            body: serde_json::json!({ "error": e.to_string() }),
        },
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
