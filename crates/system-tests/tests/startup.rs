//! A bad setting stops a service at start: exit status 2 and one line naming the variable.

use std::time::Duration;

use serde_json::json;
use system_tests::{ORDER_SPANS, Otlp, Service, ServiceProcess, System, free_port, run_to_exit};

fn assert_rejected(binary: &str, env: &[(&str, &str)], variable: &str) {
    let (code, stderr) = run_to_exit(binary, env, Duration::from_secs(10));
    assert_eq!(code, Some(2), "{binary} with {env:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {stderr:?}");
    assert!(
        lines[0].contains(variable),
        "{:?} does not name {variable}",
        lines[0]
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_settings_exit_two_with_one_line_naming_the_variable() {
    for binary in [
        "order-service",
        "inventory-service",
        "payment-service",
        "notification-service",
    ] {
        assert_rejected(binary, &[("PORT", "abc")], "PORT");
        assert_rejected(binary, &[("HOST", "not-an-ip")], "HOST");
        assert_rejected(
            binary,
            &[("HTTP_IDLE_TIMEOUT_MS", "1000")],
            "HTTP_IDLE_TIMEOUT_MS",
        );
        assert_rejected(
            binary,
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")],
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        );
        assert_rejected(
            binary,
            &[("OTEL_TRACES_SAMPLER", "sometimes")],
            "OTEL_TRACES_SAMPLER",
        );
        // tokio itself panics on these.
        for threads in ["two", "0"] {
            assert_rejected(
                binary,
                &[("TOKIO_WORKER_THREADS", threads)],
                "TOKIO_WORKER_THREADS",
            );
        }
    }
    assert_rejected(
        "order-service",
        &[("INVENTORY_SERVICE_URL", "not a url")],
        "INVENTORY_SERVICE_URL",
    );
    assert_rejected(
        "order-service",
        &[("PAYMENT_SERVICE_URL", "payment:8003")],
        "PAYMENT_SERVICE_URL",
    );
    assert_rejected(
        "order-service",
        &[("NOTIFICATION_SERVICE_URL", "ftp://x")],
        "NOTIFICATION_SERVICE_URL",
    );
    assert_rejected(
        "inventory-service",
        &[("INVENTORY_STOCK", "book=lots")],
        "INVENTORY_STOCK",
    );
    assert_rejected(
        "payment-service",
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")],
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    );
    assert_rejected(
        "payment-service",
        &[("OTEL_SDK_DISABLED", "maybe")],
        "OTEL_SDK_DISABLED",
    );
    assert_rejected("payment-service", &[("RUST_LOG", "info,[[[")], "RUST_LOG");
    // The embedded demo's own runtime (its services run on theirs, as checked above).
    assert_rejected(
        "demo",
        &[("TOKIO_WORKER_THREADS", "many")],
        "TOKIO_WORKER_THREADS",
    );
    assert_rejected(
        "order-service",
        &[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "lots")],
        "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    );
    assert_rejected(
        "inventory-service",
        &[("OTEL_BSP_MAX_QUEUE_SIZE", "0")],
        "OTEL_BSP_MAX_QUEUE_SIZE",
    );
}

#[test]
fn a_busy_port_is_a_clear_error_not_a_panic() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let (code, stderr) = run_to_exit(
        "payment-service",
        &[("PORT", &port), ("OTEL_SDK_DISABLED", "true")],
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = free_port();
}

/// The names of the threads of process `pid` (within the 15 characters Linux keeps).
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("list the process's threads")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

#[tokio::test]
async fn a_service_runs_on_its_main_thread_alone_unless_tokio_worker_threads_asks_for_more() {
    let logs = tempfile::tempdir().expect("temp dir");
    // Telemetry off, so that only the runtime's threads count (with more than one worker the
    // exporters run threads of their own). tokio 1.54 names a multi-thread
    // runtime's workers "tokio-rt-worker"; the current-thread runtime runs on the main thread.
    for (asked, expected_threads, expected_workers) in
        [(None, 1, 0), (Some("1"), 1, 0), (Some("3"), 4, 3)]
    {
        let mut env = vec![("TELEMETRY".to_owned(), "off".to_owned())];
        if let Some(asked) = asked {
            env.push(("TOKIO_WORKER_THREADS".to_owned(), asked.to_owned()));
        }
        let mut service = ServiceProcess::spawn("payment-service", free_port(), &env, logs.path());
        service.wait_healthy(Duration::from_secs(20)).await;
        let threads = thread_names(service.pid());
        let workers = threads
            .iter()
            .filter(|name| *name == "tokio-rt-worker")
            .count();
        assert_eq!(
            (threads.len(), workers),
            (expected_threads, expected_workers),
            "TOKIO_WORKER_THREADS={asked:?}: threads {threads:?}"
        );
    }
}

#[tokio::test]
async fn a_traced_service_stays_one_thread_and_exports_from_it_over_either_transport() {
    // The exporters' senders are tasks of a one-thread service's runtime: tracing on, each
    // service is still its main thread alone, and its spans still arrive. (A thread started
    // and ended before the count would go unseen; every endpoint here is an address, so no
    // host name is resolved on tokio's blocking pool.)
    for otlp in [Otlp::Grpc, Otlp::HttpProtobuf] {
        let system = System::builder()
            .otlp(otlp)
            .env("TELEMETRY_EXPORTER", "direct")
            .start()
            .await;
        let answer = system
            .post_order(json!({"item": "book", "quantity": 2, "price": 9.99}))
            .await;
        assert_eq!(answer.status, 201, "{otlp:?}: {:?}", answer.body);
        let trace_id = answer.trace_id.expect("X-Trace-Id header");
        let spans = system.trace(&trace_id, ORDER_SPANS).await;
        assert_eq!(spans.len(), ORDER_SPANS, "{otlp:?}: the order's spans");
        for service in [
            Service::Order,
            Service::Inventory,
            Service::Payment,
            Service::Notification,
        ] {
            let threads = thread_names(system.process(service).pid());
            assert_eq!(
                threads.len(),
                1,
                "{otlp:?}, {}: {threads:?}",
                service.name()
            );
        }
    }
}
