//! What is sent: fast, slow, invalid and unknown-item orders, by weight.

use std::str::FromStr;

/// One kind of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderKind {
    /// Quantity 2: the fast path (201).
    Fast,
    /// Quantity 8: the planted slow path (201).
    Slow,
    /// Quantity 0: refused (400).
    Invalid,
    /// An item not in the catalogue (404).
    Unknown,
}

impl OrderKind {
    /// The name a mix gives this kind.
    fn name(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Slow => "slow",
            Self::Invalid => "invalid",
            Self::Unknown => "unknown",
        }
    }

    /// The kind a mix names `name`.
    fn named(name: &str) -> Option<Self> {
        [Self::Fast, Self::Slow, Self::Invalid, Self::Unknown]
            .into_iter()
            .find(|kind| kind.name() == name)
    }

    /// The JSON body of this kind of order.
    pub fn body(self) -> serde_json::Value {
        let (item, quantity) = match self {
            Self::Fast => ("book", 2),
            Self::Slow => ("book", 8),
            Self::Invalid => ("book", 0),
            Self::Unknown => ("unicorn", 1),
        };
        serde_json::json!({"item": item, "quantity": quantity, "price": 9.99})
    }
}

/// Weights of each kind, e.g. `fast=70,slow=10,invalid=10,unknown=10`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mix(Vec<(OrderKind, u32)>);

impl Default for Mix {
    fn default() -> Self {
        Self(vec![
            (OrderKind::Fast, 70),
            (OrderKind::Slow, 10),
            (OrderKind::Invalid, 10),
            (OrderKind::Unknown, 10),
        ])
    }
}

impl Mix {
    /// Orders of one kind only.
    pub fn only(kind: OrderKind) -> Self {
        Self(vec![(kind, 1)])
    }

    /// Picks a kind at random, by weight.
    pub fn pick(&self) -> OrderKind {
        let total: u64 = self.0.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut roll = fastrand::u64(0..total.max(1));
        for (kind, weight) in &self.0 {
            if roll < u64::from(*weight) {
                return *kind;
            }
            roll -= u64::from(*weight);
        }
        OrderKind::Fast
    }
}

impl std::fmt::Display for Mix {
    /// As it is written on the command line: `fast=70,slow=10`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (kind, weight)) in self.0.iter().enumerate() {
            let separator = if i == 0 { "" } else { "," };
            write!(f, "{separator}{}={weight}", kind.name())?;
        }
        Ok(())
    }
}

/// Why a mix could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "invalid mix {0:?}: expected kind=weight pairs of fast, slow, invalid, unknown, e.g. fast=70,slow=30"
)]
pub struct MixError(String);

impl FromStr for Mix {
    type Err = MixError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let bad = || MixError(raw.to_owned());
        let mut weights = Vec::new();
        for pair in raw.split(',').filter(|p| !p.trim().is_empty()) {
            let (kind, weight) = pair.split_once('=').ok_or_else(bad)?;
            let kind = OrderKind::named(kind.trim()).ok_or_else(bad)?;
            weights.push((kind, weight.trim().parse().map_err(|_| bad())?));
        }
        if weights.iter().map(|(_, w)| *w as u64).sum::<u64>() == 0 {
            return Err(bad());
        }
        Ok(Self(weights))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_follow_the_weights() {
        let mix: Mix = "fast=3,slow=1".parse().unwrap();
        let slow = (0..20_000)
            .filter(|_| mix.pick() == OrderKind::Slow)
            .count();
        assert!(
            (4_000..6_000).contains(&slow),
            "{slow} of 20000 for a weight of 1/4"
        );
        let only: Mix = "unknown=1".parse().unwrap();
        assert!((0..100).all(|_| only.pick() == OrderKind::Unknown));
    }

    #[test]
    fn a_mix_is_written_as_it_is_read() {
        let written = "fast=70,slow=10,invalid=10,unknown=10";
        let mix: Mix = written.parse().unwrap();
        assert_eq!(mix.to_string(), written);
        assert_eq!(mix.to_string().parse::<Mix>().unwrap(), mix);
        assert_eq!(Mix::only(OrderKind::Unknown).to_string(), "unknown=1");
    }

    #[test]
    fn bad_mixes_are_refused() {
        for bad in ["", "fast", "fast=x", "medium=1", "fast=0,slow=0"] {
            assert!(bad.parse::<Mix>().is_err(), "{bad}");
        }
    }
}
