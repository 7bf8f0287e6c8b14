//! Marking a span as failed, the way trace backends expect.

use opentelemetry::{KeyValue, trace::Status};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Sets `span`'s status to ERROR with `error` as description, and records an `exception`
/// event (semantic conventions: `exception.type`, `exception.message`).
///
/// Call it only for failures of the system (a 5xx outcome, a dependency down), never for a
/// caller's mistake: a 4xx is not an error of the span that answered it.
pub fn record_error(span: &Span, error: &(dyn std::error::Error + 'static)) {
    let (attributes, message) = exception(error);
    span.add_event("exception", attributes);
    span.set_status(Status::error(message));
}

/// [`record_error`] for a span made with the OpenTelemetry API (the CLIENT span).
pub(crate) fn record_exception(
    span: &mut impl opentelemetry::trace::Span,
    error: &(dyn std::error::Error + 'static),
) {
    let (attributes, message) = exception(error);
    span.add_event("exception", attributes);
    span.set_status(Status::error(message));
}

/// The `exception` event's attributes, and the status description.
fn exception(error: &(dyn std::error::Error + 'static)) -> (Vec<KeyValue>, String) {
    let message = error_chain(error);
    let attributes = vec![
        KeyValue::new("exception.type", type_name(error)),
        KeyValue::new("exception.message", message.clone()),
    ];
    (attributes, message)
}

/// Sets `span`'s status to ERROR with `description`, for a failure that has no error value
/// (an outcome that stayed unknown, say). Log lines are not span events here, so an
/// `error!` alone does not mark its span.
pub fn record_failure(span: &Span, description: impl Into<std::borrow::Cow<'static, str>>) {
    span.set_status(Status::error(description));
}

/// `error: cause: cause`, the way it reads in a log.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !message.contains(&cause_text) {
            message.push_str(": ");
            message.push_str(&cause_text);
        }
        source = cause.source();
    }
    message
}

/// A type name for the event; `dyn Error` has no name, so the Debug form's leading word is used
/// (`Reqwest(...)` → `Reqwest`), which is what a reader would search for.
fn type_name(error: &dyn std::error::Error) -> String {
    let debug = format!("{error:?}");
    debug
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("Error")
        .to_owned()
}
