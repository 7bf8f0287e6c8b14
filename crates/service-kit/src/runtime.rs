//! The tokio runtime a service runs on: one thread, unless `TOKIO_WORKER_THREADS` (tokio's own
//! variable, validated here) asks for more.
//!
//! Why one: a service here needs a tenth of a core at the seed's load. With tokio's default, a
//! worker for every core, a worker that wakes to a request also wakes an idle sibling to share
//! the work, and that sibling finds none. On the benchmark's 2-core machine that doubled the
//! context switches of an order and was a third of its CPU, with or without tracing; one worker
//! a service also served more orders a second at saturation (BENCHMARKS.md, thirteenth round).
//!
//! One thread is tokio's current-thread scheduler on the process's main thread, not the
//! multi-thread scheduler with one worker: the same work on one thread, without the
//! work-stealing scheduler's bookkeeping or a main thread of its own parked beside the worker.
//! Both builds compared at the same time, it took 1.5–2.6 % less CPU an order at the seed's
//! load and 9–13 % less at saturation (BENCHMARKS.md, twenty-seventh round). Nothing here needs
//! the multi-thread scheduler: the one `block_in_place` (a telemetry guard dropped without its
//! flush) checks the flavour first. A service that needs more than a core sets
//! `TOKIO_WORKER_THREADS`, and gets tokio's multi-thread scheduler with that many workers.

use std::{future::Future, process::ExitCode};

use crate::{ConfigError, config_error};

/// Worker threads when `TOKIO_WORKER_THREADS` is unset.
pub const DEFAULT_WORKER_THREADS: usize = 1;

/// The most `TOKIO_WORKER_THREADS` may ask for: more is a typo, not a machine.
const MAX_WORKER_THREADS: usize = 1024;

/// `TOKIO_WORKER_THREADS` of a service: [`DEFAULT_WORKER_THREADS`] when unset.
pub fn worker_threads(lookup: impl Fn(&str) -> Option<String>) -> Result<usize, ConfigError> {
    Ok(asked_worker_threads(lookup)?.unwrap_or(DEFAULT_WORKER_THREADS))
}

/// `TOKIO_WORKER_THREADS` as set, `None` when unset; read here because tokio panics on a value
/// it cannot parse.
fn asked_worker_threads(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<usize>, ConfigError> {
    crate::faults::env_value(
        &lookup,
        "TOKIO_WORKER_THREADS",
        &format!("a number of threads, 1 to {MAX_WORKER_THREADS}"),
        |v| {
            v.parse()
                .ok()
                .filter(|n| (1..=MAX_WORKER_THREADS).contains(n))
        },
    )
}

/// Runs `main`, the whole service, on a runtime of [`worker_threads`] workers; a bad
/// `TOKIO_WORKER_THREADS` is one line and exit status 2, as every other bad setting.
pub fn block_on(
    service: &telemetry::ServiceInfo,
    main: impl Future<Output = ExitCode>,
) -> ExitCode {
    match worker_threads(|name| std::env::var(name).ok()) {
        Ok(workers) => run(service.name, Some(workers), main),
        Err(e) => config_error(service, &e),
    }
}

/// Runs `main` of a tool that is not a service (the demo's supervisor and trace store, the
/// load generator, the benchmark) on tokio's default runtime, a worker per core, unless
/// `TOKIO_WORKER_THREADS` says otherwise; a bad value is one line and exit status 2.
pub fn block_on_tool(name: &str, main: impl Future<Output = ExitCode>) -> ExitCode {
    match asked_worker_threads(|name| std::env::var(name).ok()) {
        Ok(workers) => run(name, workers, main),
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(crate::settings::CONFIG_ERROR_EXIT)
        }
    }
}

/// `main` on a runtime of `workers` threads: one is the current-thread scheduler on this
/// thread, more (or `None`, tokio's default of a worker per core) the multi-thread one.
fn run(name: &str, workers: Option<usize>, main: impl Future<Output = ExitCode>) -> ExitCode {
    let mut builder = if workers == Some(1) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    if let Some(workers) = workers.filter(|&workers| workers > 1) {
        builder.worker_threads(workers);
    }
    match builder.enable_all().build() {
        Ok(runtime) => runtime.block_on(main),
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threads(value: Option<&'static str>) -> Result<usize, ConfigError> {
        worker_threads(|name| {
            assert_eq!(name, "TOKIO_WORKER_THREADS");
            value.map(str::to_owned)
        })
    }

    #[test]
    fn one_worker_unless_told_and_any_count_from_one_to_1024() {
        assert_eq!(threads(None).ok(), Some(1));
        assert_eq!(threads(Some("4")).ok(), Some(4));
        assert_eq!(threads(Some(" 1024 ")).ok(), Some(1024));
        // A tool keeps tokio's own default.
        assert_eq!(asked_worker_threads(|_| None).ok(), Some(None));
        assert_eq!(
            asked_worker_threads(|_| Some("3".into())).ok(),
            Some(Some(3))
        );
    }

    #[test]
    fn a_count_that_is_no_count_is_a_config_error_naming_the_variable() {
        for bad in ["", "0", "-1", "two", "1025", "1.5"] {
            let error = threads(Some(bad)).expect_err(bad).to_string();
            assert!(error.contains("TOKIO_WORKER_THREADS"), "{error}");
            assert!(error.contains("1 to 1024"), "{error}");
        }
    }
}
