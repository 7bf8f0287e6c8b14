//! inventory-service: how many units of each item are left, and reservations against them.
//!
//! `POST /stock/{item}/reserve` runs the `reserve_stock` span with its child `slow_lookup`, the
//! defect planted for the demo: a lookup that takes 0.27 s for quantities above 5, so that in a
//! quantity-8 order it is the widest bar of the trace.
//!
//! # Layout
//! - [`api`]: request and response bodies, shared with callers.
//! - [`client`]: [`InventoryClient`], the typed client order-service uses.
//! - `handlers`: the routes and their spans.
//! - [`faults`]: [`faults::InventoryFaults`], the faults of the incident walkthrough.
//! - [`stock`]: [`StockBook`], the per-item counts and the reservations held against them
//!   (reserve, confirm, release, expire).
//! - [`settings`]: `PORT`, `HOST`, `INVENTORY_STOCK`, `INVENTORY_RESERVATION_TTL_MS`.

pub mod api;
pub mod client;
pub mod faults;
mod handlers;
pub mod settings;
pub mod stock;

pub use client::InventoryClient;
pub use handlers::{admin_router, expire_reservations, router};
pub use settings::Settings;
pub use stock::StockBook;

/// Name and version as reported in `service.name` and `service.version`.
pub const SERVICE: service_kit::ServiceInfo = service_kit::ServiceInfo {
    name: "inventory-service",
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
    let stock = StockBook::new(settings.stock, settings.reservation_ttl);
    let app = router(stock.clone(), faults.clone());
    tokio::spawn(expire_reservations(stock.clone(), stop.clone()));
    let background = tokio_util::task::TaskTracker::new();
    let admin = Some(faults.admin_router().merge(admin_router(stock)));
    service_kit::run(
        SERVICE,
        settings.listen,
        app,
        background,
        stop,
        admin,
        service_kit::serve::Grace::default(),
    )
    .await
}
