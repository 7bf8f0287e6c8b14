//! Money as integer cents. The API takes the seed's `"price": 9.99`; inside, a price is read
//! from the JSON number's own digits, never through `f64` (where 0.1 × 3 is
//! 0.30000000000000004), and a price with more than two decimals is refused.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A unit price as the client wrote it: the text of a JSON number, checked by [`Price::cents`]
/// so that a price the API refuses is a 400 with a message, not a type error.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Price(String);

/// Why a price is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// Below zero.
    #[error("Price must be non-negative")]
    Negative,
    /// Finer than a cent.
    #[error("Price must have at most two decimals")]
    TooPrecise,
    /// More cents than fit in 63 bits.
    #[error("Price is too large")]
    TooLarge,
}

/// The largest amount of cents accepted: what payment-service's signed cents can hold.
pub const MAX_CENTS: u64 = i64::MAX as u64;

impl Price {
    /// A price from its decimal text (as in JSON), for tests and clients.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The price in cents.
    pub fn cents(&self) -> Result<u64, PriceError> {
        parse_cents(&self.0)
    }
}

/// Parses a JSON number (`-?int(.frac)?([eE][+-]?exp)?`) into exact cents.
fn parse_cents(text: &str) -> Result<u64, PriceError> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (
            &unsigned[..at],
            unsigned[at + 1..]
                .parse::<i64>()
                .map_err(|_| PriceError::TooLarge)?,
        ),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Ok(0); // 0, 0.00, -0, 0e5: zero whatever the sign.
    }
    if negative {
        return Err(PriceError::Negative);
    }
    // value = digits × 10^(exponent - fraction.len()); in cents, × 10^2 more.
    let shift = exponent
        .checked_add(2)
        .and_then(|e| e.checked_sub(i64::try_from(fraction.len()).ok()?))
        .ok_or(PriceError::TooLarge)?;
    let trailing_zeros = significant.len() - significant.trim_end_matches('0').len();
    let (kept, shift) = if shift < 0 {
        let dropped = usize::try_from(-shift).map_err(|_| PriceError::TooPrecise)?;
        if dropped > trailing_zeros {
            return Err(PriceError::TooPrecise);
        }
        (&significant[..significant.len() - dropped], 0)
    } else {
        (significant, shift)
    };
    if kept.len() > 19 || shift > 19 {
        return Err(PriceError::TooLarge);
    }
    let base: u128 = kept.parse().map_err(|_| PriceError::TooLarge)?;
    let cents = base
        .checked_mul(10u128.pow(u32::try_from(shift).map_err(|_| PriceError::TooLarge)?))
        .ok_or(PriceError::TooLarge)?;
    u64::try_from(cents)
        .ok()
        .filter(|c| *c <= MAX_CENTS)
        .ok_or(PriceError::TooLarge)
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let text = raw.get().trim();
        if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            Ok(Self(text.to_owned()))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid type: {text}, expected a number"
            )))
        }
    }
}

impl Serialize for Price {
    /// As the number it was written as.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match serde_json::value::RawValue::from_string(self.0.clone()) {
            Ok(raw) => raw.serialize(serializer),
            Err(_) => serializer.serialize_str(&self.0),
        }
    }
}

/// `cents` as a signed number, what a span attribute (tracing-opentelemetry has no unsigned
/// one) and payment's API hold: every valid amount fits, [`MAX_CENTS`] being `i64::MAX`.
pub fn cents_signed(cents: u64) -> i64 {
    i64::try_from(cents).unwrap_or(i64::MAX)
}

/// Cents as decimal text (1998 → "19.98").
pub fn cents_text(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Cents as a JSON number (1998 → 19.98), for answers; exact up to 2^53 cents.
pub fn cents_to_number(cents: u64) -> f64 {
    cents_text(cents).parse().unwrap_or(f64::MAX)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn prices_are_read_exactly_in_cents() {
        for (text, cents) in [
            ("9.99", 999),
            ("0.1", 10),
            ("10", 1000),
            ("0", 0),
            ("-0.0", 0),
            ("1e2", 10_000),
            ("9.990", 999),
            ("1.5E1", 1500),
            ("12345e-2", 12_345),
        ] {
            assert_eq!(parse_cents(text), Ok(cents), "{text}");
        }
        assert_eq!(parse_cents("9.999"), Err(PriceError::TooPrecise));
        assert_eq!(parse_cents("1e-3"), Err(PriceError::TooPrecise));
        assert_eq!(parse_cents("-0.01"), Err(PriceError::Negative));
        assert_eq!(parse_cents("1e30"), Err(PriceError::TooLarge));
        assert_eq!(
            parse_cents("1e999999999999999999999"),
            Err(PriceError::TooLarge)
        );
        assert_eq!(
            parse_cents("92233720368547758.08"),
            Err(PriceError::TooLarge)
        );
    }

    #[test]
    fn three_times_ten_cents_is_thirty_cents() {
        let cents = parse_cents("0.1").unwrap();
        assert_eq!(cents * 3, 30);
        assert_eq!(cents_to_number(cents * 3), 0.3);
    }

    proptest! {
        #[test]
        fn any_two_decimal_price_round_trips(cents in 0u64..=MAX_CENTS) {
            prop_assert_eq!(parse_cents(&cents_text(cents)), Ok(cents));
        }
    }
}
