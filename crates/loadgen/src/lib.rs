//! A load generator for order-service, to measure it and to fill the dashboards.
//!
//! Open loop sends at a fixed rate whatever the server does, and measures each request from the
//! moment it was *due*, not from when it was sent: a server that stalls cannot hide the queue
//! it causes (coordinated omission corrected). Closed loop keeps a fixed number of requests in
//! flight, which measures throughput. Latencies go into HdrHistograms, one per answer status.
//!
//! # Layout
//! - [`mix`]: the kinds of order sent and their weights.
//! - [`stats`]: latency histograms by status, and the report (table or JSON).
//! - [`drive`]: the open and closed loops.

pub mod drive;
pub mod mix;
pub mod stats;
