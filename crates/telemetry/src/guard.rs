//! The value that owns the tracer provider and flushes it when the service stops.

use std::time::Duration;

use opentelemetry_sdk::{logs::SdkLoggerProvider, trace::SdkTracerProvider};

/// What is flushed at shutdown: the spans and, when exported, the log records.
struct Providers {
    tracer: SdkTracerProvider,
    logger: Option<SdkLoggerProvider>,
}

/// How long shutdown may spend flushing spans before it gives up on them.
pub const FLUSH_TIMEOUT: Duration = Duration::from_millis(2500);

/// Returned by [`crate::init`]. Call [`TelemetryGuard::shutdown`] after the server has stopped:
/// a provider that is merely dropped loses its last batch.
#[must_use = "dropping the guard early stops span export; call shutdown().await at exit"]
pub struct TelemetryGuard {
    /// `None` once shut down.
    provider: Option<Providers>,
}

impl TelemetryGuard {
    pub(crate) fn new(tracer: SdkTracerProvider, logger: Option<SdkLoggerProvider>) -> Self {
        Self {
            provider: Some(Providers { tracer, logger }),
        }
    }

    /// A guard with nothing to flush (`TELEMETRY=off`).
    pub(crate) fn none() -> Self {
        Self { provider: None }
    }

    /// Exports every pending span, waiting at most [`FLUSH_TIMEOUT`].
    ///
    /// The flush runs on a blocking thread. Calling the provider's shutdown directly from async
    /// code deadlocks a `current_thread` runtime: the exporters' senders are its tasks (and
    /// tonic's connection task too), they need the very thread the call blocks, and the spans
    /// are lost after the timeout.
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            let flushed = tokio::task::spawn_blocking(move || shutdown_provider(&provider)).await;
            if let Err(e) = flushed {
                eprintln!("telemetry: span flush thread failed: {e}");
            }
        }
    }
}

fn shutdown_provider(provider: &Providers) {
    // Log records first: the last lines (a shutdown message) belong to spans already ended.
    if let Some(logger) = &provider.logger
        && let Err(e) = logger.shutdown_with_timeout(FLUSH_TIMEOUT)
    {
        eprintln!("telemetry: flushing log records at shutdown failed: {e}");
    }
    if let Err(e) = provider.tracer.shutdown_with_timeout(FLUSH_TIMEOUT) {
        // The subscriber may already be gone at this point; stderr is always there.
        eprintln!("telemetry: flushing spans at shutdown failed: {e}");
    }
}

impl Drop for TelemetryGuard {
    /// A best effort for code paths that never reach `shutdown().await` (early returns, panics).
    fn drop(&mut self) {
        let Some(provider) = self.provider.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Err(_) => shutdown_provider(&provider),
            Ok(handle) => match handle.runtime_flavor() {
                tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(|| shutdown_provider(&provider));
                }
                // Blocking here would deadlock (see `shutdown`); flush from a detached thread.
                // When the senders are tasks of this runtime (a one-thread service's), they
                // export only if the runtime keeps running, which after a panic it does not;
                // senders of their own threads do, unless the process's exit cuts them short.
                // A service on one thread (the current-thread scheduler,
                // `service_kit::runtime`) gets here only when its main future panics: every
                // return flushes through `shutdown`.
                _ => drop(std::thread::spawn(move || shutdown_provider(&provider))),
            },
        }
    }
}
