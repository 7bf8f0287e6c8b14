//! The steps of an order, each its own span, in the order SPEC §1 gives.

use std::{sync::LazyLock, time::Duration};

use inventory_service::InventoryClient;
use notification_service::api::NotifyRequest;
use payment_service::api::{Charge, ChargeRequest};
use service_kit::{Deadline, deadline::retry_idempotent, item::validate_item};
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
    idempotency_key: Option<&str>,
) -> Result<OrderCreated, OrderError> {
    let placed = place_order(state, &order, idempotency_key).await;
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

async fn place_order(
    state: &AppState,
    order: &CreateOrder,
    idempotency_key: Option<&str>,
) -> Result<OrderCreated, OrderError> {
    let deadline = Deadline::after(state.order_budget);
    validate_order(order)?;
    check_inventory(&state.inventory, &order.item, order.quantity, deadline).await?;
    reserve_inventory(&state.inventory, &order.item, order.quantity, deadline).await?;
    // The charge's own key: the order's, so that a retried order is never charged twice.
    let charge_key =
        idempotency_key.map_or_else(|| Uuid::new_v4().to_string(), |k| format!("order:{k}"));
    let charge = match charge_payment(state, order, &charge_key, deadline).await {
        Ok(charge) => charge,
        Err(failed) => {
            // The units are reserved but will not be paid for: give them back.
            release_inventory(&state.inventory, &order.item, order.quantity).await;
            return Err(failed);
        }
    };

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
    // price × quantity can overflow f64 even when both are valid; it is the caller's number.
    if !(order.price * order.quantity as f64).is_finite() {
        return Err(OrderError::Invalid(
            "Amount (price × quantity) is too large".into(),
        ));
    }
    Ok(())
}

/// Reading stock is idempotent: it is retried on a transient failure, within the budget.
#[tracing::instrument(name = "check_inventory", skip(inventory, deadline))]
async fn check_inventory(
    inventory: &InventoryClient,
    item: &str,
    quantity: i64,
    deadline: Deadline,
) -> Result<(), OrderError> {
    let level = retry_idempotent("inventory-service", deadline, |left| {
        let inventory = inventory.within(left);
        async move { inventory.stock(item).await }
    })
    .await
    .map_err(|e| match e.status().map(|s| s.as_u16()) {
        Some(404) => OrderError::UnknownItem(item.to_owned()),
        _ => OrderError::from_call("Inventory check", e, OrderError::InventoryCheckFailed),
    })
    .inspect_err(mark_step_failed)?;
    if u64::try_from(quantity).map_or(true, |q| level.available < q) {
        return Err(OrderError::InsufficientStock);
    }
    Ok(())
}

/// A reservation is not idempotent: it is made once, never retried.
#[tracing::instrument(name = "reserve_inventory", skip(inventory, deadline))]
async fn reserve_inventory(
    inventory: &InventoryClient,
    item: &str,
    quantity: i64,
    deadline: Deadline,
) -> Result<(), OrderError> {
    let timeout = deadline
        .for_call("inventory-service")
        .map_err(|e| OrderError::TimedOut("Inventory reserve", e))?;
    inventory
        .within(timeout)
        .reserve(item, quantity)
        .await
        .map(drop)
        .map_err(|e| match e.status().map(|s| s.as_u16()) {
            // Someone else took the stock between the check and the reservation.
            Some(409) => OrderError::InsufficientStock,
            Some(404) => OrderError::UnknownItem(item.to_owned()),
            _ => OrderError::from_call("Inventory reserve", e, OrderError::InventoryReserveFailed),
        })
        .inspect_err(mark_step_failed)
}

/// How many times a release is tried before it is left to a human.
const RELEASE_ATTEMPTS: u32 = 3;

/// Compensation: gives back units reserved for an order that will not be paid. It has its own
/// time (not the order's, which may be spent); a release that keeps failing is logged at ERROR
/// with the order's trace id, so the stock can be reconciled by hand.
#[tracing::instrument(name = "release_inventory", skip(inventory))]
async fn release_inventory(inventory: &InventoryClient, item: &str, quantity: i64) {
    let inventory = inventory.within(Duration::from_secs(1));
    for attempt in 1..=RELEASE_ATTEMPTS {
        match inventory.release(item, quantity).await {
            Ok(_) => {
                tracing::info!(
                    item,
                    quantity,
                    "reservation released after a failed payment"
                );
                return;
            }
            Err(e) if attempt < RELEASE_ATTEMPTS && e.is_transient() => {
                tracing::warn!(attempt, error = %e, "release failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            Err(e) => {
                telemetry::record_error(&Span::current(), &e);
                tracing::error!(
                    item,
                    quantity,
                    error = %e,
                    "stock NOT released after a failed payment: reconcile by hand"
                );
                return;
            }
        }
    }
}

#[tracing::instrument(name = "charge_payment", skip_all, fields(payment.amount = Empty))]
async fn charge_payment(
    state: &AppState,
    order: &CreateOrder,
    key: &str,
    deadline: Deadline,
) -> Result<Charge, OrderError> {
    let timeout = deadline
        .for_call("payment-service")
        .map_err(|e| OrderError::TimedOut("Payment", e))?;
    let amount = order.price * order.quantity as f64;
    Span::current().record("payment.amount", amount);
    let request = ChargeRequest {
        item: order.item.clone(),
        amount,
    };
    state
        .payment
        .within(timeout)
        .charge(&request, key)
        .await
        .map_err(|e| OrderError::from_call("Payment", e, OrderError::PaymentFailed))
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn order(item: &str, quantity: i64, price: f64) -> CreateOrder {
        CreateOrder {
            item: item.to_owned(),
            quantity,
            price,
        }
    }

    fn message(result: Result<(), OrderError>) -> Option<String> {
        result.err().map(|e| e.to_string())
    }

    proptest! {
        #[test]
        fn valid_orders_pass(item in "[A-Za-z0-9_-]{1,64}", quantity in 1i64.., price in 0.0f64..1e12) {
            prop_assert!(validate_order(&order(&item, quantity, price)).is_ok());
        }

        #[test]
        fn quantity_below_one_is_refused_whatever_the_price(quantity in ..=0i64, price in any::<f64>()) {
            prop_assert_eq!(message(validate_order(&order("book", quantity, price))), Some("Quantity must be positive".into()));
        }

        #[test]
        fn negative_or_non_finite_prices_are_refused(
            quantity in 1i64..,
            price in prop_oneof![f64::MIN..-f64::MIN_POSITIVE, Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)],
        ) {
            prop_assert_eq!(message(validate_order(&order("book", quantity, price))), Some("Price must be non-negative".into()));
        }

        #[test]
        fn every_failure_of_validation_is_a_400(item in ".{0,80}", quantity in any::<i64>(), price in any::<f64>()) {
            if let Err(e) = validate_order(&order(&item, quantity, price)) {
                prop_assert_eq!(e.status().as_u16(), 400);
                prop_assert!(!e.is_system_failure());
            }
        }
    }
}
