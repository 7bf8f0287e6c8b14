//! A harness that runs the system as a user does: the four service binaries as separate
//! processes on free 127.0.0.1 ports, exporting real OTLP to a [`TraceStore`] served by the
//! test itself, so a test can send an order and then read the trace it produced.
//!
//! # Layout
//! - `binaries`: builds the service binaries once and finds them.
//! - `process`: [`ServiceProcess`], one running binary with its log.
//! - `system`: [`System`] and [`SystemBuilder`], the four services plus the store.
//! - `tree`: [`render_tree`], a trace as indented text, to compare with SPEC §2.
//! - [`compose`]: `docker-compose.yml` as a test reads it (a service's files, flags,
//!   environment), and [`compose::HostMap`], where each compose `host:port` runs here.
//! - [`promql`]: the metric names a PromQL expression reads.
//! - [`stack`]: [`stack::LocalStack`], the compose stack as far as it runs without Docker
//!   (the four binaries, the trace-store as the Collector, the real Prometheus).

mod binaries;
pub mod compose;
mod process;
pub mod promql;
pub mod stack;
mod system;
mod tree;

pub use binaries::binary_path;
pub use process::{
    ServiceProcess, free_port, rss_bytes_of, run_program_for_output, run_program_to_exit,
    run_to_exit,
};
pub use system::{OrderAnswer, Otlp, Service, System, SystemBuilder, send};
pub use trace_store::{AttributeValue, SpanKind, SpanStatus, StoredSpan, TraceStore};
pub use tree::render_tree;

/// Spans in the trace of a created order: SPEC §2's seventeen, plus the four of
/// `confirm_inventory` (the step that sells the reserved units once they are paid for).
pub const ORDER_SPANS: usize = 21;
