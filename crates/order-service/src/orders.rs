//! The orders created, kept in memory for `GET /orders/{id}`.

use std::{
    collections::VecDeque,
    hash::{BuildHasher, RandomState},
    sync::{Arc, Mutex, MutexGuard},
};

use hashbrown::HashTable;
use uuid::Uuid;

use crate::api::Order;

/// How many orders are remembered; the oldest are forgotten first, so memory stays bounded
/// under a load test.
pub const REMEMBERED_ORDERS: usize = 10_000;

/// What is kept of an order, in under half of an [`Order`]'s memory (10 000 of them are
/// most of order-service's heap): its id is kept once, beside it in the ring (the index holds
/// places, not ids), the other services' ids are kept as their 16 bytes, and the item and the
/// status share one allocation, without the spare capacity a `String` may carry.
struct Remembered {
    /// The item's name, then the status.
    texts: Box<str>,
    /// Where the status starts in `texts`.
    item_len: usize,
    charge_id: ForeignId,
    reservation_id: ForeignId,
    quantity: i64,
    price: f64,
    amount: f64,
    amount_cents: u64,
}

/// An id another service gave (a charge, a reservation). Both give UUIDs in their lowercase
/// hyphenated form, kept as their 16 bytes; any other text is kept as it came, so what
/// `GET /orders/{id}` answers is always what the service said.
enum ForeignId {
    Uuid(Uuid),
    Text(Box<str>),
}

impl Remembered {
    fn item(&self) -> &str {
        &self.texts[..self.item_len]
    }

    fn status(&self) -> &str {
        &self.texts[self.item_len..]
    }
}

impl From<String> for ForeignId {
    fn from(text: String) -> Self {
        match Uuid::try_parse(&text) {
            // Only the form that formats back to the same text: `Uuid` parses several.
            Ok(uuid) if *uuid.hyphenated().encode_lower(&mut Uuid::encode_buffer()) == *text => {
                Self::Uuid(uuid)
            }
            _ => Self::Text(text.into()),
        }
    }
}

impl std::fmt::Display for ForeignId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Uuid(uuid) => uuid.hyphenated().fmt(f),
            Self::Text(text) => f.write_str(text),
        }
    }
}

/// Orders by id. Cloning shares the book.
#[derive(Clone, Default)]
pub struct OrderBook {
    inner: Arc<Mutex<Orders>>,
}

/// The remembered orders in a ring, oldest first, and an index of their places in it. A hash
/// table of whole orders would hold 16 384 of them for 10 000 (its load factor); this index
/// holds that many places, of 8 bytes each, and finds an id's place by comparing the id the
/// ring holds there.
struct Orders {
    ring: VecDeque<(Uuid, Remembered)>,
    /// The place of the ring's front; each order placed takes the next.
    front: u64,
    places: HashTable<u64>,
    hasher: RandomState,
}

impl Default for Orders {
    fn default() -> Self {
        // Allocated whole but touched only as orders come: a growing ring would copy itself.
        Self {
            ring: VecDeque::with_capacity(REMEMBERED_ORDERS),
            front: 0,
            places: HashTable::with_capacity(REMEMBERED_ORDERS),
            hasher: RandomState::new(),
        }
    }
}

/// What the ring holds at `place`, if it still holds it.
fn at(ring: &VecDeque<(Uuid, Remembered)>, front: u64, place: u64) -> Option<&(Uuid, Remembered)> {
    ring.get(usize::try_from(place.checked_sub(front)?).ok()?)
}

impl OrderBook {
    /// Remembers `order` as the order `id` (`get` gives `id` as its `order_id`), forgetting
    /// the oldest beyond [`REMEMBERED_ORDERS`].
    pub fn insert(&self, id: Uuid, order: Order) {
        let item_len = order.item.len();
        let mut texts = String::with_capacity(item_len + order.status.len());
        texts.push_str(&order.item);
        texts.push_str(&order.status);
        let remembered = Remembered {
            texts: texts.into(),
            item_len,
            charge_id: order.charge_id.into(),
            reservation_id: order.reservation_id.into(),
            quantity: order.quantity,
            price: order.price,
            amount: order.amount,
            amount_cents: order.amount_cents,
        };
        let mut guard = self.lock();
        let Orders {
            ring,
            front,
            places,
            hasher,
        } = &mut *guard;
        if ring.len() == REMEMBERED_ORDERS
            && let Some((oldest, _)) = ring.pop_front()
        {
            // An id placed again points at its newer place, which stays.
            let oldest_place = *front;
            if let Ok(entry) = places.find_entry(hasher.hash_one(oldest), |&p| p == oldest_place) {
                entry.remove();
            }
            *front += 1;
        }
        let place = *front + ring.len() as u64;
        ring.push_back((id, remembered));
        let hash = hasher.hash_one(id);
        let same_id = |&p: &u64| at(ring, *front, p).is_some_and(|(held, _)| *held == id);
        match places.find_mut(hash, same_id) {
            Some(earlier) => *earlier = place,
            None => {
                // Every place in the index is in the ring, so `at` finds each one.
                let rehash =
                    |&p: &u64| at(ring, *front, p).map_or(0, |(held, _)| hasher.hash_one(held));
                places.insert_unique(hash, place, rehash);
            }
        }
    }

