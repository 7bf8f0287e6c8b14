//! payment-service: charges an amount for an item and answers with a charge id.
//!
//! # Layout
//! - [`api`]: request and response bodies, shared with callers.
//! - [`client`]: [`PaymentClient`], the typed client order-service uses.
//! - `handlers`: the routes.

pub mod api;
pub mod client;
mod handlers;

pub use client::PaymentClient;
pub use handlers::router;

/// Name and version as reported in `service.name` and `service.version`.
pub const SERVICE: service_kit::ServiceInfo = service_kit::ServiceInfo {
    name: "payment-service",
    version: env!("CARGO_PKG_VERSION"),
};

/// The default port.
pub const DEFAULT_PORT: u16 = 8003;
