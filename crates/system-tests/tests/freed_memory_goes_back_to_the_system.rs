//! After a burst, the memory the services freed goes back to the system
//! (`service_kit::memory::release_freed_memory`, which each service calls once a burst of
//! requests is over). It has a file (a test binary) to itself because it reads the process's
//! resident memory.

use system_tests::rss_bytes_of;

/// What the services' workers leave after a burst, made on purpose: a thread allocates 64 MiB in
/// 1 KiB pieces and frees 15 of every 16, so the free memory lies between live pieces, where
/// glibc never returns it by itself.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn freed_memory_scattered_between_live_allocations_goes_back_to_the_system() {
    let kept = std::thread::spawn(|| {
        let pieces: Vec<Vec<u8>> = (0..65_536).map(|i| vec![i as u8; 1024]).collect();
        pieces.into_iter().step_by(16).collect::<Vec<_>>()
    })
    .join()
    .expect("the allocating thread");
    let resident = || rss_bytes_of(std::process::id()).expect("VmRSS in /proc/self/status");
    let before = resident();
    service_kit::memory::release_freed_memory();
    let after = resident();
    assert_eq!(kept.len(), 4096);
    assert!(
        before.saturating_sub(after) > 24 * 1024 * 1024,
        "resident {before} bytes before the release, {after} after: expected over 24 MiB back"
    );
}
