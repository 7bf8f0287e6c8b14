//! Telemetry must never hurt the requests it observes: with the collector gone for 10 s under a
//! steady load, every order still succeeds, lost spans are counted and reported, memory stays
//! bounded, and export resumes by itself when the collector returns.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use serde_json::json;
use system_tests::{Service, System};
use tokio::net::TcpListener;
use trace_store::TraceStore;

/// A gRPC receiver on `addr` with a runtime of its own, so that killing it drops its open
/// connections too, as a crashed collector would.
struct Receiver(Option<tokio::runtime::Runtime>);

impl Receiver {
    fn start(addr: SocketAddr, store: &TraceStore) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = std::net::TcpListener::bind(addr).expect("bind the receiver's port");
        listener.set_nonblocking(true).expect("non-blocking");
        let store = store.clone();
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("tokio listener");
            trace_store::serve_grpc(listener, store, std::future::pending()).await
        });
        Self(Some(runtime))
    }

    fn kill(mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// `otel_sdk_spans_dropped_total`, all reasons, on `service`'s /metrics (0 before any loss).
async fn dropped_spans(system: &System, service: Service) -> f64 {
    dropped_spans_for(system, service, "").await
}

/// `otel_sdk_spans_dropped_total` whose labels contain `reason` (all lines for "").
async fn dropped_spans_for(system: &System, service: Service, reason: &str) -> f64 {
    counter_total(system, service, "otel_sdk_spans_dropped_total", reason).await
}

/// The sum of `metric`'s series whose labels contain `reason`, on `service`'s /metrics.
async fn counter_total(system: &System, service: Service, metric: &str, reason: &str) -> f64 {
    let metrics = system.metrics(service).await;
    metrics
        .lines()
        .filter(|l| l.starts_with(metric) && l.contains(reason))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_accepts_and_stalls_fails_no_order_and_its_full_queue_is_counted() {
    // Accepts every connection and never answers: each export waits for its 30 s timeout
    // while spans pile up behind it.
    let stall = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", stall.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = stall.accept().await {
            held.push(connection);
        }
    });
    let system = System::builder()
        .otlp(system_tests::Otlp::HttpProtobuf)
        .otlp_endpoint(endpoint)
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "64")
        .env("OTEL_BSP_EXPORT_TIMEOUT", "30000")
        .start()
        .await;
    let started = Instant::now();
    for _ in 0..20 {
        let answer = system
            .post_order(json!({"item": "book", "quantity": 1, "price": 1.0}))
            .await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        assert!(
            answer.elapsed < Duration::from_secs(2),
            "{:?}",
            answer.elapsed
        );
    }
    println!(
        "20 orders against a stalled collector in {:?}",
        started.elapsed()
    );
    // 20 orders make ~120 order-service spans: far more than a 64-span queue.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut dropped = 0.0;
    while Instant::now() < deadline {
        dropped = dropped_spans_for(&system, Service::Order, "queue_full").await;
        if dropped > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("order-service: {dropped} spans dropped, queue full");
    assert!(dropped >= 20.0, "queue-full drops not counted: {dropped}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_outage_under_load_fails_no_order_and_is_counted() {
    // Spans and log records alike: both are lost while the collector is down, counted, and
    // exported again once it is back.
    let store = TraceStore::new();
    let addr: SocketAddr = format!("127.0.0.1:{}", system_tests::free_port())
        .parse()
        .expect("addr");
    let receiver = Receiver::start(addr, &store);
    let system = System::builder()
        .otlp_endpoint(format!("http://{addr}"))
        .start()
        .await;

    let started = Instant::now();
    let mut receiver = Some(receiver);
    let mut answers = Vec::new();
    let mut restarted_at = None;
    // Two orders a second for 17 s; the collector is down from 3 s to 13 s.
    while started.elapsed() < Duration::from_secs(17) {
        let at = started.elapsed();
        if at >= Duration::from_secs(3)
            && restarted_at.is_none()
            && let Some(running) = receiver.take()
        {
            running.kill();
        }
        if at >= Duration::from_secs(13) && restarted_at.is_none() {
            receiver = Some(Receiver::start(addr, &store));
            restarted_at = Some(Instant::now());
        }
        let answer = system
            .post_order(json!({"item": "pen", "quantity": 1, "price": 1.0}))
            .await;
        answers.push((at, answer.status, answer.trace_id));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let failed: Vec<_> = answers
        .iter()
        .filter(|(_, status, _)| *status != 201)
        .collect();
    assert!(
        failed.is_empty(),
        "orders failed during the outage: {failed:?}"
    );
    let slowest = answers.len();
    assert!(slowest >= 25, "only {slowest} orders were sent");

    // Spans of orders placed after the restart arrive: export resumed by itself.
    let after: Vec<&String> = answers
        .iter()
        .filter(|(at, _, _)| *at >= Duration::from_secs(14))
        .filter_map(|(_, _, id)| id.as_ref())
        .collect();
    assert!(!after.is_empty());
    for id in &after {
        let spans = store
            .wait_for(id, Duration::from_secs(10), |s| {
                s.len() >= system_tests::ORDER_SPANS
            })
            .await;
        assert_eq!(
            spans.len(),
            system_tests::ORDER_SPANS,
            "trace {id} after the restart"
        );
    }

    // Log records of those orders arrive too: their export resumed as well.
    for id in &after {
        let created =
            |logs: &[trace_store::StoredLog]| logs.iter().any(|l| l.body == "order created");
        let logs = store
            .wait_for_logs(id, Duration::from_secs(10), created)
            .await;
        assert!(
            created(&logs),
            "no log record of trace {id} after the restart"
        );
    }

    // The loss is counted on /metrics and reported in the log, at a bounded rate.
    let dropped = dropped_spans(&system, Service::Order).await;
    assert!(dropped > 0.0, "{dropped}");
    let lost_logs = counter_total(
        &system,
        Service::Order,
        "otel_sdk_logs_dropped_total",
        "export_failed",
    )
    .await;
    assert!(
        lost_logs > 0.0,
        "log records lost in the outage: {lost_logs}"
    );
    let reports = system
        .process(Service::Order)
        .stdout()
        .lines()
        .filter(|l| l.contains("span export failed; spans dropped"))
        .count();
    assert!(
        (1..=3).contains(&reports),
        "{reports} log lines about dropped spans in a 10 s outage"
    );

    // Memory stays bounded: the export queue is capped.
    for service in [
        Service::Order,
        Service::Inventory,
        Service::Payment,
        Service::Notification,
    ] {
        let rss = system.process(service).rss_bytes().expect("RSS");
        assert!(rss < 64 << 20, "{} uses {} MiB", service.name(), rss >> 20);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_unreachable_from_the_start_changes_nothing_for_orders() {
    let nowhere = format!("http://127.0.0.1:{}", system_tests::free_port());
    let system = System::builder().otlp_endpoint(nowhere).start().await;
    for _ in 0..5 {
        let answer = system
            .post_order(json!({"item": "book", "quantity": 2, "price": 1.0}))
            .await;
        assert_eq!(answer.status, 201);
        assert!(answer.trace_id.is_some());
    }
    // Spans are exported every 100 ms here: their loss shows within a second.
    let mut dropped = 0.0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        dropped = dropped_spans(&system, Service::Inventory).await;
        if dropped > 0.0 {
            break;
        }
    }
    assert!(
        dropped > 0.0,
        "inventory-service does not report its lost spans"
    );
}
