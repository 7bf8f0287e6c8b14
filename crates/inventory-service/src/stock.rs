//! Units per item, and the reservations held against them.
//!
//! A reservation is a thing with an id: reserving takes units out of `available` and holds
//! them; confirming sells them for good; releasing, or the reservation's expiry, gives them
//! back. Units only ever move between `available`, `held` and `sold` of one item, under one
//! lock, so for every item `available + held + sold` is the stock it started with, whatever
//! the concurrency, the retries or the timing. Reserving with an idempotency key returns the
//! same reservation when repeated; confirming and releasing are idempotent by nature.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    ops::Bound,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use uuid::Uuid;

/// How many finished reservations (confirmed, released, expired) are remembered, so that a
/// repeated confirm or release gets the same answer. Held ones are never forgotten: they
/// expire instead.
pub const REMEMBERED_RESERVATIONS: usize = 10_000;

/// Why stock could not be reserved, confirmed or released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StockError {
    /// Not in the catalogue.
    #[error("Unknown item: {0}")]
    UnknownItem(String),
    /// Fewer units left than asked for.
    #[error("Insufficient stock: {available} available")]
    Insufficient {
        /// Units left.
        available: u64,
    },
    /// No reservation with this id for this item (or it was forgotten long ago).
    #[error("No such reservation")]
    UnknownReservation,
    /// The reservation has already ended in another way: it cannot be confirmed once released
    /// or expired, nor released once confirmed.
    #[error("Reservation is {0}")]
    Ended(ReservationState),
    /// The idempotency key was used for a reservation of another item or quantity.
    #[error("Idempotency-Key was already used for another reservation")]
    KeyReused,
}

/// Where a reservation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    /// Units held, waiting for confirmation until the reservation expires.
    Held,
    /// Units sold.
    Confirmed,
    /// Units given back on request.
    Released,
    /// Units given back because nobody confirmed in time.
    Expired,
}

impl std::fmt::Display for ReservationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Held => "held",
            Self::Confirmed => "confirmed",
            Self::Released => "released",
            Self::Expired => "expired",
        })
    }
}

/// One reservation, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReservationRecord {
    /// Its id (a UUID).
    pub reservation_id: String,
    /// The item.
    pub item: String,
    /// Units.
    pub quantity: u64,
    /// Where it is in its life.
    pub state: ReservationState,
    /// The idempotency key it was made with, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Units of one item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Level {
    /// Free to reserve.
    pub available: u64,
    /// Held by reservations not yet confirmed.
    pub held: u64,
    /// Sold: reserved and confirmed.
    pub sold: u64,
}

/// What is kept of a reservation, in under half of a [`ReservationRecord`]'s memory (up to
/// 10 000 finished ones are kept): its id is the map's key, its item is the catalogue's own
/// name, and its key is the one `by_key` holds: one allocation each, shared.
struct Reservation {
    item: Arc<str>,
    quantity: u64,
    state: ReservationState,
    key: Option<Arc<str>>,
    /// When a held reservation expires.
    expires: Instant,
}

impl Reservation {
    /// As the API shows it.
    fn record(&self, id: Uuid) -> ReservationRecord {
        ReservationRecord {
            reservation_id: id.to_string(),
            item: self.item.to_string(),
            quantity: self.quantity,
            state: self.state,
            key: self.key.as_deref().map(str::to_owned),
        }
    }
}

#[derive(Default)]
struct Book {
    levels: BTreeMap<Arc<str>, Level>,
    reservations: HashMap<Uuid, Reservation>,
    by_key: HashMap<Arc<str>, Uuid>,
    /// Held reservations in creation order: with one TTL for all, also expiry order.
    held: VecDeque<Uuid>,
    /// Finished reservations in the order they finished, for forgetting the oldest.
    finished: VecDeque<Uuid>,
}

impl Book {
    /// Moves a held reservation's units and marks it `to`; returns its record.
    fn finish(&mut self, id: Uuid, to: ReservationState) -> Option<ReservationRecord> {
        let reservation = self.reservations.get_mut(&id)?;
        if reservation.state != ReservationState::Held {
            return Some(reservation.record(id));
        }
        // Reservations are only made for items of the catalogue, which never loses one.
        let level = self.levels.get_mut(&*reservation.item)?;
        let units = reservation.quantity;
        level.held -= units;
        match to {
            ReservationState::Confirmed => level.sold += units,
            _ => level.available += units,
        }
        reservation.state = to;
        let record = reservation.record(id);
        self.finished.push_back(id);
        while self.finished.len() > REMEMBERED_RESERVATIONS {
            if let Some(old) = self.finished.pop_front()
                && let Some(gone) = self.reservations.remove(&old)
                && let Some(key) = gone.key
            {
                self.by_key.remove(&key);
            }
        }
        Some(record)
    }
}

