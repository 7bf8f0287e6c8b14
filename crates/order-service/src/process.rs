//! The steps of an order, each its own span, in the order SPEC §1 gives.

use std::sync::LazyLock;

use inventory_service::InventoryClient;
use notification_service::api::NotifyRequest;
use payment_service::api::{Charge, ChargeRequest};
use service_kit::item::validate_item;
use tracing::{Instrument, Span, field::Empty};
use uuid::Uuid;

use crate::{
    AppState, OrderError,
    api::{CreateOrder, Order, OrderCreated},
};

/// `orders_total{outcome}`: created, rejected (the caller's mistake) or failed (the system's).
static ORDERS: LazyLock<telemetry::CounterVec> =
    LazyLock::new(|| telemetry::counter("orders", "Orders by outcome", &["outcome"]));

/// Runs an order from validation to notification. The notification is started, not awaited.
#[tracing::instrument(
    name = "process_order",
    skip_all,
    fields(order.item = %order.item, order.quantity = order.quantity, order.id = Empty)
)]
pub async fn process_order(
    state: &AppState,
    order: CreateOrder,
) -> Result<OrderCreated, OrderError> {
    let placed = place_order(state, &order).await;
    match &placed {
        Ok(created) => {
            ORDERS.inc(&["created"]);
            tracing::info!(order.id = created.order_id, "order created");
        }
        Err(e) if e.is_system_failure() => {
            ORDERS.inc(&["failed"]);
            telemetry::record_error(&Span::current(), e);
            tracing::error!(error = %error_chain(e), "order failed");
        }
        Err(e) => {
            ORDERS.inc(&["rejected"]);
            tracing::info!(reason = %e, "order rejected");
        }
    }
    placed
}

async fn place_order(state: &AppState, order: &CreateOrder) -> Result<OrderCreated, OrderError> {
    validate_order(order)?;
    check_inventory(&state.inventory, &order.item, order.quantity).await?;
    reserve_inventory(&state.inventory, &order.item, order.quantity).await?;
    let charge = charge_payment(state, order).await?;

    let id = Uuid::new_v4();
    Span::current().record("order.id", id.to_string());
    state.orders.insert(
        id,
        Order {
            order_id: id.to_string(),
            item: order.item.clone(),
            quantity: order.quantity,
            price: order.price,
            amount: charge.amount,
            charge_id: charge.charge_id,
            status: "created".to_owned(),
        },
    );
    send_notification(state, id, &order.item);
    Ok(OrderCreated {
        order_id: id.to_string(),
        status: "created".to_owned(),
    })
}

#[tracing::instrument(name = "validate_order", skip_all)]
fn validate_order(order: &CreateOrder) -> Result<(), OrderError> {
    validate_item(&order.item)?;
    if order.quantity <= 0 {
        return Err(OrderError::Invalid("Quantity must be positive".into()));
    }
    if !(order.price.is_finite() && order.price >= 0.0) {
        return Err(OrderError::Invalid("Price must be non-negative".into()));
    }
    Ok(())
}

#[tracing::instrument(name = "check_inventory", skip(inventory))]
async fn check_inventory(
    inventory: &InventoryClient,
    item: &str,
    quantity: i64,
) -> Result<(), OrderError> {
    let level = inventory
        .stock(item)
        .await
        .map_err(|e| match e.status().map(|s| s.as_u16()) {
            Some(404) => OrderError::UnknownItem(item.to_owned()),
            _ => OrderError::InventoryCheckFailed(e),
        })
        .inspect_err(mark_step_failed)?;
    if u64::try_from(quantity).map_or(true, |q| level.available < q) {
        return Err(OrderError::InsufficientStock);
    }
    Ok(())
}

#[tracing::instrument(name = "reserve_inventory", skip(inventory))]
async fn reserve_inventory(
    inventory: &InventoryClient,
    item: &str,
    quantity: i64,
) -> Result<(), OrderError> {
    inventory
        .reserve(item, quantity)
        .await
        .map(drop)
        .map_err(|e| match e.status().map(|s| s.as_u16()) {
            // Someone else took the stock between the check and the reservation.
            Some(409) => OrderError::InsufficientStock,
            Some(404) => OrderError::UnknownItem(item.to_owned()),
            _ => OrderError::InventoryReserveFailed(e),
        })
        .inspect_err(mark_step_failed)
}

#[tracing::instrument(name = "charge_payment", skip_all, fields(payment.amount = Empty))]
async fn charge_payment(state: &AppState, order: &CreateOrder) -> Result<Charge, OrderError> {
    let amount = order.price * order.quantity as f64;
    Span::current().record("payment.amount", amount);
    let request = ChargeRequest {
        item: order.item.clone(),
        amount,
    };
    state
        .payment
        .charge(&request)
        .await
        .map_err(OrderError::PaymentFailed)
        .inspect_err(mark_step_failed)
}

/// Starts the notification and returns at once: it may take up to its 0.5 s timeout, and its
/// failure is logged and traced but never fails the order. The task is instrumented with its
/// own span, created here inside `process_order`, so it stays in the order's trace even though
/// it runs after the response has gone (a bare `tokio::spawn` would lose the span). It is
/// tracked so that a shutdown waits for it before flushing spans.
fn send_notification(state: &AppState, order_id: Uuid, item: &str) {
    let span = tracing::info_span!("send_notification", order.id = %order_id);
    let notification = state.notification.clone();
    let request = NotifyRequest {
        order_id: order_id.to_string(),
        item: item.to_owned(),
    };
    state.background.spawn(
        async move {
            if let Err(e) = notification.notify(&request).await {
                telemetry::record_error(&Span::current(), &e);
                tracing::warn!(error = %e, "notification failed; the order stands");
            }
        }
        .instrument(span),
    );
}

/// Marks the current step's span ERROR when the failure is the system's, not the caller's.
fn mark_step_failed(error: &OrderError) {
    if error.is_system_failure() {
        telemetry::record_error(&Span::current(), error);
    }
}

fn error_chain(error: &OrderError) -> String {
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}
