//! Counting the spans telemetry loses, so that an outage of the collector is visible instead of
//! silent. Requests never wait for export: the batch processor queues spans (bounded by
//! `OTEL_BSP_MAX_QUEUE_SIZE`) and exports them from its own thread; when an export fails, its
//! spans are gone, and this wrapper counts them.

use std::{
    sync::{
        LazyLock, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter},
};

use crate::metrics::CounterVec;

/// Spans lost since start, in this process: the running total for the log line (the metric
/// below is what is exported).
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// `otel_sdk_spans_dropped_total`, on `/metrics`.
static DROPPED_METRIC: LazyLock<CounterVec> = LazyLock::new(|| {
    crate::metrics::counter(
        "otel_sdk_spans_dropped",
        "Spans that could not be exported (the collector was unreachable or refused them)",
        &[],
    )
});

/// At most one log line per this interval, however many exports fail.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// An exporter that counts the spans of every failed export.
#[derive(Debug)]
pub struct CountingExporter<E> {
    inner: E,
    last_log: Mutex<Option<Instant>>,
}

impl<E> CountingExporter<E> {
    /// Wraps `inner`.
    pub fn new(inner: E) -> Self {
        LazyLock::force(&DROPPED_METRIC);
        Self {
            inner,
            last_log: Mutex::new(None),
        }
    }

    fn count_failure(&self, spans: usize, error: &dyn std::fmt::Display) {
        let total = DROPPED.fetch_add(spans as u64, Ordering::Relaxed) + spans as u64;
        DROPPED_METRIC.add(&[], spans as f64);
        let mut last = self.last_log.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() >= LOG_INTERVAL) {
            *last = Some(Instant::now());
            // No span is current on the exporter thread: this is a log line, not a span event.
            tracing::warn!(dropped = spans, dropped_total = total, error = %error, "span export failed; spans dropped");
        }
    }
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        if let Err(error) = &result {
            self.count_failure(spans, error);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
