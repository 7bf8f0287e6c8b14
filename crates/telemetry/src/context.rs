//! Which trace the code running now belongs to, across the two kinds of span this crate makes.
//!
//! The SERVER and CLIENT spans (`server`, `client`) are made with the OpenTelemetry API
//! directly: they are the widest and busiest spans of a request (a dozen attributes, a poll of
//! the whole handler or of the whole call each time it wakes), and as `tracing` spans they went
//! through the registry and every layer at each of those polls (BENCHMARKS.md, "What changed,
//! and what was traded away"). The spans a handler opens with `#[instrument]` or `info_span!` stay `tracing` spans.
//!
//! The two are joined through the OpenTelemetry context: the SERVER span's context is attached
//! around each poll of its handler, and tracing-opentelemetry takes it as the parent of a span
//! opened with no `tracing` span current (its `parent_context`, tracing-opentelemetry 0.34
//! `src/layer.rs`). Going the other way, [`current_context`] is the innermost of the two.

use std::{future::Future, sync::OnceLock};

use opentelemetry::{Context, context::FutureExt as _, trace::TraceContextExt};
use opentelemetry_sdk::trace::SdkTracer;
use tracing::Instrument as _;

/// The tracer of the SERVER and CLIENT spans; unset when telemetry is off, and then neither
/// kind of span is made at all.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

pub(crate) fn set_tracer(tracer: SdkTracer) {
    let _ = TRACER.set(tracer);
}

pub(crate) fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

/// The OpenTelemetry context of the code running now: the current `tracing` span's if it is
/// part of a trace, otherwise the attached OpenTelemetry context (inside a SERVER span but
/// outside any span of the handler's own).
///
/// The current span is looked up by id in the current dispatcher: `tracing::Span::current()`
/// would take a reference on it in the registry and give it back (two locked counts) for
/// every call made.
pub(crate) fn current_context() -> Context {
    let context = tracing::dispatcher::get_default(|dispatch| {
        let id = dispatch.current_span().id()?.clone();
        tracing_opentelemetry::get_otel_context(&id, dispatch)
    });
    match context {
        Some(context) if context.span().span_context().is_valid() => context,
        _ => Context::current(),
    }
}

/// `future`, kept in the trace of the code that calls this, wherever it is polled: for a task
/// handed to `tokio::spawn` (or a `TaskTracker`), which would otherwise start a trace of its
/// own. It carries both the current `tracing` span and the OpenTelemetry context.
pub fn in_current_trace<F: Future>(future: F) -> impl Future<Output = F::Output> {
    future.in_current_span().with_context(Context::current())
}
