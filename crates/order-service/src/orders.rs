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

/// Orders by id. Cloning shares the book.
#[derive(Clone, Default)]
pub struct OrderBook {
    inner: Arc<Mutex<Orders>>,
}

#[derive(Default)]
struct Orders {
    by_id: HashMap<Uuid, Order>,
    /// Ids in creation order, for eviction.
    age: VecDeque<Uuid>,
}

impl OrderBook {
    /// Remembers `order`, forgetting the oldest beyond [`REMEMBERED_ORDERS`].
    pub fn insert(&self, id: Uuid, order: Order) {
        let mut orders = self.lock();
        orders.by_id.insert(id, order);
        orders.age.push_back(id);
        while orders.age.len() > REMEMBERED_ORDERS {
            if let Some(oldest) = orders.age.pop_front() {
                orders.by_id.remove(&oldest);
            }
        }
    }

    /// The order `id`, if remembered.
    pub fn get(&self, id: &Uuid) -> Option<Order> {
        self.lock().by_id.get(id).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, Orders> {
        // Each critical section leaves the two collections consistent before it can panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
