//! Idempotency keys: a request repeated with the same `Idempotency-Key` gets the first
//! request's answer instead of being done again, whether the repeat comes after the first
//! finished or while it is still running.

use std::{
    collections::{HashMap, VecDeque},
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use axum::http::{HeaderMap, StatusCode};
use tokio::{sync::watch, time::Instant};

use crate::ApiError;

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// A stored answer: status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The status code.
    pub status: StatusCode,
    /// The JSON body.
    pub body: serde_json::Value,
}

/// What to do with a request that carries a key.
pub enum Claim {
    /// First time: do the work, then [`Pending::finish`].
    New(Pending),
    /// Seen before: this is (or will be) the first request's answer.
    Repeat(Answer),
}

/// The right and duty to answer for a key. Dropping it without finishing (a panic, a
/// cancelled request) forgets the key, so a retry can do the work.
pub struct Pending {
    store: IdempotencyStore,
    key: String,
    answer: watch::Sender<Option<Answer>>,
    finished: bool,
}

impl Pending {
    /// Records `answer` for the key and hands it to every request waiting on it. Server errors
    /// are passed to the waiters but not kept: a later retry does the work again (safe, since
    /// what was done in between is itself idempotent or compensated).
    pub fn finish(mut self, answer: Answer) {
        self.finished = true;
        if answer.status.is_server_error() {
            self.store.forget(&self.key);
        }
        let _ = self.answer.send(Some(answer));
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.finished {
            self.store.forget(&self.key);
        }
    }
}

struct Entry {
    fingerprint: u64,
    created: Instant,
    answer: watch::Receiver<Option<Answer>>,
}

#[derive(Default)]
struct Keys {
    entries: HashMap<String, Entry>,
    /// Keys in creation order, for expiry and the size bound.
    order: VecDeque<(String, Instant)>,
}

/// Remembered keys, at most `capacity` of them and none older than `ttl`. Cloning shares it.
#[derive(Clone)]
pub struct IdempotencyStore {
    keys: Arc<Mutex<Keys>>,
    capacity: usize,
    ttl: Duration,
}

