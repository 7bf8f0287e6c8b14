//! Every charge key and what happened to it: charged, refunded, or cancelled before any
//! charge. All decisions about one key are made under one lock, so a key is charged at most
//! once, a cancelled key can never be charged afterwards, and "what happened to key K" always
//! has a final answer: the caller that lost a charge's answer to a timeout asks for a cancel,
//! and gets either the charge that was made or the promise that none ever will be.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use serde::{Deserialize, Serialize};

use crate::api::Charge;

/// How many keys are remembered (oldest forgotten first). Far more than can be in doubt at
/// once: a caller resolves a key within seconds of charging it.
pub const REMEMBERED_KEYS: usize = 10_000;

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChargeState {
    /// Charged once; repeats get this charge.
    Charged,
    /// Charged, then refunded.
    Refunded,
    /// Cancelled before any charge: a charge with this key is refused from now on.
    Cancelled,
}

/// A key and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChargeRecord {
    /// The idempotency key.
    pub key: String,
    /// What happened to it.
    pub state: ChargeState,
    /// The charge, unless the key was cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charge: Option<Charge>,
}

/// Why a ledger operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The key was used for a charge of another item or amount.
    #[error("Idempotency-Key was already used with a different request")]
    KeyReused,
    /// The key was cancelled: it will never be charged.
    #[error("This charge was cancelled")]
    Cancelled,
    /// Nothing was charged with this key.
    #[error("No charge with this key")]
    NotCharged,
}

/// The keys remembered, oldest first in `order`; each key's text is shared by both.
#[derive(Default)]
struct Keys {
    records: HashMap<Arc<str>, Kept>,
    order: VecDeque<Arc<str>>,
}

/// What is kept of a key's [`ChargeRecord`], in about half its memory (10 000 are kept): the
/// key is the map's, the charge's id is kept as the UUID it is made from, the item boxed, and
/// the status, always `succeeded`, not at all.
struct Kept {
    state: ChargeState,
    charge: Option<KeptCharge>,
}

struct KeptCharge {
    charge_id: uuid::Uuid,
    item: Box<str>,
    amount_cents: u64,
}

/// The status of every charge made (a refused one is never kept).
const SUCCEEDED: &str = "succeeded";

impl KeptCharge {
    fn charge(&self) -> Charge {
        Charge {
            charge_id: self.charge_id.to_string(),
            item: self.item.to_string(),
            amount_cents: self.amount_cents,
            status: SUCCEEDED.to_owned(),
        }
    }
}

impl Kept {
    fn record(&self, key: &str) -> ChargeRecord {
        ChargeRecord {
            key: key.to_owned(),
            state: self.state,
            charge: self.charge.as_ref().map(KeptCharge::charge),
        }
    }
}

/// The ledger. Cloning shares it.
#[derive(Clone, Default)]
pub struct Ledger {
    keys: Arc<Mutex<Keys>>,
}

/// What a charge call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charged {
    /// The charge (a repeat's is the first call's).
    pub charge: Charge,
    /// Whether this call made it.
    pub created: bool,
}

impl Ledger {
    /// Charges `amount_cents` for `item` under `key`, unless it was charged already (then the
    /// first charge is returned) or cancelled. `refused` decides, for a new charge only,
    /// whether the provider refuses it (the injected fault); a refused charge leaves no trace,
    /// so it may be tried again.
    pub fn charge(
        &self,
        key: &str,
        item: &str,
        amount_cents: u64,
        refused: impl FnOnce() -> bool,
    ) -> Result<Option<Charged>, LedgerError> {
        let mut keys = self.lock();
        if let Some(record) = keys.records.get(key) {
            return match (&record.state, &record.charge) {
                (ChargeState::Cancelled, _) | (_, None) => Err(LedgerError::Cancelled),
                (_, Some(charge))
                    if *charge.item != *item || charge.amount_cents != amount_cents =>
                {
                    Err(LedgerError::KeyReused)
                }
                (_, Some(charge)) => Ok(Some(Charged {
                    charge: charge.charge(),
                    created: false,
                })),
            };
        }
        if refused() {
            return Ok(None);
        }
        let charge = KeptCharge {
            charge_id: service_kit::id::new_id(),
            item: item.into(),
            amount_cents,
        };
        let made = charge.charge();
        keys.insert(
            key,
            Kept {
                state: ChargeState::Charged,
                charge: Some(charge),
            },
        );
        Ok(Some(Charged {
            charge: made,
            created: true,
        }))
    }

    /// Settles a key whose charge is in doubt: if it was charged, that charge (or its refund);
    /// if not, it is cancelled, and never charged afterwards.
    pub fn cancel(&self, key: &str) -> ChargeRecord {
        let mut keys = self.lock();
        if let Some(record) = keys.records.get(key) {
            return record.record(key);
        }
        let cancelled = Kept {
            state: ChargeState::Cancelled,
            charge: None,
        };
        let record = cancelled.record(key);
        keys.insert(key, cancelled);
        record
    }

