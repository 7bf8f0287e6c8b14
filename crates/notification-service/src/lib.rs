//! notification-service: tells the customer an order was created (here: logs it).
//!
//! order-service calls it fire-and-forget: it may be slow or down without an order failing.
//!
//! # Layout
//! - [`api`]: request and response bodies, shared with callers.
//! - [`client`]: [`NotificationClient`], the typed client order-service uses.
//! - [`faults`]: [`faults::NotificationFaults`], the faults of the incident walkthrough.
//! - `handlers`: the routes.

pub mod api;
pub mod client;
pub mod faults;
mod handlers;

pub use client::NotificationClient;
pub use handlers::router;

/// Name and version as reported in `service.name` and `service.version`.
pub const SERVICE: service_kit::ServiceInfo = service_kit::ServiceInfo {
    name: "notification-service",
    version: env!("CARGO_PKG_VERSION"),
};

/// The default port.
pub const DEFAULT_PORT: u16 = 8004;

/// The service process: settings from the environment, then serve until SIGTERM/SIGINT or
/// until `stop` is cancelled. Returns the exit status (2 for a bad setting).
pub async fn run(stop: tokio_util::sync::CancellationToken) -> std::process::ExitCode {
    let faults = match service_kit::faults::Faults::<faults::NotificationFaults>::from_env() {
        Ok(faults) => faults,
        Err(e) => return service_kit::config_error(&SERVICE, &e),
    };
    let admin = Some(faults.admin_router());
    service_kit::serve::run_from_env(SERVICE, DEFAULT_PORT, router(faults), stop, admin).await
}
