//! inventory-service settings.

use std::time::Duration;

use service_kit::{ConfigError, ListenSettings, faults::env_value, item::validate_item};

/// The default port.
pub const DEFAULT_PORT: u16 = 8002;

/// The catalogue when `INVENTORY_STOCK` is unset: enough units for a long load test.
pub const DEFAULT_STOCK: &str = "book=1000000,pen=1000000,notebook=1000000,mug=1000000";

/// How long a reservation is held unconfirmed by default: longer than any order takes
/// (its 3 s budget, then resolving its charge and confirming), short enough that units a
/// crashed or cut-off order held come back soon.
pub const DEFAULT_RESERVATION_TTL: Duration = Duration::from_secs(30);

/// Everything inventory-service reads from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `HOST` and `PORT`.
    pub listen: ListenSettings,
    /// `INVENTORY_STOCK`: the seed catalogue, `item=units` pairs.
    pub stock: Vec<(String, u64)>,
    /// `INVENTORY_RESERVATION_TTL_MS`: how long a reservation waits for its confirmation
    /// before its units return by themselves.
    pub reservation_ttl: Duration,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let lookup = |name: &str| std::env::var(name).ok();
        Ok(Self {
            listen: ListenSettings::from_lookup(DEFAULT_PORT, lookup)?,
            stock: parse_stock(&lookup("INVENTORY_STOCK").unwrap_or_else(|| DEFAULT_STOCK.into()))?,
            reservation_ttl: env_value(
                &lookup,
                "INVENTORY_RESERVATION_TTL_MS",
                "milliseconds from 100 to 86400000",
                |v| {
                    v.parse()
                        .ok()
                        .filter(|ms: &u64| (100..=86_400_000).contains(ms))
                },
            )?
            .map_or(DEFAULT_RESERVATION_TTL, Duration::from_millis),
        })
    }
}

/// Parses `book=100,pen=5`.
pub fn parse_stock(raw: &str) -> Result<Vec<(String, u64)>, ConfigError> {
    let bad = |reason: &str| ConfigError::new("INVENTORY_STOCK", raw, reason);
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (item, units) = pair
                .split_once('=')
                .ok_or_else(|| bad("expected item=units pairs such as book=100,pen=5"))?;
            validate_item(item.trim()).map_err(|_| bad("item names are [A-Za-z0-9_-]{1,64}"))?;
            let units = units
                .trim()
                .parse()
                .map_err(|_| bad("units must be a whole number >= 0"))?;
            Ok((item.trim().to_owned(), units))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_catalogue_parses() {
        let stock = parse_stock(DEFAULT_STOCK).unwrap();
        assert_eq!(stock.len(), 4);
        assert!(stock.iter().any(|(item, _)| item == "book"));
    }

    #[test]
    fn a_bad_catalogue_names_the_variable() {
        for raw in ["book", "book=-1", "../x=1", "book=many"] {
            assert_eq!(
                parse_stock(raw).unwrap_err().variable,
                "INVENTORY_STOCK",
                "{raw}"
            );
        }
    }
}