    /// Refunds the charge of `key`; a repeat is a no-op. Returns the record and whether this
    /// call refunded.
    pub fn refund(&self, key: &str) -> Result<(ChargeRecord, bool), LedgerError> {
        let mut keys = self.lock();
        let record = keys.records.get_mut(key).ok_or(LedgerError::NotCharged)?;
        match record.state {
            ChargeState::Cancelled => Err(LedgerError::NotCharged),
            ChargeState::Refunded => Ok((record.record(key), false)),
            ChargeState::Charged => {
                record.state = ChargeState::Refunded;
                Ok((record.record(key), true))
            }
        }
    }

    /// What happened to `key`, if it is known.
    pub fn get(&self, key: &str) -> Option<ChargeRecord> {
        self.lock().records.get(key).map(|r| r.record(key))
    }

    /// Every key remembered, oldest first.
    pub fn all(&self) -> Vec<ChargeRecord> {
        let keys = self.lock();
        keys.order
            .iter()
            .filter_map(|k| keys.records.get(k).map(|r| r.record(k)))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Keys> {
        // Each critical section is a few map operations that cannot panic half-way.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Keys {
    /// Remembers a key not seen before, forgetting the oldest beyond [`REMEMBERED_KEYS`].
    fn insert(&mut self, key: &str, kept: Kept) {
        let key: Arc<str> = key.into();
        self.order.push_back(key.clone());
        self.records.insert(key, kept);
        while self.order.len() > REMEMBERED_KEYS {
            if let Some(old) = self.order.pop_front() {
                self.records.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_charged_once_and_a_repeat_gets_the_first_charge() {
        let ledger = Ledger::default();
        let first = ledger.charge("k", "book", 1998, || false).unwrap().unwrap();
        let again = ledger.charge("k", "book", 1998, || false).unwrap().unwrap();
        assert!(first.created && !again.created);
        assert_eq!(first.charge, again.charge);
        assert_eq!(
            ledger.charge("k", "book", 999, || false),
            Err(LedgerError::KeyReused)
        );
    }

    #[test]
    fn a_key_in_doubt_is_settled_by_cancel_one_way_or_the_other() {
        let ledger = Ledger::default();
        ledger.charge("charged", "pen", 30, || false).unwrap();
        assert_eq!(ledger.cancel("charged").state, ChargeState::Charged);
        assert_eq!(ledger.cancel("never").state, ChargeState::Cancelled);
        // A charge that arrives after its cancel (it was slow on the way) is refused.
        assert_eq!(
            ledger.charge("never", "pen", 30, || false),
            Err(LedgerError::Cancelled)
        );
        // A refused charge leaves no trace: it can be cancelled, or tried again.
        assert_eq!(ledger.charge("refused", "pen", 30, || true), Ok(None));
        assert_eq!(ledger.get("refused"), None);
    }

    #[test]
    fn refunds_are_idempotent_and_only_of_charges() {
        let ledger = Ledger::default();
        ledger.charge("k", "mug", 1234, || false).unwrap();
        assert!(ledger.refund("k").unwrap().1);
        let (record, again) = ledger.refund("k").unwrap();
        assert!(!again);
        assert_eq!(record.state, ChargeState::Refunded);
        ledger.cancel("c");
        assert_eq!(ledger.refund("c"), Err(LedgerError::NotCharged));
        assert_eq!(ledger.refund("unknown"), Err(LedgerError::NotCharged));
    }

    #[test]
    fn the_oldest_keys_are_forgotten_beyond_the_bound_and_the_rest_kept_whole() {
        let ledger = Ledger::default();
        let first = ledger
            .charge("key-0", "book", 100, || false)
            .unwrap()
            .unwrap();
        ledger.cancel("key-1");
        for i in 2..REMEMBERED_KEYS + 1 {
            ledger
                .charge(&format!("key-{i}"), "pen", i as u64, || false)
                .unwrap();
        }
        // One over the bound: key-0 is forgotten, and a charge with it is a new charge.
        assert_eq!(ledger.get("key-0"), None);
        let again = ledger
            .charge("key-0", "book", 100, || false)
            .unwrap()
            .unwrap();
        assert!(again.created);
        assert_ne!(again.charge.charge_id, first.charge.charge_id);
        // key-0's new charge pushed key-1 out too.
        assert_eq!(ledger.get("key-1"), None);
        let all = ledger.all();
        assert_eq!(all.len(), REMEMBERED_KEYS);
        assert_eq!(all[0].key, "key-2");
        let newest = all.last().unwrap();
        assert_eq!(newest.key, "key-0");
        assert_eq!(newest.state, ChargeState::Charged);
        assert_eq!(newest.charge.as_ref(), Some(&again.charge));
        assert_eq!(again.charge.status, "succeeded");
    }
}
