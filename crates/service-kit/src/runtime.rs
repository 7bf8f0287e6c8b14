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
//! Both builds compared at the same time, it took 1.6–2.6 % less CPU an order at the seed's
//! load and 9–13 % less at saturation (BENCHMARKS.md, twenty-seventh round). With tracing on
//! it stays one thread: the exporters' senders are tasks of this runtime (`telemetry`'s
//! `otlp::processor`, twenty-eighth round), until a host name is resolved (tokio's blocking
//! pool; in compose, at a service's first call) or unless `TELEMETRY_EXPORTER` asks for
//! opentelemetry-otlp's exporters, whose batch processors are threads. A service's code
//! blocks its thread nowhere: its flush at shutdown waits on a blocking thread while the
//! runtime's thread runs the senders (`telemetry::TelemetryGuard`). Only a guard dropped
//! without that flush (the main future panicked: every return flushes) is flushed from a
//! detached thread, which cannot export while the runtime is gone: its last spans are lost,
//! where a worker of the multi-thread scheduler used to flush them in place. A service that
//! needs more than a core sets `TOKIO_WORKER_THREADS`, and gets tokio's multi-thread scheduler
//! with that many workers.
//!
//! The tools stay on the multi-thread scheduler whatever `TOKIO_WORKER_THREADS` says, as before:
//! they are not what bench measures, and a tool whose main task waits for something its other
//! tasks serve (bench's trace store takes its services' last export while bench waits for
//! them to exit) keeps working even if that wait should block.

use std::{future::Future, process::ExitCode};

use crate::{ConfigError, config_error};

/// A service's threads when `TOKIO_WORKER_THREADS` is unset.
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

/// Runs `main`, the whole service, on [`worker_threads`] threads: one is tokio's
/// current-thread scheduler on this thread, more its multi-thread scheduler with that many
/// workers. A bad `TOKIO_WORKER_THREADS` is one line and exit status 2, as every other bad
/// setting.
pub fn block_on(
    service: &telemetry::ServiceInfo,
    main: impl Future<Output = ExitCode>,
) -> ExitCode {
    match worker_threads(|name| std::env::var(name).ok()) {
        Ok(1) => run(
            service.name,
            tokio::runtime::Builder::new_current_thread(),
            main,
        ),
        Ok(workers) => run(service.name, multi_thread(Some(workers)), main),
        Err(e) => config_error(service, &e),
    }
}

/// Runs `main` of a tool that is not a service (the demo's supervisor and trace store, the
/// load generator, the benchmark) on tokio's multi-thread scheduler, a worker per core unless
/// `TOKIO_WORKER_THREADS` says otherwise (one included: see the module's documentation); a bad
/// value is one line and exit status 2.
pub fn block_on_tool(name: &str, main: impl Future<Output = ExitCode>) -> ExitCode {
    match asked_worker_threads(|name| std::env::var(name).ok()) {
        Ok(workers) => run(name, multi_thread(workers), main),
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(crate::settings::CONFIG_ERROR_EXIT)
        }
    }
}

/// tokio's multi-thread scheduler with `workers` workers (`None`: a worker per core).
fn multi_thread(workers: Option<usize>) -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = workers {
        builder.worker_threads(workers);
    }
    builder
}

/// `main` on the runtime `builder` makes.
fn run(
    name: &str,
    mut builder: tokio::runtime::Builder,
    main: impl Future<Output = ExitCode>,
) -> ExitCode {
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
