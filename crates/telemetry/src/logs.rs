//! Log records over OTLP: every log line a service writes (the ones `RUST_LOG` lets through)
//! also goes, with its span's trace and span ids and the service's resource, to the same
//! collector as the spans, batched and bounded like them.
//!
//! The bridge is opentelemetry-appender-tracing. The SDK gives its record the ids of the
//! OpenTelemetry context that is current, and this project turns off tracing-opentelemetry's
//! context activation (one context attach per poll of every instrumented future, measured in
//! BENCHMARKS.md): that context is the SERVER span's, not the handler span the line is
//! written in. The processor sets the ids the line's own span has (`subscriber`, looked up
//! once a line for stdout and the record), so the cost is paid per log line, not per poll.
//!
//! The processor is this crate's (`otlp::OtlpLogProcessor`, each record encoded as it is
//! written), or with `TELEMETRY_EXPORTER=opentelemetry-otlp` the SDK's batch processor in
//! front of that crate's exporter. Losses are counted in `otel_sdk_logs_dropped_total{reason}`
//! the way spans are (`export_failed`, `queue_full`), and never hold up a request: an export
//! waits on its own task or thread, never in a request's.

use std::{
    sync::{LazyLock, atomic::Ordering},
    time::Duration,
};

use opentelemetry::{
    InstrumentationScope,
    logs::{AnyValue, LogRecord as _},
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
    otlp::OtlpLogProcessor,
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
    let endpoint = config.logs_export.endpoint.to_string();
    let builder = SdkLoggerProvider::builder().with_resource(crate::provider::resource(config));
    let builder = match config.exporter {
        // Encoded as each record is written, its string values (the body too) cut as they are.
        ExporterKind::Direct => builder.with_log_processor(
            OtlpLogProcessor::new(config).map_err(|reason| ExporterError::new(endpoint, reason))?,
        ),
        ExporterKind::OpentelemetryOtlp => {
            let exporter = opentelemetry_otlp::LogExporter::builder();
            let exporter = match config.logs_export.protocol {
                Protocol::Grpc => exporter.with_tonic().with_endpoint(&endpoint).build(),
                Protocol::HttpProtobuf => exporter.with_http().with_endpoint(&endpoint).build(),
            }
            .map_err(|reason| ExporterError::new(endpoint, reason))?;
            // The batch processor reads OTEL_BLRP_* itself; the queue bound is needed here too.
            let in_flight = crate::dropped::InFlight::default();
            builder.with_log_processor(CountingLogProcessor {
                inner: batched(exporter, &in_flight),
                in_flight,
                capacity: config.logs_max_queue_size,
                body_limit: config.attribute_value_limit,
            })
        }
    };
    Ok(Some(builder.build()))
}

/// Counts `records` lost for `reason` (`export_failed`, `queue_full`).
pub(crate) fn count_lost(records: usize, reason: &str) {
    DROPPED_METRIC.add(&[reason], records as f64);
}

/// Wraps the appender so that it never sees a line of the exporters' own crates: a record
/// about an export would be exported, and so on.
pub struct WithoutExporterLines<L>(pub L);

/// Crates whose lines stay on stdout: the exporters' transports and the SDK. A prefix, as an
/// `EnvFilter` directive matches (`hyper` covers `hyper_util`, `tower` covers `tower_http`).
const NEVER_EXPORTED: [&str; 6] = ["hyper", "h2", "tonic", "tower", "reqwest", "opentelemetry"];

impl<S, L> Layer<S> for WithoutExporterLines<L>
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
        self.0.on_event(event, ctx);
    }
}

/// An OTLP partial success: counts `records` the collector accepted in a batch and then
/// refused as failed exports, and logs its message (to stdout only: the senders, the SDK's
/// threads and this crate's tasks or threads, keep their own lines out of the export).
pub(crate) fn count_rejected(records: i64, message: &str) {
    static THROTTLE: crate::dropped::Throttle = crate::dropped::Throttle::new();
    count_lost(usize::try_from(records).unwrap_or(0), "export_failed");
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
            count_lost(records, "export_failed");
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

/// In front of the SDK's batch processor (`TELEMETRY_EXPORTER=opentelemetry-otlp`): keeps the
/// queue bound and counts what it drops (the SDK counts such drops only privately), and gives
/// each record its line's span ids, as `OtlpLogProcessor` does. A body longer than
/// `body_limit` is cut here, before it waits in the queue: that crate sends values whole (a
/// log line may be any length; its attributes are the code's own).
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
            count_lost(1, "queue_full");
            return;
        }
        crate::subscriber::set_line_trace_context(record);
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
