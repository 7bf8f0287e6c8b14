//! payment-service: charges an amount for an item, at most once per idempotency key, and
//! says what happened to a key (charged, refunded, or cancelled before any charge).
//!
//! # Layout
//! - [`api`]: request and response bodies, shared with callers.
//! - [`client`]: [`PaymentClient`], the typed client order-service uses.
//! - [`faults`]: [`faults::PaymentFaults`], the faults of the incident walkthrough.
//! - `handlers`: the routes.
//! - [`ledger`]: [`ledger::Ledger`], every key and its outcome, decided under one lock.

pub mod api;
pub mod client;
pub mod faults;
mod handlers;
pub mod ledger;

pub use client::PaymentClient;
pub use handlers::{admin_router, router};

/// Name and version as reported in `service.name` and `service.version`.
pub const SERVICE: service_kit::ServiceInfo = service_kit::ServiceInfo {
    name: "payment-service",
    version: env!("CARGO_PKG_VERSION"),
};

/// The default port.
pub const DEFAULT_PORT: u16 = 8003;

/// The service process: settings from the environment, then serve until SIGTERM/SIGINT or
/// until `stop` is cancelled. Returns the exit status (2 for a bad setting).
pub async fn run(stop: tokio_util::sync::CancellationToken) -> std::process::ExitCode {
    let faults = match service_kit::faults::Faults::<faults::PaymentFaults>::from_env() {
        Ok(faults) => faults,
        Err(e) => return service_kit::config_error(&SERVICE, &e),
    };
    let ledger = ledger::Ledger::default();
    let admin = Some(faults.admin_router().merge(admin_router(ledger.clone())));
    service_kit::serve::run_from_env(SERVICE, DEFAULT_PORT, router(ledger, faults), stop, admin)
        .await
}
