//! The steps of an order, each its own span, in the order SPEC §1 gives, and the
//! compensations that make an order end in exactly one of two states: **created** (its units
//! reserved and confirmed, charged once) or **failed** (its units released, nothing charged, or
//! the charge refunded).
//!
//! Every downstream call either has a definite answer or is in doubt (a timeout, a broken
//! connection, a 5xx): the call may have happened. A call in doubt is settled before the order
//! decides, with the idempotency key the call carried, which is the order's id: a repeated
//! reservation returns the same reservation, and a charge in doubt is settled by payment
//! itself, which answers the charge it made or cancels the key so that none is ever made.
//! Settling, confirming, releasing and refunding have their own short time, not the order's
//! (which may be spent): money and stock come before the 3 s budget.

use std::{future::Future, sync::LazyLock, time::Duration};

use axum::http::StatusCode;
use inventory_service::{InventoryClient, api::Reservation};
use notification_service::api::NotifyRequest;
use payment_service::api::{Charge, ChargeRequest, ChargeState};
use service_kit::{Deadline, DownstreamError, deadline::retry_idempotent, item::validate_item};
use tracing::{Instrument, Span, field::Empty};
use uuid::Uuid;

use crate::{
    AppState, OrderError,
    api::{CreateOrder, Order, OrderCreated},
    money::{MAX_CENTS, cents_signed, cents_to_number},
};

/// `orders_total{outcome}`: created, rejected (the caller's mistake) or failed (the system's).
static ORDERS: LazyLock<telemetry::CounterVec> =
    LazyLock::new(|| telemetry::counter("orders", "Orders by outcome", &["outcome"]));

/// The time limit of each attempt at settling a call in doubt, confirming, releasing or
/// refunding: doubling, so that a dependency that answers, only slowly, is still heard. They
/// replace the calls' own 2 s limit.
const SETTLE_TIMEOUTS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Pause before the n-th retry of a settling call.
fn settle_pause(retry: u32) -> Duration {
    Duration::from_millis(100 * u64::from(retry))
}

/// The most one settling step takes: every attempt timing out, and the pauses between them.
fn longest_settle() -> Duration {
    let pauses = (1..SETTLE_TIMEOUTS.len() as u32)
        .map(settle_pause)
        .sum::<Duration>();
    SETTLE_TIMEOUTS.iter().sum::<Duration>() + pauses
}

/// The most an order can take: its budget, then at most four settling steps (a charge in
/// doubt, the confirmation, the refund and the release). Shutdown waits this long for
/// orders in flight.
pub fn longest_order(budget: Duration) -> Duration {
    budget + longest_settle() * 4
}

/// How long a charge whose outcome could not be learnt keeps being asked about, in the
/// background, until it is known and, if it was made, refunded.
const RECONCILE_FOR: Duration = Duration::from_secs(60);

