//! `bare-hops`: the floor under the benchmark's "no telemetry" figure. The same topology and
//! the same HTTP calls as a created order (order → inventory `GET /stock/{item}`, `POST
//! …/reserve` with the same simulated lookup, payment `POST /charges`, notification `POST
//! /notify`, inventory `POST …/confirm`), JSON bodies of the same shape, axum servers and a
//! reqwest client with timeouts on the services' runtime (`service_kit::runtime`: one thread
//! unless `TOKIO_WORKER_THREADS`), and nothing else: no telemetry, no metrics, no validation,
//! no idempotency records, no reservations or ledger.
//!
//! `bench` starts four of these (`bare-hops <role>`) exactly as it starts the services, so
//! the gap between this row and "no telemetry" is what the services do besides the hops.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use serde_json::{Value, json};

/// What one process plays.
#[derive(Clone, Copy)]
enum Role {
    Order,
    Inventory,
    Payment,
    Notification,
}

/// The order role's view of the other three.
#[derive(Clone)]
struct Downstream {
    http: reqwest::Client,
    inventory: String,
    payment: String,
    notification: String,
}

/// The real inventory's `slow_lookup` for up to 5 units: 20 ms plus up to 30 ms of jitter,
/// times `INVENTORY_LOOKUP_SCALE`.
#[derive(Clone, Copy)]
struct LookupScale(f64);

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// For the one line of a bad setting.
const BARE_HOPS: service_kit::ServiceInfo = service_kit::ServiceInfo {
    name: "bare-hops",
    version: env!("CARGO_PKG_VERSION"),
};

/// On the runtime the services run on (`service_kit::runtime`).
fn main() -> ExitCode {
    service_kit::runtime::block_on(&BARE_HOPS, serve_role())
}

async fn serve_role() -> ExitCode {
    let role = match std::env::args().nth(1).as_deref() {
        Some("order") => Role::Order,
        Some("inventory") => Role::Inventory,
        Some("payment") => Role::Payment,
        Some("notification") => Role::Notification,
        _ => {
            eprintln!("usage: bare-hops order|inventory|payment|notification");
            return ExitCode::from(2);
        }
    };
    let address = format!("{}:{}", env_or("HOST", "127.0.0.1"), env_or("PORT", "0"));
    let address: SocketAddr = match address.parse() {
        Ok(address) => address,
        Err(e) => {
            eprintln!("bare-hops: HOST/PORT {address:?}: {e}");
            return ExitCode::from(2);
        }
    };
    let scale = match env_or("INVENTORY_LOOKUP_SCALE", "1").parse::<f64>() {
        Ok(scale) if scale.is_finite() && scale >= 0.0 => LookupScale(scale),
        _ => {
            eprintln!("bare-hops: INVENTORY_LOOKUP_SCALE must be a number ≥ 0");
            return ExitCode::from(2);
        }
    };
    let router = match router(role, scale) {
        Ok(router) => router,
        Err(e) => {
            eprintln!("bare-hops: cannot build the HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("bare-hops: cannot listen on {address}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let stop = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! { _ = term.recv() => {}, _ = stop => {} }
            }
            Err(_) => stop.await,
        }
    };
    match axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare-hops: {e}");
            ExitCode::FAILURE
        }
    }
}

fn router(role: Role, scale: LookupScale) -> Result<Router, reqwest::Error> {
    Ok(match role {
        Role::Order => {
            let downstream = Downstream {
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .connect_timeout(Duration::from_secs(1))
                    .build()?,
                inventory: env_or("INVENTORY_SERVICE_URL", "http://127.0.0.1:8002"),
                payment: env_or("PAYMENT_SERVICE_URL", "http://127.0.0.1:8003"),
                notification: env_or("NOTIFICATION_SERVICE_URL", "http://127.0.0.1:8004"),
            };
            Router::new()
                .route("/orders", post(place_order))
                .with_state(downstream)
        }
        Role::Inventory => Router::new()
            .route("/stock/{item}", get(stock))
            .route("/stock/{item}/reserve", post(reserve))
            .route("/stock/{item}/confirm", post(confirm))
            .with_state(scale),
        Role::Payment => Router::new().route("/charges", post(charge)),
        Role::Notification => Router::new().route("/notify", post(notify)),
    }
    .route("/health", get(|| async { "ok" })))
}

/// The five calls of a created order, in the services' order; any failure is a 502.
async fn place_order(
    State(down): State<Downstream>,
    Json(order): Json<Value>,
) -> Result<(StatusCode, Json<Value>), StatusCode> {
    let item = order["item"].as_str().unwrap_or("widget").to_owned();
    let quantity = order["quantity"].as_i64().unwrap_or(1);
    let key = format!("{:032x}", fastrand::u128(..));
    let call = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
        let response = response
            .error_for_status()
            .map_err(|_| StatusCode::BAD_GATEWAY)?;
        response
            .json::<Value>()
            .await
            .map_err(|_| StatusCode::BAD_GATEWAY)
    };
    let inventory = &down.inventory;
    call(down.http.get(format!("{inventory}/stock/{item}"))).await?;
    let reserved = call(
        down.http
            .post(format!("{inventory}/stock/{item}/reserve"))
            .header("Idempotency-Key", &key)
            .json(&json!({ "quantity": quantity })),
    )
    .await?;
    let charge = call(
        down.http
            .post(format!("{}/charges", down.payment))
            .header("Idempotency-Key", &key)
            .json(&json!({ "order_id": key, "amount": 19.98, "amount_cents": 1998, "currency": "USD" })),
    )
    .await?;
    call(
        down.http
            .post(format!("{}/notify", down.notification))
            .json(&json!({ "order_id": key, "message": format!("order {key} placed") })),
    )
    .await?;
    call(
        down.http
            .post(format!("{inventory}/stock/{item}/confirm"))
            .json(&json!({ "reservation_id": reserved["reservation_id"] })),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "order_id": key, "status": "confirmed", "item": item, "quantity": quantity,
            "charge_id": charge["charge_id"],
        })),
    ))
}

async fn stock(Path(item): Path<String>) -> Json<Value> {
    Json(json!({ "item": item, "available": 100, "held": 0, "sold": 0 }))
}

async fn reserve(
    State(LookupScale(scale)): State<LookupScale>,
    Path(item): Path<String>,
    Json(request): Json<Value>,
) -> Json<Value> {
    let jitter = fastrand::f64() * 0.03;
    tokio::time::sleep(Duration::from_secs_f64((0.02 + jitter) * scale)).await;
    Json(json!({
        "reservation_id": format!("{:032x}", fastrand::u128(..)), "item": item,
        "quantity": request["quantity"], "status": "held", "expires_in_ms": 30000,
    }))
}

async fn confirm(Path(item): Path<String>, Json(request): Json<Value>) -> Json<Value> {
    Json(json!({ "reservation_id": request["reservation_id"], "item": item, "status": "sold" }))
}

async fn charge(Json(request): Json<Value>) -> Json<Value> {
    Json(json!({
        "charge_id": format!("{:032x}", fastrand::u128(..)), "order_id": request["order_id"],
        "amount_cents": request["amount_cents"], "status": "charged",
    }))
}

async fn notify(Json(request): Json<Value>) -> Json<Value> {
    Json(json!({ "order_id": request["order_id"], "status": "sent" }))
}
