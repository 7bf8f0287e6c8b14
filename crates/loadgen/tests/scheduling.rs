//! The generator against synthetic servers whose latency is known: percentiles come out as the
//! server made them, and an open loop reports the queue that a stall causes (which a closed
//! loop hides: coordinated omission).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use loadgen::{
    drive::{Plan, Target, run},
    mix::Mix,
};

/// A server whose `/orders` answers 201 after `latency`, one request at a time when `serial`,
/// and once, `stall_at` after the first request, takes `stall` instead.
async fn server(latency: Duration, serial: bool, stall: Option<(Duration, Duration)>) -> String {
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    let started = Arc::new(std::sync::OnceLock::<Instant>::new());
    let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = axum::Router::new().route(
        "/orders",
        axum::routing::post(move || {
            let (lock, started, stalled) = (lock.clone(), started.clone(), stalled.clone());
            async move {
                let _turn = if serial {
                    Some(lock.lock().await)
                } else {
                    None
                };
                let first = *started.get_or_init(Instant::now);
                let mut wait = latency;
                if let Some((at, stall)) = stall
                    && first.elapsed() >= at
                    && !stalled.swap(true, std::sync::atomic::Ordering::SeqCst)
                {
                    wait = stall;
                }
                tokio::time::sleep(wait).await;
                (axum::http::StatusCode::CREATED, "{}")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn target(url: &str) -> Arc<Target> {
    Arc::new(Target::new(url, Duration::from_secs(10)).expect("client"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_of_known_latency_gives_known_percentiles() {
    let url = server(Duration::from_millis(25), false, None).await;
    let stats = run(
        target(&url),
        Plan::Closed { concurrency: 4 },
        Duration::from_secs(2),
        &Mix::default(),
        |_, _| {},
    )
    .await;
    let report = stats.report(Duration::from_secs(2));
    let all = report.rows.last().expect("an all row");
    assert_eq!(all.outcome, "all");
    assert!(report.requests > 100, "{}", report.requests);
    // The server never answers in under 25 ms; on a quiet loopback, not much over.
    assert!(all.p50_ms >= 25.0, "{}", all.p50_ms);
    assert!(all.p50_ms < 250.0, "{}", all.p50_ms);
    assert_eq!(report.errors, 0);
    // Four in flight, each ~25 ms: about 160 a second at most.
    assert!(
        report.throughput_per_second <= 165.0,
        "{}",
        report.throughput_per_second
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_open_loop_reports_the_queue_a_stall_causes_and_a_closed_loop_does_not() {
    // One request at a time, 5 ms each; one of them, a second in, takes 1 s.
    let stall = Some((Duration::from_secs(1), Duration::from_secs(1)));
    let open_url = server(Duration::from_millis(5), true, stall).await;
    let open = run(
        target(&open_url),
        Plan::Open { rate: 50.0 },
        Duration::from_secs(3),
        &Mix::default(),
        |_, _| {},
    )
    .await;
    // Requests due during the stall waited for it: ~50 of ~150 are late by 0-1 s.
    assert!(
        open.quantile(0.90) >= Duration::from_millis(200),
        "open loop p90 {:?}",
        open.quantile(0.90)
    );
    assert!(open.count() >= 140, "{}", open.count());

    let closed_url = server(Duration::from_millis(5), true, stall).await;
    let closed = run(
        target(&closed_url),
        Plan::Closed { concurrency: 1 },
        Duration::from_secs(3),
        &Mix::default(),
        |_, _| {},
    )
    .await;
    // The closed loop simply stopped sending during the stall: one slow request, the rest fast.
    assert!(
        closed.quantile(0.90) < Duration::from_millis(100),
        "closed loop p90 {:?}",
        closed.quantile(0.90)
    );
    assert!(closed.quantile(1.0) >= Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_is_counted_as_errors_not_a_hang() {
    let nowhere = format!("http://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    });
    let stats = run(
        target(&nowhere),
        Plan::Open { rate: 20.0 },
        Duration::from_millis(500),
        &Mix::default(),
        |_, _| {},
    )
    .await;
    assert!(stats.count() >= 9);
    assert_eq!(stats.errors(), stats.count());
}
