//! Giving memory back once a burst of requests is over.
//!
//! glibc's allocator keeps what a thread freed in that thread's arena, and returns pages to the
//! system only from the top of a heap. A burst (many connections, each with its buffers, and the
//! spans and log records of the requests on them) leaves the arenas of the runtime's workers at
//! the burst's size, with the freed memory scattered between what is still live: after 60 s at
//! 500 orders/s, order-service's resident size stayed at 15–21 MiB (15 runs) once the load had
//! stopped, and in one of them its glibc arenas held 13.3 MB from the system for 6.9 MB in use
//! (`malloc_stats`). `malloc_trim(0)` hands the free pages inside the arenas back: done by hand
//! on the four services after such a run, it took 2.1–2.6 MiB off order-service (BENCHMARKS.md,
//! eighth round).
//!
//! So each service, once a burst of API requests is over, trims once
//! ([`release_after_bursts`]). Over means [`QUIET_TICKS`] seconds without an API request: by
//! then the burst's idle connections have been closed (`serve::IDLE_CONNECTION_TIMEOUT`), and
//! their buffers, about 29 KiB a connection, are the larger part of what a burst leaves. Under
//! steady load it never trims (a trim walks and locks every arena, and the pages would be
//! faulted back in at once); `/health` and `/metrics` do not count as requests, so a probe or a
//! scrape does not start another trim. Elsewhere than on glibc (musl, macOS), whose allocators
//! return memory themselves or have no such call, it does nothing.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// How often the request count is read.
const TICK: Duration = Duration::from_secs(1);

/// Ticks without an API request that end a burst: past the time after which the server closes
/// an idle connection, and one more tick for the connections' tasks to have freed their buffers.
const QUIET_TICKS: u32 = crate::serve::IDLE_CONNECTION_TIMEOUT.as_secs() as u32 + 2;

/// API requests this process has received (the routes of [`crate::app::api`], not `/health`,
/// `/metrics` or `/openapi.json`).
static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Counts one API request; called by a layer of [`crate::app::api`].
pub(crate) fn count_request() {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
}

/// Trims the allocator whenever a burst of API requests has been followed by [`QUIET_TICKS`]
/// quiet ticks. Runs until the runtime stops.
pub(crate) async fn release_after_bursts() {
    let mut bursts = Bursts::default();
    loop {
        tokio::time::sleep(TICK).await;
        if bursts.ended(REQUESTS.load(Ordering::Relaxed)) {
            let started = std::time::Instant::now();
            let released = release_freed_memory();
            tracing::debug!(
                released,
                took_us = started.elapsed().as_micros() as u64,
                "gave the allocator's free pages back after a burst"
            );
        }
    }
}

/// Whether a burst just ended, from the request count read at each tick.
#[derive(Debug, Default)]
struct Bursts {
    /// The count at the previous tick.
    seen: u64,
    /// Ticks in a row at which the count had not moved.
    quiet_ticks: u32,
    /// The count when memory was last released.
    released_at: u64,
}

impl Bursts {
    /// True once per burst: at the [`QUIET_TICKS`]th tick in a row with no request, if requests
    /// came since the last release.
    fn ended(&mut self, requests: u64) -> bool {
        if requests != self.seen {
            self.seen = requests;
            self.quiet_ticks = 0;
            return false;
        }
        self.quiet_ticks = self.quiet_ticks.saturating_add(1);
        if self.quiet_ticks >= QUIET_TICKS && requests != self.released_at {
            self.released_at = requests;
            return true;
        }
        false
    }
}

/// Asks the allocator to give the free pages of every arena back to the system. Returns
/// whether it gave any. Tested in `system-tests/tests/freed_memory_goes_back_to_the_system.rs`,
/// a test binary of its own since it reads the process's resident memory.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_freed_memory() -> bool {
    // SAFETY: `malloc_trim` takes no pointer and touches only the allocator's own free lists,
    // under the same arena locks every `malloc` and `free` take.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators return memory themselves, or have no such call.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed_memory() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::{Bursts, QUIET_TICKS};

    #[test]
    fn memory_is_released_once_after_each_burst_once_its_connections_are_closed() {
        let mut bursts = Bursts::default();
        let quiet = |bursts: &mut Bursts, requests, ticks| {
            (0..ticks)
                .map(|_| bursts.ended(requests))
                .collect::<Vec<_>>()
        };
        // No request yet: nothing to give back, however long it is quiet.
        assert!(quiet(&mut bursts, 0, 20).iter().all(|released| !released));
        // A burst: requests at every tick.
        for requests in [40, 90, 130] {
            assert!(!bursts.ended(requests));
        }
        // Not before the idle connections are closed; then once.
        let ticks = quiet(&mut bursts, 130, QUIET_TICKS + 5);
        let released: Vec<usize> = (0..ticks.len()).filter(|&i| ticks[i]).collect();
        assert_eq!(released, [QUIET_TICKS as usize - 1]);
        assert!(QUIET_TICKS as u64 > crate::serve::IDLE_CONNECTION_TIMEOUT.as_secs());
        // A request in the middle of the quiet starts the count again.
        let mut bursts = Bursts::default();
        assert!(!bursts.ended(10));
        assert!(quiet(&mut bursts, 10, QUIET_TICKS - 1).iter().all(|r| !r));
        assert!(!bursts.ended(11));
        assert!(quiet(&mut bursts, 11, QUIET_TICKS - 1).iter().all(|r| !r));
        assert!(bursts.ended(11));
    }
}