    /// The order `id`, if remembered.
    pub fn get(&self, id: &Uuid) -> Option<Order> {
        let orders = self.lock();
        let held_at =
            |&p: &u64| at(&orders.ring, orders.front, p).is_some_and(|(held, _)| held == id);
        let place = *orders.places.find(orders.hasher.hash_one(id), held_at)?;
        let (_, order) = at(&orders.ring, orders.front, place)?;
        Some(Order {
            order_id: id.to_string(),
            item: order.item().to_owned(),
            quantity: order.quantity,
            price: order.price,
            amount: order.amount,
            amount_cents: order.amount_cents,
            charge_id: order.charge_id.to_string(),
            reservation_id: order.reservation_id.to_string(),
            status: order.status().to_owned(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Orders> {
        // Each critical section leaves the ring and its index consistent before it can panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: Uuid) -> Order {
        Order {
            order_id: id.to_string(),
            item: "book".to_owned(),
            quantity: 3,
            price: 12.5,
            amount: 37.5,
            amount_cents: 3750,
            charge_id: service_kit::id::new_id().to_string(),
            reservation_id: service_kit::id::new_id().to_string(),
            status: "created".to_owned(),
        }
    }

    /// Places an order, as `change` makes it, under a new id, and checks `get` gives it whole.
    fn comes_back_whole(book: &OrderBook, change: impl FnOnce(Order) -> Order) {
        let id = service_kit::id::new_id();
        let placed = change(order(id));
        book.insert(id, placed.clone());
        assert_eq!(book.get(&id), Some(placed));
    }

    #[test]
    fn a_remembered_order_comes_back_as_it_was_placed() {
        let book = OrderBook::default();
        let id = service_kit::id::new_id();
        let placed = order(id);
        book.insert(id, placed.clone());
        assert_eq!(book.get(&id), Some(placed));
        // The item and the status are kept together: each comes back whole, whatever its
        // characters or its length.
        for (item, status) in [("carnet à spirale", "créé"), ("", "created"), ("book", "")] {
            comes_back_whole(&book, |placed| Order {
                item: item.to_owned(),
                status: status.to_owned(),
                ..placed
            });
        }
        assert_eq!(book.get(&service_kit::id::new_id()), None);
    }

    #[test]
    fn the_oldest_orders_are_forgotten_beyond_the_bound() {
        let book = OrderBook::default();
        let ids: Vec<Uuid> = (0..REMEMBERED_ORDERS + 2)
            .map(|_| service_kit::id::new_id())
            .collect();
        for id in &ids {
            book.insert(*id, order(*id));
        }
        assert_eq!(book.get(&ids[0]), None);
        assert_eq!(book.get(&ids[1]), None);
        assert!(book.get(&ids[2]).is_some());
        assert!(book.get(&ids[REMEMBERED_ORDERS + 1]).is_some());
    }

    #[test]
    fn other_services_ids_come_back_as_they_were_given() {
        let book = OrderBook::default();
        let given = [
            "3F2504E0-4F89-11D3-9A0C-0305E82C3301",
            "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}",
            "3f2504e04f8911d39a0c0305e82c3301",
            "ch_42",
            "",
        ];
        for text in given {
            comes_back_whole(&book, |placed| Order {
                charge_id: text.to_owned(),
                reservation_id: text.to_owned(),
                ..placed
            });
        }
    }

    #[test]
    fn an_order_placed_again_outlives_its_first_place() {
        let book = OrderBook::default();
        let again = service_kit::id::new_id();
        book.insert(again, order(again));
        let newer = Order {
            quantity: 7,
            ..order(again)
        };
        book.insert(again, newer.clone());
        // Enough orders to forget the first place, not the second.
        for _ in 0..REMEMBERED_ORDERS - 1 {
            let id = service_kit::id::new_id();
            book.insert(id, order(id));
        }
        assert_eq!(book.get(&again), Some(newer));
        let id = service_kit::id::new_id();
        book.insert(id, order(id));
        assert_eq!(book.get(&again), None);
    }
}
