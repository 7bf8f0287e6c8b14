//! notification-service's faults.

use serde::{Deserialize, Serialize};
use service_kit::{
    ConfigError,
    faults::{FaultSettings, env_value},
};

/// What can be made to go wrong in notification-service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationFaults {
    /// `NOTIFICATION_DELAY_MS`: every notification takes this long to answer. Beyond 500 ms,
    /// order-service gives up on it (and the order is still created).
    pub delay_ms: u64,
}

impl FaultSettings for NotificationFaults {
    fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            delay_ms: env_value(
                lookup,
                "NOTIFICATION_DELAY_MS",
                "milliseconds, 0 to 60000",
                |v| v.parse().ok().filter(|d: &u64| *d <= 60_000),
            )?
            .unwrap_or_default(),
        })
    }

    fn validate(&self) -> Result<(), String> {
        if self.delay_ms <= 60_000 {
            Ok(())
        } else {
            Err("delay_ms must be at most 60000".into())
        }
    }
}
