//! The embedded default: `cargo run --release` starts a trace backend and the four services,
//! sends the two orders of the spec, and draws each trace in the terminal. No Docker needed.
//!
//! The services run as child processes of this same binary (`demo serve <service>`, the way
//! HotROD runs all its services from one binary), each with its own `service.name`, exporting
//! OTLP/gRPC to the embedded [`trace_store`], exactly as the separate binaries do.
//!
//! # Layout
//! - [`cli`]: the command line.
//! - [`run`]: the whole system: store, children, the two orders, then following new traces.
//! - [`supervisor`]: starting, health-checking and stopping the child processes.
//! - [`waterfall`]: drawing a trace, and finding the span that dominates it.
//! - [`serve`]: `demo serve <service>`, one service in the foreground.
//! - [`smoke`]: `demo smoke`, the pass/fail check of a running compose stack.

pub mod cli;
pub mod run;
pub mod serve;
pub mod smoke;
pub mod supervisor;
pub mod waterfall;
