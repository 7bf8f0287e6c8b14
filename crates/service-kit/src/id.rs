//! New ids for what the services keep (orders, reservations, charges): version 4 UUIDs.
//!
//! uuid's own `new_v4` asks the kernel for each id's sixteen bytes (`getrandom`, three
//! syscalls an order: BENCHMARKS.md, twenty-first round). rand's thread generator is
//! ChaCha12, seeded and reseeded from the kernel, so the ids stay as hard to guess (a client
//! holding one order's id cannot work out another's) for a syscall every 64 KiB of them.

use uuid::Uuid;

/// A new random (version 4) UUID.
pub fn new_id() -> Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use uuid::{Variant, Version};

    use super::new_id;

    #[test]
    fn ids_are_random_uuids_as_rfc_9562_marks_them_and_never_repeat() {
        let ids: Vec<_> = (0..20_000).map(|_| new_id()).collect();
        for id in &ids {
            assert_eq!(id.get_version(), Some(Version::Random), "{id}");
            assert_eq!(id.get_variant(), Variant::RFC4122, "{id}");
        }
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        // Every one of the 122 random bits varies: none is stuck at 0 or 1 across the ids.
        let ones = ids.iter().fold(0u128, |seen, id| seen | id.as_u128());
        let zeros = ids.iter().fold(0u128, |seen, id| seen | !id.as_u128());
        let fixed: u128 = (0xF << 76) | (0x3 << 62); // the version's and the variant's bits
        assert_eq!(
            (ones & zeros) | fixed,
            u128::MAX,
            "stuck bits: {:032x}",
            !((ones & zeros) | fixed)
        );
    }
}
