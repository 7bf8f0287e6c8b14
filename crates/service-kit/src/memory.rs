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
//! So each service, once a burst of API requests is over, trims ([`release_after_bursts`]):
//! at the first second without an API request, for what the requests themselves freed, and
//! again once the burst's idle connections have been closed (the idle timeout,
//! `HTTP_IDLE_TIMEOUT_MS`, plus two seconds): their buffers, about 29 KiB a connection, are the
//! larger part of what a burst leaves. Under steady load it never trims (a trim walks and locks
//! every arena, and the pages would be faulted back in at once); `/health` and `/metrics` do
//! not count as requests, so a probe or a scrape does not start another trim. Elsewhere than on
//! glibc (musl, macOS), whose allocators return memory themselves or have no such call, it
//! does nothing.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// How often the request count is read.
const TICK: Duration = Duration::from_secs(1);

/// API requests this process has received (the routes of [`crate::app::api`], not `/health`,
/// `/metrics` or `/openapi.json`).
static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Counts one API request; called by a layer of [`crate::app::api`].
pub(crate) fn count_request() {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
}

/// Trims the allocator after each burst of API requests: at the first quiet tick, and again
/// once connections left idle by the burst have been closed after `idle_timeout`. Runs until
/// the runtime stops.
pub(crate) async fn release_after_bursts(idle_timeout: Duration) {
    let mut bursts = Bursts::new(idle_timeout);
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

/// Whether memory should be given back now, from the request count read at each tick.
#[derive(Debug)]
struct Bursts {
    /// The count at the previous tick.
    seen: u64,
    /// Ticks in a row at which the count had not moved, since it last did.
    quiet_ticks: u32,
    /// Whether the count has moved at all: before the first request there is nothing to give.
    requested: bool,
    /// The quiet tick by which idle connections are closed: past the idle timeout, and one
    /// more tick for the connections' tasks to have freed their buffers.
    closed_tick: u32,
}

impl Bursts {
    fn new(idle_timeout: Duration) -> Self {
        let closed_tick = u32::try_from(idle_timeout.as_secs()).unwrap_or(u32::MAX);
        Self {
            seen: 0,
            quiet_ticks: 0,
            requested: false,
            closed_tick: closed_tick.saturating_add(2),
        }
    }

    /// True twice per burst: at its first quiet tick, and at the tick by which its idle
    /// connections are closed, if the quiet lasts that long.
    fn ended(&mut self, requests: u64) -> bool {
        if requests != self.seen {
            self.seen = requests;
            self.quiet_ticks = 0;
            self.requested = true;
            return false;
        }
        self.quiet_ticks = self.quiet_ticks.saturating_add(1);
        self.requested && (self.quiet_ticks == 1 || self.quiet_ticks == self.closed_tick)
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
    use std::time::Duration;

    use super::Bursts;

    /// The ticks, counted from 0, at which memory is released over `ticks` quiet ticks.
    fn releases(bursts: &mut Bursts, requests: u64, ticks: usize) -> Vec<usize> {
        (0..ticks).filter(|_| bursts.ended(requests)).collect()
    }

    #[test]
    fn memory_is_released_after_each_burst_and_again_once_its_connections_are_closed() {
        let mut bursts = Bursts::new(Duration::from_secs(5));
        // No request yet: nothing to give back, however long it is quiet.
        assert_eq!(releases(&mut bursts, 0, 20), Vec::<usize>::new());
        // A burst: requests at every tick, never a release.
        for requests in [40, 90, 130] {
            assert!(!bursts.ended(requests));
        }
        // The first quiet tick, then once the 5 s idle connections are closed; then no more.
        assert_eq!(releases(&mut bursts, 130, 30), [0, 6]);
        // A request in the middle of the quiet starts it again.
        assert!(!bursts.ended(131));
        assert_eq!(releases(&mut bursts, 131, 4), [0]);
        assert!(!bursts.ended(132));
        assert_eq!(releases(&mut bursts, 132, 10), [0, 6]);
        // A longer idle timeout puts the second release later.
        let mut bursts = Bursts::new(Duration::from_secs(75));
        assert!(!bursts.ended(1));
        assert_eq!(releases(&mut bursts, 1, 100), [0, 76]);
    }
}
