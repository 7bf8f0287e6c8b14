//! Which spans and events reach which layer, decided once for the whole subscriber.
//!
//! The OpenTelemetry layer must see every INFO span whatever `RUST_LOG` says (an `EnvFilter`
//! such as `warn` over the whole subscriber would disable the SERVER span's children, and
//! `set_parent` on a disabled span is a silent no-op), and no event (an event in a span would
//! become a span event). The log layers must see the events `RUST_LOG` lets through, and no
//! span. tracing-subscriber's per-layer filters say exactly that, but a filtered layer looks
//! the span up in the registry at every enter, exit and close of every span to ask whether it
//! sees it: with two of them, that was the first entry of the profile
//! (`sharded_slab::Pool::get`, `Context::if_enabled_for`; BENCHMARKS.md). Here one [`Gate`]
//! decides what exists at all, by kind and level, and two thin wrappers hand each layer only
//! the callbacks of its kind, with no lookup of the filter.

use std::any::TypeId;

use tracing::{
    Event, Level, Metadata, Subscriber, level_filters::LevelFilter, span, subscriber::Interest,
};
use tracing_subscriber::{EnvFilter, Layer, layer::Context};

/// The subscriber's only filter: a span exists if spans are traced and it is INFO or above;
/// an event exists if `RUST_LOG` lets it through.
///
/// `RUST_LOG` directives that name spans (`[reserve_stock]=debug`) never match, because no
/// span reaches the `EnvFilter`: the same as with the per-layer filter this replaced.
pub struct Gate {
    /// The most verbose span level traced, or `None` with tracing off.
    spans: Option<Level>,
    events: EnvFilter,
}

impl Gate {
    /// Spans at INFO and above when `traced`; events as `events` (from `RUST_LOG`) says.
    pub fn new(traced: bool, events: EnvFilter) -> Self {
        Self {
            spans: traced.then_some(Level::INFO),
            events,
        }
    }

    fn span_wanted(&self, meta: &Metadata<'_>) -> bool {
        self.spans
            .is_some_and(|most_verbose| *meta.level() <= most_verbose)
    }
}

impl<S: Subscriber> Layer<S> for Gate {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if !meta.is_span() {
            return Layer::<S>::register_callsite(&self.events, meta);
        }
        if self.span_wanted(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        if meta.is_span() {
            self.span_wanted(meta)
        } else {
            Layer::<S>::enabled(&self.events, meta, ctx)
        }
    }

    /// The more verbose of the two: with tracing off and `RUST_LOG=warn`, WARN, so that an
    /// INFO span or event is refused at its callsite without being built
    /// (`tests/quiet_logs_without_telemetry_build_no_spans.rs`).
    fn max_level_hint(&self) -> Option<LevelFilter> {
        let spans = self.spans.map_or(LevelFilter::OFF, LevelFilter::from_level);
        let events = Layer::<S>::max_level_hint(&self.events).unwrap_or(LevelFilter::TRACE);
        Some(spans.max(events))
    }
}

/// A layer that is told about spans and never about events.
///
/// Exits are forwarded: tracing-opentelemetry 0.34 stores the clock as the span's end time at
/// every exit (`src/layer.rs`, `on_exit`), and that is what ends a span when its work ends. A
/// span closes only once its last child has closed (the registry's children hold their
/// parent), so without the exits a span whose child outlives it (`send_notification`, started
/// in `process_order` and finished after the answer) would end with that child, after its
/// own parent (`tests/order_trace.rs`). The fourteenth round left exits out to save a lookup
/// a poll, and made that mistake (BENCHMARKS.md, sixteenth round).
pub struct SpansOnly<L>(pub L);

impl<S: Subscriber, L: Layer<S>> Layer<S> for SpansOnly<L> {
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.0.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        self.0.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        self.0.on_record(id, values, ctx);
    }

    fn on_follows_from(&self, id: &span::Id, follows: &span::Id, ctx: Context<'_, S>) {
        self.0.on_follows_from(id, follows, ctx);
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.0.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.0.on_exit(id, ctx);
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        self.0.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &span::Id, new: &span::Id, ctx: Context<'_, S>) {
        self.0.on_id_change(old, new, ctx);
    }

    // `tracing_opentelemetry::get_otel_context` finds the layer's context through this.
    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(self as *const Self as *const ());
        }
        // SAFETY: forwarded unchanged; the inner layer upholds the contract for its own types.
        unsafe { self.0.downcast_raw(id) }
    }
}

/// A layer that is told about events and never about spans: the log layers.
pub struct EventsOnly<L>(pub L);

impl<S: Subscriber, L: Layer<S>> Layer<S> for EventsOnly<L> {
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.0.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.0.on_layer(subscriber);
    }

    /// The log layers it wraps find the event's span context looked up once for them all.
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        crate::subscriber::with_line_context(event, || self.0.on_event(event, ctx));
    }

    #[allow(unsafe_code)]
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            return Some(self as *const Self as *const ());
        }
        // SAFETY: as in `SpansOnly`.
        unsafe { self.0.downcast_raw(id) }
    }
}