/// The catalogue, its counts and its reservations. Cloning shares it.
#[derive(Clone)]
pub struct StockBook {
    book: Arc<Mutex<Book>>,
    /// How long a reservation is held unconfirmed before its units return by themselves.
    ttl: Duration,
}

/// What a confirm or release did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The reservation now.
    pub record: ReservationRecord,
    /// Whether this call moved its units (false for a repeat).
    pub changed: bool,
}

/// What a reservation call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    /// The reservation (a repeat's is the first call's).
    pub record: ReservationRecord,
    /// Units of the item still available.
    pub available: u64,
    /// Time left before it expires, if it is still held.
    pub expires_in: Option<Duration>,
    /// Whether this call made it (false for a repeat with the same key).
    pub created: bool,
}

impl StockBook {
    /// A book holding `levels` available units, whose reservations expire after `ttl`.
    pub fn new(levels: impl IntoIterator<Item = (String, u64)>, ttl: Duration) -> Self {
        let book = Book {
            levels: levels
                .into_iter()
                .map(|(item, available)| {
                    (
                        Arc::from(item),
                        Level {
                            available,
                            ..Level::default()
                        },
                    )
                })
                .collect(),
            ..Book::default()
        };
        Self {
            book: Arc::new(Mutex::new(book)),
            ttl,
        }
    }

    /// The units of `item`, or `None` if it is unknown.
    pub fn level(&self, item: &str) -> Option<Level> {
        self.lock().levels.get(item).copied()
    }

    /// Units available of `item`, or `None` if it is unknown.
    pub fn available(&self, item: &str) -> Option<u64> {
        self.level(item).map(|l| l.available)
    }

    /// Holds `quantity` units of `item`. With `key`, a repeat returns the first reservation
    /// (whatever has happened to it since) and takes nothing more.
    pub fn reserve(
        &self,
        item: &str,
        quantity: u64,
        key: Option<&str>,
    ) -> Result<Reserved, StockError> {
        let mut guard = self.lock();
        if let Some(key) = key
            && let Some(repeat) = repeat_of(&guard, key, item, quantity)
        {
            return repeat;
        }
        let book = &mut *guard;
        // The catalogue's name with its level, in one lookup (a `get_key_value` whose value
        // can be changed): the reservation shares the name.
        let (name, level) = book
            .levels
            .range_mut::<str, _>((Bound::Included(item), Bound::Included(item)))
            .next()
            .ok_or_else(|| StockError::UnknownItem(item.to_owned()))?;
        if level.available < quantity {
            return Err(StockError::Insufficient {
                available: level.available,
            });
        }
        level.available -= quantity;
        level.held += quantity;
        let available = level.available;
        let id = service_kit::id::new_id();
        let key = key.map(Arc::<str>::from);
        let reservation = Reservation {
            item: Arc::clone(name),
            quantity,
            state: ReservationState::Held,
            key: key.clone(),
            expires: Instant::now() + self.ttl,
        };
        let record = reservation.record(id);
        book.reservations.insert(id, reservation);
        if let Some(key) = key {
            book.by_key.insert(key, id);
        }
        book.held.push_back(id);
        Ok(Reserved {
            record,
            available,
            expires_in: Some(self.ttl),
            created: true,
        })
    }

    /// The reservation made with `key`, if there is one (a repeat takes nothing more).
    pub fn repeat(
        &self,
        key: &str,
        item: &str,
        quantity: u64,
    ) -> Option<Result<Reserved, StockError>> {
        repeat_of(&self.lock(), key, item, quantity)
    }

    /// Sells a held reservation's units. Confirming a confirmed reservation is a no-op; a
    /// released or expired one cannot be confirmed.
    pub fn confirm(&self, item: &str, id: &str) -> Result<Ended, StockError> {
        self.end(item, id, ReservationState::Confirmed)
    }

    /// Gives a held reservation's units back. Releasing a released or expired reservation is a
    /// no-op (its units are already back); a confirmed one cannot be released.
    pub fn release(&self, item: &str, id: &str) -> Result<Ended, StockError> {
        self.end(item, id, ReservationState::Released)
    }

