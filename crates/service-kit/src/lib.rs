//! The plumbing every service shares, so each service crate holds only its own behaviour.
//!
//! # Layout
//! - [`settings`]: `HOST`/`PORT` and service URLs from the environment, validated.
//! - [`api_error`]: [`ApiError`], the one JSON error shape, and extractors whose rejections use it.
//! - [`item`]: the item-name rule (`[A-Za-z0-9_-]{1,64}`) that keeps input out of downstream URLs.
//! - [`app`]: [`app::api`], the layers every router gets (tracing, body limit, panics, 404s).
//! - [`serve`]: binding, serving, and graceful shutdown on SIGTERM/SIGINT.
//! - [`deadline`]: a request's time budget, and bounded retries for idempotent calls.
//! - [`downstream`]: [`DownstreamError`] and the JSON call helper the typed clients use.
//! - [`id`]: new ids (random UUIDs) for orders, reservations and charges.
//! - [`idempotency`]: `Idempotency-Key` handling: repeats get the first answer.
//! - [`faults`]: fault injection, from the environment and a 127.0.0.1-only admin endpoint.
//! - [`memory`]: freed memory given back to the system once a burst of requests is over.
//! - [`runtime`]: the tokio runtime each binary runs on (a service on one thread unless
//!   `TOKIO_WORKER_THREADS`, a tool on a worker per core).
//! - [`health`]: `--health-check`, the binary probing its own `/health` (for containers).

pub mod api_error;
pub mod app;
pub mod deadline;
pub mod downstream;
pub mod faults;
pub mod health;
pub mod id;
pub mod idempotency;
pub mod item;
pub mod memory;
pub mod runtime;
pub mod serve;
pub mod settings;

pub use api_error::{ApiError, ApiJson, ApiPath};
pub use deadline::Deadline;
pub use downstream::DownstreamError;
pub use serve::run;
pub use settings::{ConfigError, ListenSettings, config_error};
pub use telemetry::ServiceInfo;
