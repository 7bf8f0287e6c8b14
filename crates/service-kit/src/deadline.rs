//! A time budget for a request, shared by every call made on its behalf, and bounded retries
//! for calls that are safe to repeat.

use std::{future::Future, time::Duration};

use tokio::time::Instant;

use crate::DownstreamError;

/// The moment a request's time runs out.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    /// `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self(Instant::now() + budget)
    }

    /// Time left, or `None` once it has run out.
    pub fn remaining(&self) -> Option<Duration> {
        self.0
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Time left for a call to `service`, or the error that says the budget is spent.
    pub fn for_call(&self, service: &'static str) -> Result<Duration, DownstreamError> {
        self.remaining()
            .ok_or(DownstreamError::BudgetSpent { service })
    }
}

/// Attempts at most for an idempotent call.
pub const MAX_ATTEMPTS: u32 = 3;

/// Calls `call` (given the time left) until it succeeds, fails for good, or [`MAX_ATTEMPTS`]
/// are made. Only a transient failure (no answer, 502/503/504) is retried, never a timeout (the
/// budget is spent) or a 4xx; pauses double from 50 ms, with up to as much again of jitter so
/// that callers do not retry in step. Use it only for calls that are safe to repeat.
pub async fn retry_idempotent<T, F, Fut>(
    service: &'static str,
    deadline: Deadline,
    mut call: F,
) -> Result<T, DownstreamError>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T, DownstreamError>>,
{
    let mut pause = Duration::from_millis(50);
    let mut attempt = 1;
    loop {
        let result = call(deadline.for_call(service)?).await;
        match result {
            Err(e) if attempt < MAX_ATTEMPTS && e.is_transient() && !e.is_timeout() => {
                let wait = pause + pause.mul_f64(fastrand::f64());
                if deadline.remaining().is_none_or(|left| left <= wait) {
                    return Err(e);
                }
                tracing::warn!(service, attempt, error = %e, "retrying an idempotent call");
                tokio::time::sleep(wait).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}