    fn end(&self, item: &str, id: &str, to: ReservationState) -> Result<Ended, StockError> {
        let id = Uuid::parse_str(id).map_err(|_| StockError::UnknownReservation)?;
        let mut book = self.lock();
        let record = match book.reservations.get(&id) {
            Some(r) if *r.item == *item => r.record(id),
            _ => return Err(StockError::UnknownReservation),
        };
        let unchanged = |record| {
            Ok(Ended {
                record,
                changed: false,
            })
        };
        match (record.state, to) {
            (ReservationState::Held, _) => book
                .finish(id, to)
                .map(|record| Ended {
                    record,
                    changed: true,
                })
                .ok_or(StockError::UnknownReservation),
            (ReservationState::Confirmed, ReservationState::Confirmed) => unchanged(record),
            (
                ReservationState::Released | ReservationState::Expired,
                ReservationState::Released,
            ) => unchanged(record),
            (state, _) => Err(StockError::Ended(state)),
        }
    }

    /// Ends every held reservation whose time is up; returns them, now `expired`.
    pub fn expire_due(&self) -> Vec<ReservationRecord> {
        let now = Instant::now();
        let mut book = self.lock();
        let mut expired = Vec::new();
        while let Some(&id) = book.held.front() {
            let due = match book.reservations.get(&id) {
                Some(r) if r.state == ReservationState::Held => r.expires <= now,
                // Confirmed or released since: nothing to expire.
                _ => true,
            };
            if !due {
                break;
            }
            book.held.pop_front();
            let still_held = book
                .reservations
                .get(&id)
                .is_some_and(|r| r.state == ReservationState::Held);
            if still_held && let Some(record) = book.finish(id, ReservationState::Expired) {
                expired.push(record);
            }
        }
        expired
    }

