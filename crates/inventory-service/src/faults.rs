//! inventory-service's faults and its latency knob.

use serde::{Deserialize, Serialize};
use service_kit::{
    ConfigError,
    faults::{FaultSettings, env_value, parse_bool},
};

/// What can be made to go wrong in inventory-service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InventoryFaults {
    /// `INVENTORY_SLOW_LOOKUP_ALWAYS`: `slow_lookup` takes the slow path for every quantity.
    pub slow_lookup_always: bool,
    /// `INVENTORY_LOCK_FAULT`: reservations take one lock and hold it across the lookup's
    /// `.await`, so concurrent reservations queue behind each other. The classic bug that only a
    /// trace shows: each `reserve_stock` waits before its `slow_lookup` even starts.
    pub lock_held_across_await: bool,
    /// `INVENTORY_LOOKUP_SCALE`: multiplies `slow_lookup`'s sleep; 0 removes the simulated
    /// latency (for benchmarks), 1 is the demo.
    pub lookup_scale: f64,
    /// `INVENTORY_ANSWER_DELAY_MS`: a reservation is made, and its answer sent this late, as a
    /// network that loses answers: a caller that gives up must not leave the units held.
    pub answer_delay_ms: u64,
}

impl Default for InventoryFaults {
    fn default() -> Self {
        Self {
            slow_lookup_always: false,
            lock_held_across_await: false,
            lookup_scale: 1.0,
            answer_delay_ms: 0,
        }
    }
}

impl FaultSettings for InventoryFaults {
    fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            slow_lookup_always: env_value(
                lookup,
                "INVENTORY_SLOW_LOOKUP_ALWAYS",
                "true or false",
                parse_bool,
            )?
            .unwrap_or(defaults.slow_lookup_always),
            lock_held_across_await: env_value(
                lookup,
                "INVENTORY_LOCK_FAULT",
                "true or false",
                parse_bool,
            )?
            .unwrap_or(defaults.lock_held_across_await),
            lookup_scale: env_value(
                lookup,
                "INVENTORY_LOOKUP_SCALE",
                "a number from 0 to 100",
                |v| v.parse().ok().filter(|s: &f64| (0.0..=100.0).contains(s)),
            )?
            .unwrap_or(defaults.lookup_scale),
            answer_delay_ms: env_value(
                lookup,
                "INVENTORY_ANSWER_DELAY_MS",
                "milliseconds from 0 to 60000",
                |v| v.parse().ok().filter(|ms: &u64| *ms <= 60_000),
            )?
            .unwrap_or(defaults.answer_delay_ms),
        })
    }

    fn validate(&self) -> Result<(), String> {
        if !(0.0..=100.0).contains(&self.lookup_scale) {
            Err("lookup_scale must be from 0 to 100".into())
        } else if self.answer_delay_ms > 60_000 {
            Err("answer_delay_ms must be at most 60000".into())
        } else {
            Ok(())
        }
    }
}
