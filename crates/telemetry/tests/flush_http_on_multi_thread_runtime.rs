//! Shutdown flushes pending spans over OTLP http on a multi_thread runtime, without hanging.
//! (One test per file: telemetry installs a process-wide subscriber.)

mod common;

#[tokio::test(flavor = "multi_thread")]
async fn pending_spans_are_exported_at_shutdown() {
    common::span_is_flushed_at_shutdown("http/protobuf").await;
}