    /// Every reservation remembered (held ones first), for reconciliation.
    pub fn reservations(&self) -> Vec<ReservationRecord> {
        let book = self.lock();
        let mut all: Vec<ReservationRecord> = book
            .reservations
            .iter()
            .map(|(id, r)| r.record(*id))
            .collect();
        all.sort_by_key(|r| r.state != ReservationState::Held);
        all
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // Every critical section moves units and updates the maps before anything in it can
        // panic, so a poisoned lock is still safe to use.
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The reservation `key` was used for, as a repeat's answer; refused if it was for another
/// item or quantity.
fn repeat_of(
    book: &Book,
    key: &str,
    item: &str,
    quantity: u64,
) -> Option<Result<Reserved, StockError>> {
    let id = *book.by_key.get(key)?;
    let reservation = book.reservations.get(&id)?;
    if *reservation.item != *item || reservation.quantity != quantity {
        return Some(Err(StockError::KeyReused));
    }
    Some(Ok(Reserved {
        record: reservation.record(id),
        available: book.levels.get(item).map_or(0, |l| l.available),
        expires_in: (reservation.state == ReservationState::Held).then(|| {
            reservation
                .expires
                .saturating_duration_since(Instant::now())
        }),
        created: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(units: u64) -> StockBook {
        StockBook::new([("pen".to_owned(), units)], Duration::from_secs(60))
    }

    fn total(book: &StockBook) -> u64 {
        let level = book.level("pen").expect("pen");
        level.available + level.held + level.sold
    }

    #[test]
    fn concurrent_reservations_never_oversell() {
        let book = StockBook::new([("mug".to_owned(), 100)], Duration::from_secs(60));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let book = book.clone();
                std::thread::spawn(move || {
                    (0..50)
                        .filter(|_| book.reserve("mug", 1, None).is_ok())
                        .count()
                })
            })
            .collect();
        let reserved: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(reserved, 100);
        assert_eq!(book.available("mug"), Some(0));
    }

    #[test]
    fn a_repeated_reserve_with_its_key_returns_the_same_reservation() {
        let book = book(10);
        let first = book.reserve("pen", 3, Some("k")).unwrap();
        let again = book.reserve("pen", 3, Some("k")).unwrap();
        assert_eq!(first.record, again.record);
        assert!(first.created && !again.created);
        assert_eq!(book.available("pen"), Some(7));
        assert_eq!(
            book.reserve("pen", 4, Some("k")),
            Err(StockError::KeyReused)
        );
    }

    #[test]
    fn confirm_and_release_are_idempotent_and_exclusive() {
        let book = book(10);
        let sold = book.reserve("pen", 3, None).unwrap().record.reservation_id;
        let back = book.reserve("pen", 2, None).unwrap().record.reservation_id;
        assert_eq!(
            book.confirm("pen", &sold).unwrap().record.state,
            ReservationState::Confirmed
        );
        assert_eq!(
            book.confirm("pen", &sold).unwrap().record.state,
            ReservationState::Confirmed
        );
        assert_eq!(
            book.release("pen", &sold).map(|e| e.record),
            Err(StockError::Ended(ReservationState::Confirmed))
        );
        assert_eq!(
            book.release("pen", &back).unwrap().record.state,
            ReservationState::Released
        );
        assert_eq!(
            book.release("pen", &back).unwrap().record.state,
            ReservationState::Released
        );
        assert_eq!(
            book.confirm("pen", &back).map(|e| e.record),
            Err(StockError::Ended(ReservationState::Released))
        );
        let level = book.level("pen").unwrap();
        assert_eq!((level.available, level.held, level.sold), (7, 0, 3));
        assert_eq!(total(&book), 10);
    }

    #[test]
    fn nothing_adds_units_that_were_not_reserved() {
        let book = book(10);
        assert_eq!(
            book.release("pen", &service_kit::id::new_id().to_string())
                .map(|e| e.record),
            Err(StockError::UnknownReservation)
        );
        assert_eq!(
            book.release("pen", "9223372036854775807").map(|e| e.record),
            Err(StockError::UnknownReservation)
        );
        let id = book.reserve("pen", 4, None).unwrap().record.reservation_id;
        // Another item's reservation cannot be released through this one.
        assert_eq!(
            book.release("mug", &id).map(|e| e.record),
            Err(StockError::UnknownReservation)
        );
        let changed: Vec<bool> = (0..3)
            .map(|_| book.release("pen", &id).unwrap().changed)
            .collect();
        assert_eq!(changed, [true, false, false]);
        assert_eq!(book.available("pen"), Some(10));
        assert_eq!(total(&book), 10);
    }

    #[test]
    fn an_unconfirmed_reservation_expires_and_its_units_return() {
        let book = StockBook::new([("pen".to_owned(), 10)], Duration::from_millis(300));
        let late = book.reserve("pen", 4, None).unwrap().record.reservation_id;
        let kept = book.reserve("pen", 1, None).unwrap().record.reservation_id;
        book.confirm("pen", &kept).unwrap();
        assert!(book.expire_due().is_empty());
        std::thread::sleep(Duration::from_millis(400));
        let expired = book.expire_due();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].reservation_id, late);
        assert_eq!(expired[0].state, ReservationState::Expired);
        assert_eq!(
            book.confirm("pen", &late).map(|e| e.record),
            Err(StockError::Ended(ReservationState::Expired))
        );
        let level = book.level("pen").unwrap();
        assert_eq!((level.available, level.held, level.sold), (9, 0, 1));
    }

    #[test]
    fn finished_reservations_are_forgotten_oldest_first_with_their_keys() {
        let book = book(u64::MAX / 2);
        let first = book.reserve("pen", 1, Some("key-0")).unwrap().record;
        book.confirm("pen", &first.reservation_id).unwrap();
        let mut last = first.clone();
        for i in 1..=REMEMBERED_RESERVATIONS {
            last = book
                .reserve("pen", 1, Some(&format!("key-{i}")))
                .unwrap()
                .record;
            book.confirm("pen", &last.reservation_id).unwrap();
        }
        // The newest is remembered as it was made, key and all.
        let repeat = book.reserve("pen", 1, Some(&format!("key-{REMEMBERED_RESERVATIONS}")));
        let repeat = repeat.unwrap();
        assert!(!repeat.created);
        assert_eq!(repeat.record.reservation_id, last.reservation_id);
        assert_eq!(repeat.record.state, ReservationState::Confirmed);
        assert_eq!(
            repeat.record.key.as_deref(),
            Some(&*format!("key-{REMEMBERED_RESERVATIONS}"))
        );
        // The oldest is gone, and so is its key: using it again makes a new reservation.
        assert_eq!(
            book.confirm("pen", &first.reservation_id).map(|e| e.record),
            Err(StockError::UnknownReservation)
        );
        let again = book.reserve("pen", 1, Some("key-0")).unwrap();
        assert!(again.created);
        assert_ne!(again.record.reservation_id, first.reservation_id);
    }
}
