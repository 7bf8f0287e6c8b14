//! The `tracing` subscriber: one layer that turns spans into OpenTelemetry spans, one that
//! writes JSON log lines to stdout, and one that sends the same lines as OTLP log records,
//! behind one [`Gate`].

use std::{cell::RefCell, sync::OnceLock};

use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_sdk::{logs::SdkLoggerProvider, trace::SdkTracer};
use tracing::dispatcher::WeakDispatch;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::{
    config::TelemetryConfig,
    gate::{EventsOnly, Gate, SpansOnly},
};

/// Installs the global subscriber. Returns an error if one is installed already.
///
/// `RUST_LOG` decides which log lines are written, and never which spans are traced: the
/// OpenTelemetry layer sees every INFO span and no event, the log layers every event
/// `RUST_LOG` lets through and no span (`gate`).
pub fn install(
    config: &TelemetryConfig,
    tracer: Option<SdkTracer>,
    logger: Option<&SdkLoggerProvider>,
) -> Result<(), tracing_subscriber::util::TryInitError> {
    let traces = tracer.map(|tracer| {
        SpansOnly(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_location(false)
                .with_threads(false)
                .with_target(false)
                .with_tracked_inactivity(false)
                .with_context_activation(false),
        )
    });

    let logs = tracing_subscriber::fmt::layer()
        .event_format(crate::log_lines::JsonLine::new(&config.service_name))
        .with_writer(std::io::stdout);
    // Validated in `TelemetryConfig`, so this fallback is unreachable in practice.
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));

    // The same lines as stdout, over OTLP (the exporters' own crates' lines excepted, in
    // `WithoutExporterLines`).
    let exported_logs = logger.map(|logger| {
        crate::logs::WithoutExporterLines(
            opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(logger),
        )
    });

    tracing_subscriber::registry()
        .with(Gate::new(traces.is_some(), filter))
        .with(traces)
        // Events only: a `fmt` layer formats the fields of every span it sees, at creation
        // and again at each `record`, for lines that print none of them (measured with
        // json-subscriber: a quarter of inventory-service's instructions at `RUST_LOG=info`).
        // The ids come from the OpenTelemetry layer instead, looked up once a line for both
        // (`EventsOnly` calls `with_line_context`).
        .with(EventsOnly(logs.and_then(exported_logs)))
        .try_init()?;
    tracing::dispatcher::get_default(|dispatch| {
        let _ = GLOBAL_DISPATCH.set(dispatch.downgrade());
    });
    Ok(())
}

/// The installed dispatcher, which `get_otel_context` needs to reach the OpenTelemetry layer.
/// It cannot be fetched while a log line is being written (the dispatcher is busy then), so it
/// is kept from install time. Weak, so it does not keep the subscriber alive by itself.
static GLOBAL_DISPATCH: OnceLock<WeakDispatch> = OnceLock::new();

thread_local! {
    /// The span context of the event being written on this thread: `None` outside
    /// [`with_line_context`], `Some(None)` for an event in no trace.
    static LINE_CONTEXT: RefCell<Option<Option<SpanContext>>> = const { RefCell::new(None) };
}

/// Runs `write` (the log layers, for `event`) with the event's span context looked up once for
/// all of them: each lookup goes through the dispatcher, the registry and the OpenTelemetry
/// layer (1.2 k instructions), and stdout and the OTLP record both need it.
pub(crate) fn with_line_context(event: &tracing::Event<'_>, write: impl FnOnce()) {
    let context = lookup_span_context(event);
    // Restored after, should the layers write a line of their own meanwhile.
    let outer = LINE_CONTEXT.with(|line| line.replace(Some(context)));
    write();
    LINE_CONTEXT.with(|line| *line.borrow_mut() = outer);
}

/// The OpenTelemetry ids of the span a log line is written in (see [`lookup_span_context`]),
/// as [`with_line_context`] found them for this event.
pub(crate) fn event_span_context(event: &tracing::Event<'_>) -> Option<SpanContext> {
    LINE_CONTEXT
        .with(|line| line.borrow().clone())
        .unwrap_or_else(|| lookup_span_context(event))
}

/// Gives `record` the ids of the span its log line is written in, as [`with_line_context`]
/// found them (the SDK gave it those of the current OpenTelemetry context, the SERVER span's:
/// see `logs`). A record made outside a log line, or for a line in no trace, keeps the SDK's.
pub(crate) fn set_line_trace_context(record: &mut opentelemetry_sdk::logs::SdkLogRecord) {
    use opentelemetry::logs::LogRecord as _;
    LINE_CONTEXT.with(|line| {
        if let Some(Some(span)) = &*line.borrow() {
            record.set_trace_context(span.trace_id(), span.span_id(), Some(span.trace_flags()));
        }
    });
}

/// The OpenTelemetry ids of the span a log line is written in: top-level `trace_id` and
/// `span_id` fields are what log backends (Loki's derived fields, for one) link to traces by.
///
/// The log layer sees no spans (see [`install`]), so its own context has no current span; the
/// registry's has, and so does an event's explicit parent. A line written inside a SERVER span
/// but in no span of the handler's own has the SERVER span's ids, from the attached
/// OpenTelemetry context (`context`).
fn lookup_span_context(event: &tracing::Event<'_>) -> Option<SpanContext> {
    let dispatch = GLOBAL_DISPATCH.get()?.upgrade()?;
    let id = match event.parent() {
        Some(id) => Some(id.clone()),
        None if event.is_contextual() => dispatch.current_span().id().cloned(),
        None => return None,
    };
    let span_context =
        match id.and_then(|id| tracing_opentelemetry::get_otel_context(&id, &dispatch)) {
            Some(context) => context.span().span_context().clone(),
            None => {
                opentelemetry::Context::map_current(|context| context.span().span_context().clone())
            }
        };
    span_context.is_valid().then_some(span_context)
}
