//! Counting the spans telemetry loses, so that an outage of the collector is visible instead of
//! silent. Requests never wait for export: the span processor queues spans (bounded by
//! `OTEL_BSP_MAX_QUEUE_SIZE`) and exports them from a sender of its own (a task or a thread,
//! `otlp::processor`). Spans are lost two ways,
//! each counted in `otel_sdk_spans_dropped_total{reason}`:
//! - `export_failed`: an export failed (the collector is down, or refused);
//! - `queue_full`: the queue was full (a collector that accepts and then stalls).
//!
//! This crate's processor (`otlp::processor`) counts both itself. In front of the SDK's batch
//! processor (`TELEMETRY_EXPORTER=opentelemetry-otlp`), [`CountingExporter`] counts the failed
//! exports and [`CountingProcessor`] keeps the queue's bound itself: the SDK counts such drops
//! only in a private field, reported once, at shutdown.

use std::{
    sync::{
        LazyLock, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use opentelemetry::Context;
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{Span, SpanData, SpanExporter, SpanProcessor},
};
use std::sync::Arc;

use crate::metrics::CounterVec;

/// Spans lost since start, in this process: the running total for the log line (the metric
/// below is what is exported).
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// `otel_sdk_spans_dropped_total`, on `/metrics`.
static DROPPED_METRIC: LazyLock<CounterVec> = LazyLock::new(|| {
    crate::metrics::counter(
        "otel_sdk_spans_dropped",
        "Spans lost: reason=export_failed (the collector was unreachable or refused them), reason=queue_full (the export queue was full)",
        &["reason"],
    )
});

/// At most one log line per this interval, however many exports fail.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// At most one log line per [`LOG_INTERVAL`] for each reason, however many spans are lost.
#[derive(Debug, Default)]
pub(crate) struct Throttle(Mutex<Option<Instant>>);

impl Throttle {
    pub(crate) const fn new() -> Self {
        Self(Mutex::new(None))
    }

    pub(crate) fn due(&self) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|at| at.elapsed() >= LOG_INTERVAL);
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

/// Spans lost since start, in this process, for whatever reason.
#[cfg(test)]
pub(crate) fn lost_so_far() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Counts `spans` lost for `reason`; returns the running total.
fn count_lost(spans: usize, reason: &str) -> u64 {
    DROPPED_METRIC.add(&[reason], spans as f64);
    DROPPED.fetch_add(spans as u64, Ordering::Relaxed) + spans as u64
}

/// Spans handed to the batch processor and not yet handed to the exporter, shared by
/// [`CountingProcessor`] and [`CountingExporter`].
pub type InFlight = Arc<AtomicUsize>;

/// Counts `spans` the collector accepted in a batch and then refused (an OTLP partial
/// success), as failed exports.
pub(crate) fn count_rejected(spans: i64, reason: &str) {
    static THROTTLE: Throttle = Throttle::new();
    let spans = usize::try_from(spans).unwrap_or(0);
    let total = count_lost(spans, "export_failed");
    if THROTTLE.due() {
        tracing::warn!(
            dropped = spans,
            dropped_total = total,
            error = reason,
            "the collector refused spans; spans dropped"
        );
    }
}

/// An exporter that counts the spans of every failed export. It first cuts every string value
/// (attributes, event attributes, status description) to `value_limit` bytes, for
/// opentelemetry-otlp's exporter, which sends them whole (this crate's exporter cuts while it
/// encodes): a few large values (a 16 KiB `User-Agent`, say) could otherwise push one batch
/// past the receiver's 4 MiB limit, and the whole batch, everyone's spans, would be refused.
#[derive(Debug)]
pub struct CountingExporter<E> {
    inner: E,
    in_flight: InFlight,
    value_limit: usize,
    throttle: Throttle,
}

impl<E> CountingExporter<E> {
    /// Wraps `inner`; each batch it exports leaves `in_flight`; string values longer than
    /// `value_limit` bytes are cut (at a character boundary).
    pub fn new(inner: E, in_flight: InFlight, value_limit: usize) -> Self {
        register();
        Self {
            inner,
            in_flight,
            value_limit,
            throttle: Throttle::default(),
        }
    }
}

/// Puts `otel_sdk_spans_dropped_total` on `/metrics` (at 0) before any span is lost.
pub(crate) fn register() {
    LazyLock::force(&DROPPED_METRIC);
}

/// Counts the `spans` of an export that failed, and says so at most once per [`LOG_INTERVAL`].
pub(crate) fn count_failed_export(
    spans: usize,
    error: &dyn std::fmt::Display,
    throttle: &Throttle,
) {
    let total = count_lost(spans, "export_failed");
    if throttle.due() {
        // No span is current in the sender: this is a log line, not a span event.
        tracing::warn!(dropped = spans, dropped_total = total, error = %error, "span export failed; spans dropped");
    }
}

/// Counts a span dropped because `capacity` spans were already waiting for export.
pub(crate) fn count_queue_full(capacity: usize, throttle: &Throttle) {
    let total = count_lost(1, "queue_full");
    if throttle.due() {
        tracing::warn!(
            dropped_total = total,
            queue = capacity,
            "span export queue full (the collector is slow); spans dropped"
        );
    }
}

/// A span processor in front of the batch processor that keeps its queue bound itself and
/// counts the spans it must drop when the queue is full. Its count of spans in flight is
/// never below the batch processor's queue (a batch leaves it only when it is exported), so
/// the batch processor's own queue never overflows: every drop is seen here.
#[derive(Debug)]
pub struct CountingProcessor<P> {
    inner: P,
    in_flight: InFlight,
    capacity: usize,
    throttle: Throttle,
}

impl<P> CountingProcessor<P> {
    /// Wraps `inner`, whose queue holds `capacity` spans.
    pub fn new(inner: P, in_flight: InFlight, capacity: usize) -> Self {
        Self {
            inner,
            in_flight,
            capacity,
            throttle: Throttle::default(),
        }
    }
}

impl<P: SpanProcessor> SpanProcessor for CountingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            count_queue_full(self.capacity, &self.throttle);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, mut batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        for span in &mut batch {
            limit_values(span, self.value_limit);
        }
        self.in_flight.fetch_sub(
            spans.min(self.in_flight.load(Ordering::Acquire)),
            Ordering::AcqRel,
        );
        let result = self.inner.export(batch).await;
        if let Err(error) = &result {
            count_failed_export(spans, error, &self.throttle);
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

/// Cuts every string value of `span` longer than `limit` bytes.
fn limit_values(span: &mut SpanData, limit: usize) {
    for kv in &mut span.attributes {
        limit_value(&mut kv.value, limit);
    }
    for event in &mut span.events.events {
        for kv in &mut event.attributes {
            limit_value(&mut kv.value, limit);
        }
    }
    if let opentelemetry::trace::Status::Error { description } = &mut span.status
        && description.len() > limit
    {
        *description = cut(description, limit).to_owned().into();
    }
}

fn limit_value(value: &mut opentelemetry::Value, limit: usize) {
    use opentelemetry::{Array, Value};
    match value {
        Value::String(s) if s.as_str().len() > limit => {
            *s = cut(s.as_str(), limit).to_owned().into();
        }
        Value::Array(Array::String(items)) => {
            for s in items.iter_mut().filter(|s| s.as_str().len() > limit) {
                *s = cut(s.as_str(), limit).to_owned().into();
            }
        }
        _ => {}
    }
}

/// The longest prefix of `text` of at most `limit` bytes that ends on a character boundary.
pub(crate) fn cut(text: &str, limit: usize) -> &str {
    let mut end = limit.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn values_are_cut_on_a_character_boundary() {
        assert_eq!(cut("abcdef", 4), "abcd");
        assert_eq!(cut("ab", 4), "ab");
        // "é" is two bytes: a cut inside it falls back before it.
        assert_eq!(cut("aéb", 2), "a");
    }
}
