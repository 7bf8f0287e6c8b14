//! Item names travel into downstream URL paths, so only a safe alphabet is accepted.

use crate::ApiError;

/// The longest item name accepted.
pub const MAX_ITEM_LEN: usize = 64;

/// Accepts `[A-Za-z0-9_-]{1,64}`. Anything else (`../x`, `a?b`, `%2F`, spaces) could change the
/// path or query of the call that carries it, and is a 400 before any call is made.
pub fn validate_item(item: &str) -> Result<(), ApiError> {
    let valid = (1..=MAX_ITEM_LEN).contains(&item.len())
        && item
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "Item must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_items() {
        for item in ["book", "Pen_2", "note-book", &"x".repeat(64)] {
            assert!(validate_item(item).is_ok(), "{item}");
        }
    }

    #[test]
    fn anything_that_could_reshape_a_url_is_rejected() {
        let long = "x".repeat(65);
        for item in [
            "", "../x", "a?b", "a/b", "a#b", "%2F", "a b", "é", "a.b", &long,
        ] {
            assert_eq!(
                validate_item(item).map_err(|e| e.status.as_u16()),
                Err(400),
                "{item:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn every_name_of_the_safe_alphabet_is_accepted(item in "[A-Za-z0-9_-]{1,64}") {
            proptest::prop_assert!(validate_item(&item).is_ok());
        }

        #[test]
        fn any_other_character_anywhere_is_refused(
            prefix in "[a-z]{0,10}",
            bad in "[^A-Za-z0-9_-]",
            suffix in "[a-z]{0,10}",
        ) {
            let item = format!("{prefix}{bad}{suffix}");
            proptest::prop_assert_eq!(validate_item(&item).map_err(|e| e.status.as_u16()), Err(400));
        }

        #[test]
        fn names_over_64_characters_are_refused(item in "[a-z]{65,200}") {
            proptest::prop_assert!(validate_item(&item).is_err());
        }
    }
}