impl IdempotencyStore {
    /// A store bounded by `capacity` keys and `ttl` age.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            keys: Arc::default(),
            capacity,
            ttl,
        }
    }

    /// Longest key accepted.
    pub const MAX_KEY_LEN: usize = 200;

    /// Whether `key` is a valid key: 1 to [`Self::MAX_KEY_LEN`] visible ASCII characters.
    pub fn is_valid_key(key: &str) -> bool {
        (1..=Self::MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
    }

    /// The key of a request, if it has one: 1 to [`Self::MAX_KEY_LEN`] visible ASCII
    /// characters, else a 400.
    pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
        let Some(value) = headers.get(HEADER) else {
            return Ok(None);
        };
        value
            .to_str()
            .ok()
            .filter(|k| Self::is_valid_key(k))
            .map(|k| Some(k.to_owned()))
            .ok_or_else(|| {
                ApiError::bad_request("Idempotency-Key must be 1-200 visible ASCII characters")
            })
    }

    /// Claims `key` for a request whose content is `request`. A repeat waits (up to `wait`)
    /// for the first request's answer; a repeat with different content is a 422.
    pub async fn claim(
        &self,
        key: &str,
        request: &impl Hash,
        wait: Duration,
    ) -> Result<Claim, ApiError> {
        let fingerprint = {
            let mut hasher = DefaultHasher::new();
            request.hash(&mut hasher);
            hasher.finish()
        };
        let mut receiver = {
            let mut keys = self.lock();
            self.expire(&mut keys);
            match keys.entries.get(key) {
                Some(entry) if entry.fingerprint != fingerprint => {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Idempotency-Key was already used with a different request",
                    ));
                }
                Some(entry) => entry.answer.clone(),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    let now = Instant::now();
                    keys.entries.insert(
                        key.to_owned(),
                        Entry {
                            fingerprint,
                            created: now,
                            answer: receiver,
                        },
                    );
                    keys.order.push_back((key.to_owned(), now));
                    return Ok(Claim::New(Pending {
                        store: self.clone(),
                        key: key.to_owned(),
                        answer: sender,
                        finished: false,
                    }));
                }
            }
        };
        let answered = tokio::time::timeout(wait, receiver.wait_for(Option::is_some)).await;
        match answered {
            Ok(Ok(answer)) => Ok(Claim::Repeat(
                answer.clone().unwrap_or_else(unreachable_answer),
            )),
            // The first request was cancelled before answering, or is still running.
            _ => Err(ApiError::new(
                StatusCode::CONFLICT,
                "A request with this Idempotency-Key is still in progress; retry later",
            )),
        }
    }

    fn forget(&self, key: &str) {
        self.lock().entries.remove(key);
    }

    /// Drops keys past their age, and the oldest beyond the capacity, but never a key whose
    /// request is still running: forgetting it would let a repeat run the work a second
    /// time. Such keys go to the back of the queue, so the store can exceed its capacity by
    /// the number of requests in flight, and no more.
    fn expire(&self, keys: &mut Keys) {
        let mut skipped = 0;
        while let Some((key, created)) = keys.order.front().cloned() {
            // The queue also holds keys forgotten since (server errors): bound it too.
            let too_many =
                keys.entries.len() >= self.capacity || keys.order.len() >= 2 * self.capacity;
            if !(too_many || created.elapsed() >= self.ttl) || skipped >= keys.order.len() {
                break;
            }
            keys.order.pop_front();
            // Only if it is the same entry (a forgotten key may have been claimed again).
            let same = keys.entries.get(&key).filter(|e| e.created == created);
            match same {
                Some(entry) if entry.answer.borrow().is_none() => {
                    keys.order.push_back((key, created));
                    skipped += 1;
                }
                Some(_) => {
                    keys.entries.remove(&key);
                }
                None => {}
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Keys> {
        // Each critical section is a few map operations that cannot panic half-way.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `wait_for(Option::is_some)` only returns a `Some`; this keeps the code free of `unwrap`.
fn unreachable_answer() -> Answer {
    Answer {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: serde_json::json!({"error": "Internal error"}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(id: &str) -> Answer {
        Answer {
            status: StatusCode::CREATED,
            body: serde_json::json!({"order_id": id}),
        }
    }

    #[tokio::test]
    async fn a_repeat_gets_the_first_answer_and_a_different_body_is_refused() {
        let store = IdempotencyStore::new(10, Duration::from_secs(60));
        let Ok(Claim::New(first)) = store.claim("k", &"body", Duration::from_secs(1)).await else {
            panic!("first claim is new");
        };
        first.finish(ok("1"));
        assert!(
            matches!(store.claim("k", &"body", Duration::from_secs(1)).await, Ok(Claim::Repeat(a)) if a == ok("1"))
        );
        let refused = store
            .claim("k", &"other body", Duration::from_secs(1))
            .await
            .err()
            .expect("422");
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[tokio::test]
    async fn server_errors_and_abandoned_requests_are_not_remembered() {
        let store = IdempotencyStore::new(10, Duration::from_secs(60));
        let Ok(Claim::New(first)) = store.claim("k", &1, Duration::from_secs(1)).await else {
            panic!()
        };
        first.finish(Answer {
            status: StatusCode::BAD_GATEWAY,
            body: serde_json::json!({}),
        });
        assert!(matches!(
            store.claim("k", &1, Duration::from_secs(1)).await,
            Ok(Claim::New(_))
        ));
        // That claim was dropped unfinished: the key is free again.
        assert!(matches!(
            store.claim("k", &1, Duration::from_secs(1)).await,
            Ok(Claim::New(_))
        ));
    }

    #[tokio::test]
    async fn a_key_still_in_progress_is_never_evicted() {
        let store = IdempotencyStore::new(3, Duration::from_secs(60));
        let Ok(Claim::New(running)) = store.claim("running", &0, Duration::from_secs(1)).await
        else {
            panic!()
        };
        for i in 1..10 {
            let Ok(Claim::New(p)) = store
                .claim(&i.to_string(), &i, Duration::from_secs(1))
                .await
            else {
                panic!()
            };
            p.finish(ok(&i.to_string()));
        }
        // A repeat of the running request waits for its answer instead of starting anew.
        let repeat = tokio::spawn({
            let store = store.clone();
            async move { store.claim("running", &0, Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        running.finish(ok("r"));
        assert!(matches!(repeat.await.unwrap(), Ok(Claim::Repeat(a)) if a == ok("r")));
    }

    #[tokio::test]
    async fn keys_are_bounded_in_number() {
        let store = IdempotencyStore::new(3, Duration::from_secs(60));
        for i in 0..10 {
            let Ok(Claim::New(p)) = store
                .claim(&i.to_string(), &i, Duration::from_secs(1))
                .await
            else {
                panic!()
            };
            p.finish(ok(&i.to_string()));
        }
        assert!(store.lock().entries.len() <= 3);
        assert!(matches!(
            store.claim("0", &0, Duration::from_secs(1)).await,
            Ok(Claim::New(_))
        ));
    }
}