/// Runs an order from validation to notification. The notification is started, not awaited.
#[tracing::instrument(
    name = "process_order",
    skip_all,
    fields(order.item = Empty, order.quantity = order.quantity, order.id = %id)
)]
pub async fn process_order(
    state: &AppState,
    order: CreateOrder,
    id: Uuid,
) -> Result<OrderCreated, OrderError> {
    let placed = place_order(state, &order, id).await;
    match &placed {
        Ok(_) => {
            ORDERS.inc(&["created"]);
            tracing::info!(order.id = %id, "order created");
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
    id: Uuid,
) -> Result<OrderCreated, OrderError> {
    let deadline = Deadline::after(state.order_budget);
    let amount_cents = validate_order(order)?;
    // Recorded once valid: a rejected 16 KiB name is stored nowhere.
    Span::current().record("order.item", order.item.as_str());
    check_inventory(&state.inventory, &order.item, order.quantity, deadline).await?;
    // The order's id keys every call that must not happen twice.
    let key = format!("order:{id}");
    let reservation = reserve_inventory(
        &state.inventory,
        &order.item,
        order.quantity,
        &key,
        deadline,
    )
    .await?;
    if state.faults.current().panic_after_reserve {
        // The injected fault: the order's task dies holding a reservation, which must expire.
        panic!("injected fault: order {id} panicked between reserve and charge");
    }
    let charge = match charge_payment(state, &order.item, amount_cents, &key, deadline).await {
        Ok(charge) => charge,
        Err(failed) => {
            // The units are reserved but will not be paid for: give them back.
            release_inventory(&state.inventory, &order.item, &reservation.reservation_id).await;
            return Err(failed);
        }
    };
    if let Err(failed) =
        confirm_inventory(&state.inventory, &order.item, &reservation.reservation_id).await
    {
        // Paid for, but the units are not ours any more: the money goes back.
        refund_payment(state, &key).await;
        release_inventory(&state.inventory, &order.item, &reservation.reservation_id).await;
        return Err(failed);
    }

    state.orders.insert(
        id,
        Order {
            order_id: id.to_string(),
            item: order.item.clone(),
            quantity: order.quantity,
            price: cents_to_number(order.price.cents().unwrap_or_default()),
            amount: cents_to_number(charge.amount_cents),
            amount_cents: charge.amount_cents,
            charge_id: charge.charge_id,
            reservation_id: reservation.reservation_id,
            status: "created".to_owned(),
        },
    );
    send_notification(state, id, &order.item);
    Ok(OrderCreated {
        order_id: id.to_string(),
        status: "created".to_owned(),
    })
}

/// Checks the order; returns its amount in cents.
#[tracing::instrument(name = "validate_order", skip_all)]
fn validate_order(order: &CreateOrder) -> Result<u64, OrderError> {
    validate_item(&order.item)?;
    if order.quantity <= 0 {
        return Err(OrderError::Invalid("Quantity must be positive".into()));
    }
    let unit = order
        .price
        .cents()
        .map_err(|e| OrderError::Invalid(e.to_string()))?;
    // price × quantity can overflow even when both are valid; it is the caller's number.
    unit.checked_mul(order.quantity.unsigned_abs())
        .filter(|cents| *cents <= MAX_CENTS)
        .ok_or_else(|| OrderError::Invalid("Amount (price × quantity) is too large".into()))
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

/// Whether a failed call may still have happened: no answer (unless the connection was
/// refused: then nothing was sent), or a 5xx other than 503. A 4xx is a refusal, and so is a
/// 503, the service saying it did not take the request on (payment's refusal).
fn in_doubt(error: &DownstreamError) -> bool {
    match error.status() {
        Some(status) => status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE,
        None => !error.never_sent(),
    }
}

/// Reserves the units under the order's key. A reservation in doubt is settled by repeating it
/// with the same key: what the first call made, if it made anything, is given back.
#[tracing::instrument(
    name = "reserve_inventory",
    skip(inventory, key, deadline),
    fields(inventory.reservation_id = Empty)
)]
async fn reserve_inventory(
    inventory: &InventoryClient,
    item: &str,
    quantity: i64,
    key: &str,
    deadline: Deadline,
) -> Result<Reservation, OrderError> {
    let timeout = deadline
        .for_call("inventory-service")
        .map_err(|e| OrderError::TimedOut("Inventory reserve", e))?;
    let refused = |e: DownstreamError| match e.status().map(|s| s.as_u16()) {
        // Someone else took the stock between the check and the reservation.
        Some(409) => OrderError::InsufficientStock,
        Some(404) => OrderError::UnknownItem(item.to_owned()),
        _ => OrderError::from_call("Inventory reserve", e, OrderError::InventoryReserveFailed),
    };
    match inventory.within(timeout).reserve(item, quantity, key).await {
        Ok(reservation) => {
            Span::current().record(
                "inventory.reservation_id",
                reservation.reservation_id.as_str(),
            );
            Ok(reservation)
        }
        Err(e) if in_doubt(&e) => {
            let failed = refused(e);
            mark_step_failed(&failed);
            settle_reservation(inventory, item, quantity, key).await;
            Err(failed)
        }
        Err(e) => Err(refused(e)).inspect_err(mark_step_failed),
    }
}

/// A reservation whose answer was lost: the same call with the same key returns it if it
/// was made, and it is released. If inventory cannot be reached, it expires by itself.
#[tracing::instrument(name = "settle_reservation", skip(inventory, key), fields(inventory.outcome = Empty))]
async fn settle_reservation(inventory: &InventoryClient, item: &str, quantity: i64, key: &str) {
    let outcome = settle(|limit| {
        let client = inventory.clone().limited(limit);
        async move { client.reserve(item, quantity, key).await }
    })
    .await;
    let span = Span::current();
    match outcome {
        Ok(reservation) => {
            span.record("inventory.outcome", "reserved");
            release_inventory(inventory, item, &reservation.reservation_id).await;
        }
        Err(e) if !in_doubt(&e) => {
            span.record("inventory.outcome", "not reserved");
        }
        Err(e) => {
            span.record("inventory.outcome", "unknown");
            telemetry::record_error(&span, &e);
            tracing::warn!(item, key, error = %e, "reservation in doubt: it expires by itself if it was made");
        }
    }
}

/// Gives back the units of a reservation that will not be paid for (idempotent, retried).
/// If it keeps failing, the reservation expires by itself.
#[tracing::instrument(name = "release_inventory", skip(inventory))]
async fn release_inventory(inventory: &InventoryClient, item: &str, reservation_id: &str) {
    match settle(|limit| {
        let client = inventory.clone().limited(limit);
        async move { client.release(item, reservation_id).await }
    })
    .await
    {
        Ok(_) => tracing::info!(item, reservation_id, "reservation released"),
        Err(e) => {
            telemetry::record_error(&Span::current(), &e);
            tracing::error!(
                item,
                reservation_id,
                error = %e,
                "reservation NOT released: it returns when it expires"
            );
        }
    }
}

/// Charges under the order's key. A charge in doubt is settled by payment-service before the
/// order decides: charged (the order goes on, late or not) or cancelled (never charged).
#[tracing::instrument(
    name = "charge_payment",
    skip(state, amount_cents, key, deadline),
    fields(payment.amount_cents = cents_signed(amount_cents), payment.key = key)
)]
async fn charge_payment(
    state: &AppState,
    item: &str,
    amount_cents: u64,
    key: &str,
    deadline: Deadline,
) -> Result<Charge, OrderError> {
    let timeout = deadline
        .for_call("payment-service")
        .map_err(|e| OrderError::TimedOut("Payment", e))?;
    let request = ChargeRequest {
        item: item.to_owned(),
        amount_cents: cents_signed(amount_cents),
    };
    let error = match state.payment.within(timeout).charge(&request, key).await {
        Ok(charge) => return Ok(charge),
        Err(e) => e,
    };
    let failed = OrderError::from_call("Payment", error, OrderError::PaymentFailed);
    let doubt = match &failed {
        OrderError::TimedOut(_, e) | OrderError::PaymentFailed(e) => in_doubt(e),
        _ => false,
    };
    if !doubt {
        return Err(failed).inspect_err(mark_step_failed);
    }
    match settle_charge(state, key).await {
        Ok(Some(charge)) => Ok(charge),
        Ok(None) => Err(failed).inspect_err(mark_step_failed),
        Err(unknown) => {
            // The order fails (its units are released); the charge, if it was made, is found
            // and refunded in the background as soon as payment answers.
            reconcile_charge(state, key);
            Err(OrderError::PaymentUnresolved(unknown)).inspect_err(mark_step_failed)
        }
    }
}

