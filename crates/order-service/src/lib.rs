//! order-service: `POST /orders` fans out to inventory, payment and notification, one span per
//! step, so the trace of an order shows where its time went.
//!
//! # Layout
//! - [`api`]: request and response bodies.
//! - [`settings`]: `PORT`, `HOST` and the URLs of the three services it calls.
//! - `error`: [`OrderError`], every way an order can fail, with its status code.
//! - `process`: the steps of an order (`process_order`, `validate_order`, `check_inventory`,
//!   `reserve_inventory`, `charge_payment`, `confirm_inventory`, `send_notification`) and
//!   the compensations that settle a call in doubt, release, or refund.
//! - [`money`]: prices read exactly, as integer cents.
//! - [`faults`]: [`faults::OrderFaults`], the injected panic between reserve and charge.
//! - [`orders`]: [`OrderBook`], the orders created, kept for `GET /orders/{id}`.
//! - `handlers`: the routes and [`AppState`].

pub mod api;
mod error;
pub mod faults;
mod handlers;
pub mod money;
pub mod orders;
mod process;
pub mod settings;

pub use error::OrderError;
pub use handlers::{AppState, router};
pub use orders::OrderBook;
pub use process::longest_order;
pub use settings::Settings;

/// Name and version as reported in `service.name` and `service.version`.
pub const SERVICE: service_kit::ServiceInfo = service_kit::ServiceInfo {
    name: "order-service",
    version: env!("CARGO_PKG_VERSION"),
};

/// The service process: settings from the environment, then serve until SIGTERM/SIGINT or
/// until `stop` is cancelled. Returns the exit status (2 for a bad setting).
pub async fn run(stop: tokio_util::sync::CancellationToken) -> std::process::ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => return service_kit::config_error(&SERVICE, &e),
    };
    let faults = match service_kit::faults::Faults::from_env() {
        Ok(faults) => faults,
        Err(e) => return service_kit::config_error(&SERVICE, &e),
    };
    let background = tokio_util::task::TaskTracker::new();
    let admin = Some(faults.admin_router());
    let state = match AppState::new(&settings, background.clone(), faults) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("{}: cannot build the HTTP client: {e}", SERVICE.name);
            return std::process::ExitCode::FAILURE;
        }
    };
    // An order in flight at SIGTERM finishes or is compensated before the process exits.
    let grace = service_kit::serve::Grace {
        drain: process::longest_order(settings.order_budget),
        background: settings::NOTIFICATION_TIMEOUT + std::time::Duration::from_millis(100),
    };
    service_kit::run(
        SERVICE,
        settings.listen,
        router(state),
        background,
        stop,
        admin,
        grace,
    )
    .await
}
