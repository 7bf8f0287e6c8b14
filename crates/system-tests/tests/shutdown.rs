//! SIGTERM while orders are in flight: in-flight requests finish, every span of every answered
//! order is flushed, and each process exits 0 within 5 s.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use futures_util::future::join_all;
use nix::sys::signal::Signal;
use serde_json::json;
use system_tests::{Service, SpanKind, StoredSpan, System, render_tree};

const SERVICES: [Service; 4] = [
    Service::Order,
    Service::Inventory,
    Service::Payment,
    Service::Notification,
];

/// Every span's parent is in the trace, except the root's, which is order-service's SERVER span.
fn assert_connected(trace: &[StoredSpan], status: u16) {
    let ids: HashMap<&str, &StoredSpan> = trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let roots: Vec<_> = trace
        .iter()
        .filter(|s| {
            s.parent_span_id
                .as_deref()
                .is_none_or(|p| !ids.contains_key(p))
        })
        .collect();
    assert_eq!(
        roots.len(),
        1,
        "a span lost its parent:\n{}",
        render_tree(trace)
    );
    assert_eq!(roots[0].name, "POST /orders");
    assert_eq!(roots[0].kind, SpanKind::Server);
    assert_eq!(
        roots[0].int_attribute("http.response.status_code"),
        Some(i64::from(status))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_orders_loses_no_span_and_every_process_exits_zero_within_five_seconds() {
    // Spans are exported only every 60 s: whatever arrives, arrives through the shutdown flush.
    let mut system = System::builder()
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
        .start()
        .await;

    let orders = (0..24).map(|i| {
        let quantity = if i % 2 == 0 { 8 } else { 1 };
        let system = &system;
        async move {
            tokio::time::sleep(Duration::from_millis(10 * i)).await;
            let url = format!("{}/orders", system.url(Service::Order));
            let body = json!({"item": "book", "quantity": quantity, "price": 2.0});
            // Orders sent after order-service stopped accepting get no answer at all.
            let response = system.client().post(url).json(&body).send().await.ok()?;
            let trace_id = response
                .headers()
                .get("x-trace-id")?
                .to_str()
                .ok()?
                .to_owned();
            Some((response.status().as_u16(), trace_id))
        }
    });
    let in_flight = join_all(orders);
    let terminate = async {
        tokio::time::sleep(Duration::from_millis(120)).await;
        for service in SERVICES {
            system.process(service).signal(Signal::SIGTERM);
        }
        Instant::now()
    };
    let (answers, signalled_at) = tokio::join!(in_flight, terminate);

    for service in SERVICES {
        let process = system.process_mut(service);
        let status = process
            .wait_exit(Duration::from_secs(5).saturating_sub(signalled_at.elapsed()))
            .await;
        let status =
            status.unwrap_or_else(|| panic!("{} still running 5 s after SIGTERM", service.name()));
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            service.name(),
            process.stderr()
        );
    }

    let answered: Vec<(u16, String)> = answers.into_iter().flatten().collect();
    assert!(!answered.is_empty(), "no order was in flight at SIGTERM");
    let mut created = 0;
    for (status, trace_id) in &answered {
        let trace = system.store.trace(trace_id);
        assert_connected(&trace, *status);
        if *status == 201 {
            created += 1;
            // The whole synchronous part of the order is there; only the notification's
            // SERVER span may be missing, if notification-service stopped first.
            let names: Vec<&str> = trace.iter().map(|s| s.name.as_str()).collect();
            for name in [
                "process_order",
                "validate_order",
                "check_inventory",
                "GET /stock/{item}",
                "reserve_inventory",
                "POST /stock/{item}/reserve",
                "reserve_stock",
                "slow_lookup",
                "charge_payment",
                "POST /charges",
                "send_notification",
            ] {
                assert!(
                    names.contains(&name),
                    "{name} lost:\n{}",
                    render_tree(&trace)
                );
            }
        }
    }
    // In-flight requests were finished, not cut: some orders completed across the SIGTERM.
    assert!(
        created > 0,
        "statuses: {:?}",
        answered.iter().map(|a| a.0).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_stops_a_service_cleanly_too() {
    let mut system = System::builder().start().await;
    let process = system.process_mut(Service::Payment);
    process.signal(Signal::SIGINT);
    let status = process
        .wait_exit(Duration::from_secs(5))
        .await
        .expect("exits");
    assert!(status.success(), "{status}");
    assert!(process.stdout().contains("\"signal\":\"SIGINT\""));
}