/// Asks payment-service to settle a charge in doubt: `Some(charge)` if it was made, `None`
/// if the key is now cancelled (and can never be charged).
#[tracing::instrument(name = "settle_charge", skip(state), fields(payment.outcome = Empty))]
async fn settle_charge(state: &AppState, key: &str) -> Result<Option<Charge>, DownstreamError> {
    let span = Span::current();
    match settle(|limit| {
        let client = state.payment.clone().limited(limit);
        async move { client.settle(key).await }
    })
    .await
    {
        Ok(record) => {
            let outcome = outcome_name(record.state);
            span.record("payment.outcome", outcome);
            tracing::info!(key, outcome, "charge in doubt settled");
            Ok(record
                .charge
                .filter(|_| record.state == ChargeState::Charged))
        }
        Err(e) => {
            span.record("payment.outcome", "unknown");
            telemetry::record_error(&span, &e);
            tracing::error!(key, error = %e, "charge in doubt not settled yet: reconciling in the background");
            Err(e)
        }
    }
}

fn outcome_name(state: ChargeState) -> &'static str {
    match state {
        ChargeState::Charged => "charged",
        ChargeState::Refunded => "refunded",
        ChargeState::Cancelled => "cancelled",
    }
}

/// For a failed order whose charge could not be settled: keeps asking payment (every 2 s, for
/// [`RECONCILE_FOR`]) until the key is settled, and refunds the charge if one was made. Runs
/// after the answer, tracked for shutdown, in a trace of its own linked to the order's: as a
/// child it would hold the order's spans open (a span ends only when its children have), and
/// they would not be exported until it ended.
fn reconcile_charge(state: &AppState, key: &str) {
    let span = tracing::info_span!(parent: None, "reconcile_charge", payment.key = key, payment.outcome = Empty);
    span.follows_from(Span::current());
    let task_state = state.clone();
    let key = key.to_owned();
    state.background.spawn(
        async move {
            let started = tokio::time::Instant::now();
            while started.elapsed() < RECONCILE_FOR {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let Ok(record) = task_state
                    .payment
                    .within(Duration::from_secs(5))
                    .settle(&key)
                    .await
                else {
                    continue;
                };
                Span::current().record("payment.outcome", outcome_name(record.state));
                if record.state == ChargeState::Charged {
                    refund_payment(&task_state, &key).await;
                }
                return;
            }
            let span = Span::current();
            span.record("payment.outcome", "unknown");
            telemetry::record_failure(&span, "charge outcome still unknown");
            tracing::error!(
                key,
                "charge still unknown after {RECONCILE_FOR:?}: reconcile this key by hand"
            );
        }
        .instrument(span),
    );
}

