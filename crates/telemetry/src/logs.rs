//! Log records over OTLP: every log line a service writes (the ones `RUST_LOG` lets through)
//! also goes, with its span's trace and span ids and the service's resource, to the same
//! collector as the spans, batched and bounded like them.
//!
//! The bridge is opentelemetry-appender-tracing. It takes the ids from the OpenTelemetry
//! context that is current when the SDK receives the record, and this project turns off
//! tracing-opentelemetry's context activation (one context attach per poll of every
//! instrumented future, measured in BENCHMARKS.md). [`WithSpanContext`] attaches the event's
//! span context around each log event instead: the cost is paid per log line, not per poll.
//!
//! Losses are counted in `otel_sdk_logs_dropped_total{reason}` the way spans are
//! (`export_failed`, `queue_full`), and never touch a request: the batch processor exports from
//! its own thread.

use std::{
    sync::{LazyLock, atomic::Ordering},
    time::Duration,
};

use opentelemetry::{
    InstrumentationScope,
    logs::{AnyValue, LogRecord as _},
    trace::TraceContextExt,
};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    logs::{
        BatchLogProcessor, LogBatch, LogExporter as SdkLogExporter, LogProcessor, SdkLogRecord,
        SdkLoggerProvider,
    },
};
use tracing_subscriber::{Layer, layer::Context, registry::LookupSpan};

use opentelemetry_otlp::WithExportConfig as _;

use crate::{
    config::{ExporterKind, Protocol, TelemetryConfig},
    metrics::CounterVec,
    otlp::OtlpLogExporter,
    provider::ExporterError,
};

/// `otel_sdk_logs_dropped_total`, on `/metrics`.
static DROPPED_METRIC: LazyLock<CounterVec> = LazyLock::new(|| {
    crate::metrics::counter(
        "otel_sdk_logs_dropped",
        "Log records lost: reason=export_failed (the collector was unreachable or refused them), reason=queue_full (the export queue was full)",
        &["reason"],
    )
});

/// Builds the logger provider, or `None` when log records are not exported (`TELEMETRY=off`,
/// `OTEL_SDK_DISABLED=true`, `OTEL_LOGS_EXPORTER=none`).
pub fn build(config: &TelemetryConfig) -> Result<Option<SdkLoggerProvider>, ExporterError> {
    if config.tracing_off || config.sdk_disabled || !config.logs_exported {
        return Ok(None);
    }
    LazyLock::force(&DROPPED_METRIC);
    let endpoint = config.logs_endpoint.to_string();
    let in_flight = crate::dropped::InFlight::default();
    // The batch processor reads OTEL_BLRP_* itself; the queue bound is needed here too.
    let processor = match config.exporter {
        ExporterKind::Direct => batched(
            OtlpLogExporter::new(config).map_err(|reason| ExporterError::new(endpoint, reason))?,
            &in_flight,
        ),
        ExporterKind::OpentelemetryOtlp => {
            let builder = opentelemetry_otlp::LogExporter::builder();
            let exporter = match config.protocol {
                Protocol::Grpc => builder.with_tonic().with_endpoint(&endpoint).build(),
                Protocol::HttpProtobuf => builder.with_http().with_endpoint(&endpoint).build(),
            }
            .map_err(|reason| ExporterError::new(endpoint, reason))?;
            batched(exporter, &in_flight)
        }
    };
    Ok(Some(
        SdkLoggerProvider::builder()
            .with_resource(crate::provider::resource(config))
            .with_log_processor(CountingLogProcessor {
                inner: processor,
                in_flight,
                capacity: config.logs_max_queue_size,
                body_limit: config.attribute_value_limit,
            })
            .build(),
    ))
}

/// Wraps the appender so that each event is emitted with its span's OpenTelemetry context
/// current (see the module documentation), and never a line of the exporters' own crates: a
/// record about an export would be exported, and so on.
pub struct WithSpanContext<L>(pub L);

/// Crates whose lines stay on stdout: the exporters' transports and the SDK. A prefix, as an
/// `EnvFilter` directive matches (`hyper` covers `hyper_util`, `tower` covers `tower_http`).
const NEVER_EXPORTED: [&str; 6] = ["hyper", "h2", "tonic", "tower", "reqwest", "opentelemetry"];

impl<S, L> Layer<S> for WithSpanContext<L>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let target = event.metadata().target();
        if NEVER_EXPORTED
            .iter()
            .any(|crate_name| target.starts_with(crate_name))
        {
            return;
        }
        match crate::subscriber::event_span_context(event) {
            Some(span_context) => {
                let _attached = opentelemetry::Context::new()
                    .with_remote_span_context(span_context)
                    .attach();
                self.0.on_event(event, ctx);
            }
            None => self.0.on_event(event, ctx),
        }
    }
}

/// An OTLP partial success: counts `records` the collector accepted in a batch and then
/// refused as failed exports, and logs its message (to stdout only: the SDK keeps its export
/// thread's own lines out of the export).
pub(crate) fn count_rejected(records: i64, message: &str) {
    static THROTTLE: crate::dropped::Throttle = crate::dropped::Throttle::new();
    DROPPED_METRIC.add(&["export_failed"], records.max(0) as f64);
    if THROTTLE.due() {
        tracing::warn!(
            dropped = records,
            error = message,
            "the collector refused log records, or warned"
        );
    }
}

/// `exporter` behind the batch processor, its failed exports counted; each batch it takes
/// leaves `in_flight`.
fn batched<E: SdkLogExporter + 'static>(
    exporter: E,
    in_flight: &crate::dropped::InFlight,
) -> BatchLogProcessor {
    BatchLogProcessor::builder(CountingLogExporter {
        inner: exporter,
        in_flight: in_flight.clone(),
    })
    .build()
}

/// Counts the records of every failed export.
#[derive(Debug)]
struct CountingLogExporter<E> {
    inner: E,
    in_flight: crate::dropped::InFlight,
}

impl<E: SdkLogExporter> SdkLogExporter for CountingLogExporter<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let records = batch.iter().count();
        self.in_flight.fetch_sub(
            records.min(self.in_flight.load(Ordering::Acquire)),
            Ordering::AcqRel,
        );
        let result = self.inner.export(batch).await;
        if result.is_err() {
            // No log line here: the SDK suppresses its own threads' records, and the span
            // exporter's throttled warning already says the collector is unreachable.
            DROPPED_METRIC.add(&["export_failed"], records as f64);
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Keeps the queue bound in front of the batch processor and counts what it drops (the SDK
/// counts such drops only privately). A body longer than `body_limit` is cut here, before it
/// waits in the queue (the direct exporter cuts the other values while it encodes; a log line
/// may be any length, its attributes are the code's own).
#[derive(Debug)]
struct CountingLogProcessor<P> {
    inner: P,
    in_flight: crate::dropped::InFlight,
    capacity: usize,
    body_limit: usize,
}

impl<P: LogProcessor> LogProcessor for CountingLogProcessor<P> {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            DROPPED_METRIC.add(&["queue_full"], 1.0);
            return;
        }
        if let Some(AnyValue::String(body)) = record.body()
            && body.as_str().len() > self.body_limit
        {
            let cut = crate::dropped::cut(body.as_str(), self.body_limit).to_owned();
            record.set_body(AnyValue::String(cut.into()));
        }
        self.inner.emit(record, scope);
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
