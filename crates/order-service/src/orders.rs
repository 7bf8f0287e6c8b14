//! The orders created, kept in memory for `GET /orders/{id}`.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use uuid::Uuid;

use crate::api::Order;

/// How many orders are remembered; the oldest are forgotten first, so memory stays bounded
/// under a load test.
pub const REMEMBERED_ORDERS: usize = 10_000;

/// What is kept of an order, in under half of an [`Order`]'s memory (10 000 of them are most
/// of order-service's heap): its id is the map's key, and its strings are boxed, without the
/// spare capacity a `String` may carry.
struct Remembered {
    item: Box<str>,
    charge_id: Box<str>,
    reservation_id: Box<str>,
    status: Box<str>,
    quantity: i64,
    price: f64,
    amount: f64,
    amount_cents: u64,
}

/// Orders by id. Cloning shares the book.
#[derive(Clone, Default)]
pub struct OrderBook {
    inner: Arc<Mutex<Orders>>,
}

#[derive(Default)]
struct Orders {
    by_id: HashMap<Uuid, Remembered>,
    /// Ids in creation order, for eviction.
    age: VecDeque<Uuid>,
}

impl OrderBook {
    /// Remembers `order` as the order `id` (`get` gives `id` as its `order_id`), forgetting
    /// the oldest beyond [`REMEMBERED_ORDERS`].
    pub fn insert(&self, id: Uuid, order: Order) {
        let remembered = Remembered {
            item: order.item.into(),
            charge_id: order.charge_id.into(),
            reservation_id: order.reservation_id.into(),
            status: order.status.into(),
            quantity: order.quantity,
            price: order.price,
            amount: order.amount,
            amount_cents: order.amount_cents,
        };
        let mut orders = self.lock();
        orders.by_id.insert(id, remembered);
        orders.age.push_back(id);
        while orders.age.len() > REMEMBERED_ORDERS {
            if let Some(oldest) = orders.age.pop_front() {
                orders.by_id.remove(&oldest);
            }
        }
    }

    /// The order `id`, if remembered.
    pub fn get(&self, id: &Uuid) -> Option<Order> {
        let orders = self.lock();
        let order = orders.by_id.get(id)?;
        Some(Order {
            order_id: id.to_string(),
            item: order.item.to_string(),
            quantity: order.quantity,
            price: order.price,
            amount: order.amount,
            amount_cents: order.amount_cents,
            charge_id: order.charge_id.to_string(),
            reservation_id: order.reservation_id.to_string(),
            status: order.status.to_string(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Orders> {
        // Each critical section leaves the two collections consistent before it can panic.
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
            charge_id: Uuid::new_v4().to_string(),
            reservation_id: Uuid::new_v4().to_string(),
            status: "created".to_owned(),
        }
    }

    #[test]
    fn a_remembered_order_comes_back_as_it_was_placed() {
        let book = OrderBook::default();
        let id = Uuid::new_v4();
        let placed = order(id);
        book.insert(id, placed.clone());
        assert_eq!(book.get(&id), Some(placed));
        assert_eq!(book.get(&Uuid::new_v4()), None);
    }

    #[test]
    fn the_oldest_orders_are_forgotten_beyond_the_bound() {
        let book = OrderBook::default();
        let ids: Vec<Uuid> = (0..REMEMBERED_ORDERS + 2).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            book.insert(*id, order(*id));
        }
        assert_eq!(book.get(&ids[0]), None);
        assert_eq!(book.get(&ids[1]), None);
        assert!(book.get(&ids[2]).is_some());
        assert!(book.get(&ids[REMEMBERED_ORDERS + 1]).is_some());
    }
}