/// Sells the reserved units (idempotent, retried). Refused if the reservation has ended
/// (expired while payment was slow, say).
#[tracing::instrument(name = "confirm_inventory", skip(inventory))]
async fn confirm_inventory(
    inventory: &InventoryClient,
    item: &str,
    reservation_id: &str,
) -> Result<(), OrderError> {
    settle(|limit| {
        let client = inventory.clone().limited(limit);
        async move { client.confirm(item, reservation_id).await }
    })
    .await
    .map(drop)
    .map_err(OrderError::ConfirmFailed)
    .inspect_err(mark_step_failed)
}

/// Gives the money of a charge back (idempotent, retried).
#[tracing::instrument(name = "refund_payment", skip(state), fields(payment.key = key))]
async fn refund_payment(state: &AppState, key: &str) {
    match settle(|limit| {
        let client = state.payment.clone().limited(limit);
        async move { client.refund(key).await }
    })
    .await
    {
        Ok(_) => tracing::warn!(key, "charge refunded: the order could not be completed"),
        Err(e) => {
            telemetry::record_error(&Span::current(), &e);
            tracing::error!(key, error = %e, "charge NOT refunded: reconcile this key by hand");
        }
    }
}

/// Repeats an idempotent `call` (given its time limit, from [`SETTLE_TIMEOUTS`]) while its
/// failure is in doubt or may pass (a refused connection: the service restarting).
async fn settle<T, F, Fut>(call: F) -> Result<T, DownstreamError>
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Result<T, DownstreamError>>,
{
    let mut retry = 0;
    loop {
        let limit = SETTLE_TIMEOUTS[retry as usize];
        match call(limit).await {
            Err(e)
                if (retry as usize) + 1 < SETTLE_TIMEOUTS.len()
                    && (in_doubt(&e) || e.is_transient()) =>
            {
                retry += 1;
                tracing::warn!(attempt = retry, error = %e, "retrying an idempotent call");
                tokio::time::sleep(settle_pause(retry)).await;
            }
            other => return other,
        }
    }
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
    use crate::money::Price;

    fn order(item: &str, quantity: i64, price: &str) -> CreateOrder {
        CreateOrder {
            item: item.to_owned(),
            quantity,
            price: Price::new(price),
        }
    }

    fn message(result: Result<u64, OrderError>) -> Option<String> {
        result.err().map(|e| e.to_string())
    }

    #[test]
    fn the_amount_is_exact_in_cents() {
        assert_eq!(validate_order(&order("pen", 3, "0.1")).ok(), Some(30));
        assert_eq!(validate_order(&order("book", 2, "9.99")).ok(), Some(1998));
        assert_eq!(
            message(validate_order(&order("book", 2, "9.999"))),
            Some("Price must have at most two decimals".into())
        );
        assert_eq!(
            message(validate_order(&order("book", i64::MAX, "9.99"))),
            Some("Amount (price × quantity) is too large".into())
        );
    }

    proptest! {
        #[test]
        fn valid_orders_pass(item in "[A-Za-z0-9_-]{1,64}", quantity in 1i64..1_000_000, cents in 0u64..100_000_000) {
            let price = crate::money::cents_text(cents);
            prop_assert_eq!(validate_order(&order(&item, quantity, &price)).ok(), Some(cents * quantity as u64));
        }

        #[test]
        fn quantity_below_one_is_refused_whatever_the_price(quantity in ..=0i64, price in "-?[0-9]{1,5}(\\.[0-9]{1,4})?") {
            prop_assert_eq!(message(validate_order(&order("book", quantity, &price))), Some("Quantity must be positive".into()));
        }

        #[test]
        fn negative_prices_are_refused(quantity in 1i64.., cents in 1u64..1_000_000_000) {
            let price = format!("-{}", crate::money::cents_text(cents));
            prop_assert_eq!(message(validate_order(&order("book", quantity, &price))), Some("Price must be non-negative".into()));
        }

        #[test]
        fn every_failure_of_validation_is_a_400(item in ".{0,80}", quantity in any::<i64>(), price in "-?[0-9]{1,25}(\\.[0-9]{1,5})?(e-?[0-9]{1,3})?") {
            if let Err(e) = validate_order(&order(&item, quantity, &price)) {
                prop_assert_eq!(e.status().as_u16(), 400);
                prop_assert!(!e.is_system_failure());
            }
        }
    }
}
