//! order-service settings.

use std::time::Duration;

use service_kit::{ConfigError, ListenSettings, settings::service_url};
use url::Url;

/// The default port.
pub const DEFAULT_PORT: u16 = 8001;

/// Longest wait for inventory or payment on one call; within an order, the order's remaining
/// budget is the limit when it is shorter. A quantity-8 reservation takes ~0.3 s.
pub const DOWNSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The default time budget of an order, from receipt to answer.
pub const DEFAULT_ORDER_BUDGET: Duration = Duration::from_secs(3);

/// Longest a notification may take; it never delays or fails the order either way.
pub const NOTIFICATION_TIMEOUT: Duration = Duration::from_millis(500);

/// Everything order-service reads from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `HOST` and `PORT`.
    pub listen: ListenSettings,
    /// `INVENTORY_SERVICE_URL`.
    pub inventory_url: Url,
    /// `PAYMENT_SERVICE_URL`.
    pub payment_url: Url,
    /// `NOTIFICATION_SERVICE_URL`.
    pub notification_url: Url,
    /// `ORDER_BUDGET_MS`: how long an order may take in all; every downstream call gets what
    /// is left of it, and an order out of time answers 504.
    pub order_budget: Duration,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`Settings::from_env`], reading through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: ListenSettings::from_lookup(DEFAULT_PORT, &lookup)?,
            inventory_url: service_url(&lookup, "INVENTORY_SERVICE_URL", "http://127.0.0.1:8002")?,
            payment_url: service_url(&lookup, "PAYMENT_SERVICE_URL", "http://127.0.0.1:8003")?,
            notification_url: service_url(
                &lookup,
                "NOTIFICATION_SERVICE_URL",
                "http://127.0.0.1:8004",
            )?,
            order_budget: match lookup("ORDER_BUDGET_MS") {
                None => DEFAULT_ORDER_BUDGET,
                Some(raw) => raw
                    .trim()
                    .parse()
                    .ok()
                    .filter(|ms| (1..=60_000).contains(ms))
                    .map(Duration::from_millis)
                    .ok_or_else(|| {
                        ConfigError::new(
                            "ORDER_BUDGET_MS",
                            &raw,
                            "expected milliseconds, 1 to 60000",
                        )
                    })?,
            },
        })
    }
}
