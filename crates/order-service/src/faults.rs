//! order-service's fault: the one that proves a dead order task cannot hold stock forever.

use serde::{Deserialize, Serialize};
use service_kit::{
    ConfigError,
    faults::{FaultSettings, env_value, parse_bool},
};

/// What can be made to go wrong in order-service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrderFaults {
    /// `ORDER_PANIC_AFTER_RESERVE`: the order's task panics right after its reservation, before
    /// the charge (the answer is a 500). The reservation is never released by anyone: it must
    /// expire by itself.
    pub panic_after_reserve: bool,
}

impl FaultSettings for OrderFaults {
    fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            panic_after_reserve: env_value(
                lookup,
                "ORDER_PANIC_AFTER_RESERVE",
                "true or false",
                parse_bool,
            )?
            .unwrap_or_default(),
        })
    }

    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}
