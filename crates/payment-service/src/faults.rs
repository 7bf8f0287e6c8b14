//! payment-service's faults.

use serde::{Deserialize, Serialize};
use service_kit::{
    ConfigError,
    faults::{FaultSettings, env_value},
};

/// What can be made to go wrong in payment-service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentFaults {
    /// `PAYMENT_FAILURE_RATE`: the fraction of charges (0 to 1) answered 503, as a payment
    /// provider having a bad day.
    pub failure_rate: f64,
    /// `PAYMENT_ANSWER_DELAY_MS`: the charge is made at once, its answer is sent this late, as
    /// a provider that charged and then stalled. Past the caller's budget, the caller must
    /// find out what happened before it decides.
    pub answer_delay_ms: u64,
}

impl FaultSettings for PaymentFaults {
    fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            failure_rate: env_value(
                lookup,
                "PAYMENT_FAILURE_RATE",
                "a number from 0 to 1",
                |v| v.parse().ok().filter(|r: &f64| (0.0..=1.0).contains(r)),
            )?
            .unwrap_or_default(),
            answer_delay_ms: env_value(
                lookup,
                "PAYMENT_ANSWER_DELAY_MS",
                "milliseconds from 0 to 60000",
                |v| v.parse().ok().filter(|ms: &u64| *ms <= 60_000),
            )?
            .unwrap_or_default(),
        })
    }

    fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.failure_rate) {
            Err("failure_rate must be from 0 to 1".into())
        } else if self.answer_delay_ms > 60_000 {
            Err("answer_delay_ms must be at most 60000".into())
        } else {
            Ok(())
        }
    }
}
