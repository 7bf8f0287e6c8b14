//! Units per item, with reservations that are atomic under any concurrency.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
};

/// Why stock could not be reserved or released.
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
}

/// The catalogue and its counts. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct StockBook {
    /// Units available per item. One lock for the whole book: a check and its decrement happen
    /// under it together, so stock can neither go below zero nor be reserved twice.
    levels: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl StockBook {
    /// A book holding `levels`.
    pub fn new(levels: impl IntoIterator<Item = (String, u64)>) -> Self {
        Self {
            levels: Arc::new(Mutex::new(levels.into_iter().collect())),
        }
    }

    /// Units available of `item`, or `None` if it is unknown.
    pub fn available(&self, item: &str) -> Option<u64> {
        self.lock().get(item).copied()
    }

    /// Takes `quantity` units of `item`; returns what is left.
    pub fn reserve(&self, item: &str, quantity: u64) -> Result<u64, StockError> {
        let mut levels = self.lock();
        let available = levels
            .get_mut(item)
            .ok_or_else(|| StockError::UnknownItem(item.to_owned()))?;
        if *available < quantity {
            return Err(StockError::Insufficient {
                available: *available,
            });
        }
        *available -= quantity;
        Ok(*available)
    }

    /// Gives back `quantity` units of `item`; returns what is available after.
    pub fn release(&self, item: &str, quantity: u64) -> Result<u64, StockError> {
        let mut levels = self.lock();
        let available = levels
            .get_mut(item)
            .ok_or_else(|| StockError::UnknownItem(item.to_owned()))?;
        *available = available.saturating_add(quantity);
        Ok(*available)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        // Every critical section is a read or one arithmetic update: a panic cannot leave the
        // map inconsistent, so a poisoned lock is safe to keep using.
        self.levels.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_reservations_never_oversell() {
        let book = StockBook::new([("mug".to_owned(), 100)]);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let book = book.clone();
                std::thread::spawn(move || {
                    (0..50).filter(|_| book.reserve("mug", 1).is_ok()).count()
                })
            })
            .collect();
        let reserved: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(reserved, 100);
        assert_eq!(book.available("mug"), Some(0));
    }

    #[test]
    fn reserve_and_release_report_what_is_left() {
        let book = StockBook::new([("pen".to_owned(), 5)]);
        assert_eq!(book.reserve("pen", 3), Ok(2));
        assert_eq!(
            book.reserve("pen", 3),
            Err(StockError::Insufficient { available: 2 })
        );
        assert_eq!(book.release("pen", 3), Ok(5));
        assert_eq!(
            book.reserve("cup", 1),
            Err(StockError::UnknownItem("cup".to_owned()))
        );
    }
}
