//! The ledger test: hundreds of concurrent orders against the four real binaries while faults
//! come and go at random (payment charging and then answering past the budget, payment
//! refusing, inventory slow past the budget, inventory reserving and answering past the
//! budget, clients hanging up mid-order, retries with the same key, and one SIGTERM and
//! restart of order-service). Afterwards every unit and every
//! cent is accounted for, from the services' own ledgers:
//! - for every item, the initial stock = available + units of created orders + units still
//!   held (none, once the reservations' expiry has passed);
//! - every confirmed reservation has exactly one charge of the right amount under the same
//!   order key, and every charge that was not refunded has a confirmed reservation;
//! - every 201 the clients saw is such an order, and repeats with one key got one order.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::future::join_all;
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use system_tests::{Service, System, free_port};

const STOCK: u64 = 10_000;
/// Unit prices in cents, by item (0.10 is the one a float gets wrong).
const PRICES: [(&str, u64); 3] = [("book", 999), ("pen", 10), ("mug", 1234)];
const RESERVATION_TTL_MS: u64 = 3000;
const ORDERS: usize = 360;
const CONCURRENCY: usize = 24;

#[derive(Default)]
struct Tally {
    placed: AtomicUsize,
    created: AtomicUsize,
    rejected: AtomicUsize,
    failed: AtomicUsize,
    disconnected: AtomicUsize,
    unreachable: AtomicUsize,
    retried: AtomicUsize,
    faults: AtomicUsize,
    /// Order ids answered 201, with (item, quantity).
    created_orders: Mutex<HashMap<String, (String, u64)>>,
    /// Per idempotency key and order-service epoch, the order ids answered 201.
    by_key: Mutex<HashMap<(String, u64), HashSet<String>>>,
}

fn price_text(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

async fn put_faults(client: &reqwest::Client, port: u16, faults: Value) {
    let answer = client
        .put(format!("http://127.0.0.1:{port}/faults"))
        .json(&faults)
        .send()
        .await
        .expect("admin answers");
    assert!(answer.status().is_success(), "{faults}");
}

/// One client's order: maybe with a key, maybe hanging up early, maybe repeated.
async fn client_order(
    client: reqwest::Client,
    url: String,
    n: usize,
    epoch: Arc<AtomicU64>,
    tally: Arc<Tally>,
) {
    let (item, cents) = PRICES[fastrand::usize(..PRICES.len())];
    let quantity = fastrand::u64(1..=10);
    let body = json!({"item": item, "quantity": quantity, "price": price_text(cents).parse::<f64>().expect("price")});
    let key = (fastrand::f64() < 0.35).then(|| format!("ledger-{n}-{}", fastrand::u32(..)));
    let attempts = if key.is_some() && fastrand::bool() {
        2
    } else {
        1
    };
    for attempt in 0..attempts {
        if attempt > 0 {
            tally.retried.fetch_add(1, Ordering::Relaxed);
        }
        let mut request = client.post(&url).json(&body);
        if let Some(key) = &key {
            request = request.header("idempotency-key", key);
        }
        let hang_up = fastrand::f64() < 0.15;
        if hang_up {
            request = request.timeout(Duration::from_millis(fastrand::u64(50..400)));
        }
        let started_in = epoch.load(Ordering::SeqCst);
        tally.placed.fetch_add(1, Ordering::Relaxed);
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                tally.disconnected.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(_) => {
                tally.unreachable.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let status = response.status().as_u16();
        let answer: Value = match response.json().await {
            Ok(answer) => answer,
            Err(_) => {
                tally.disconnected.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        match status {
            201 => {
                tally.created.fetch_add(1, Ordering::Relaxed);
                let id = answer["order_id"].as_str().expect("order id").to_owned();
                tally
                    .created_orders
                    .lock()
                    .expect("tally")
                    .insert(id.clone(), (item.to_owned(), quantity));
                if let Some(key) = &key
                    && epoch.load(Ordering::SeqCst) == started_in
                {
                    tally
                        .by_key
                        .lock()
                        .expect("tally")
                        .entry((key.clone(), started_in))
                        .or_default()
                        .insert(id);
                }
            }
            400..=499 => {
                tally.rejected.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                tally.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Every 250 ms, turns each fault on or off at random, until `stop`.
async fn chaos(
    client: reqwest::Client,
    inventory_admin: u16,
    payment_admin: u16,
    stop: Arc<std::sync::atomic::AtomicBool>,
    tally: Arc<Tally>,
) {
    while !stop.load(Ordering::SeqCst) {
        let slow_answer = fastrand::f64() < 0.3;
        let refusing = fastrand::f64() < 0.3;
        let slow_stock = fastrand::f64() < 0.25;
        let lost_reservation = fastrand::f64() < 0.2;
        let injected = [slow_answer, refusing, slow_stock, lost_reservation]
            .iter()
            .filter(|on| **on)
            .count();
        tally.faults.fetch_add(injected, Ordering::Relaxed);
        put_faults(
            &client,
            payment_admin,
            json!({
                "failure_rate": if refusing { 0.4 } else { 0.0 },
                // Charged at once, answered past the 800 ms budget.
                "answer_delay_ms": if slow_answer { 1200 } else { 0 },
            }),
        )
        .await;
        put_faults(
            &client,
            inventory_admin,
            json!({
                "lookup_scale": if slow_stock { 8.0 } else { 1.0 },
                // Reserved at once, answered past the budget.
                "answer_delay_ms": if lost_reservation { 1000 } else { 0 },
            }),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    put_faults(&client, payment_admin, json!({})).await;
    put_faults(&client, inventory_admin, json!({})).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_unit_and_every_cent_is_accounted_for_under_random_faults() {
    let inventory_admin = free_port();
    let payment_admin = free_port();
    let stock: Vec<String> = PRICES.iter().map(|(i, _)| format!("{i}={STOCK}")).collect();
    let mut system = System::builder()
        .env("INVENTORY_STOCK", &stock.join(","))
        .service_env(Service::Order, "ORDER_BUDGET_MS", "800")
        .service_env(
            Service::Inventory,
            "INVENTORY_RESERVATION_TTL_MS",
            &RESERVATION_TTL_MS.to_string(),
        )
        .service_env(
            Service::Inventory,
            "ADMIN_PORT",
            &inventory_admin.to_string(),
        )
        .service_env(Service::Payment, "ADMIN_PORT", &payment_admin.to_string())
        .start()
        .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let url = format!("{}/orders", system.url(Service::Order));
    let tally = Arc::new(Tally::default());
    let epoch = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chaos = tokio::spawn(chaos(
        client.clone(),
        inventory_admin,
        payment_admin,
        stop.clone(),
        tally.clone(),
    ));

    let started = Instant::now();
    let half = ORDERS / 2;
    for wave in [0..half, half..ORDERS] {
        let next = Arc::new(AtomicUsize::new(wave.start));
        let end = wave.end;
        let workers = (0..CONCURRENCY).map(|_| {
            let (client, url, epoch, tally, next) = (
                client.clone(),
                url.clone(),
                epoch.clone(),
                tally.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= end {
                        return;
                    }
                    client_order(client.clone(), url.clone(), n, epoch.clone(), tally.clone())
                        .await;
                }
            })
        });
        if wave.start == 0 {
            join_all(workers).await;
            continue;
        }
        // Second wave: SIGTERM order-service while it runs, and start it again.
        let running = tokio::spawn(join_all(workers));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        system.process(Service::Order).signal(Signal::SIGTERM);
        let exit = system
            .process_mut(Service::Order)
            .wait_exit(Duration::from_secs(30))
            .await
            .expect("order-service exits after SIGTERM");
        assert!(exit.success(), "order-service exit: {exit}");
        epoch.fetch_add(1, Ordering::SeqCst);
        system.restart(Service::Order).await;
        running.await.expect("second wave");
    }
    stop.store(true, Ordering::SeqCst);
    chaos.await.expect("chaos");
    let took = started.elapsed();

    // Past the reservations' expiry, nothing may be held.
    tokio::time::sleep(Duration::from_millis(RESERVATION_TTL_MS + 1000)).await;
    let inventory = system.url(Service::Inventory);
    let reservations = get_json(
        &client,
        &format!("http://127.0.0.1:{inventory_admin}/reservations"),
    )
    .await;
    let charges = get_json(
        &client,
        &format!("http://127.0.0.1:{payment_admin}/charges"),
    )
    .await;
    let reservations = reservations.as_array().expect("reservations");
    let charges = charges.as_array().expect("charges");

    let mut violations: Vec<String> = Vec::new();
    let prices: BTreeMap<&str, u64> = PRICES.into_iter().collect();
    let mut confirmed: HashMap<String, (String, u64)> = HashMap::new();
    let mut sold_units: BTreeMap<String, u64> = BTreeMap::new();
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for r in reservations {
        *states
            .entry(format!("reservation {}", r["state"]))
            .or_default() += 1;
        if r["state"] == "confirmed" {
            let key = r["key"].as_str().unwrap_or_default().to_owned();
            let item = r["item"].as_str().expect("item").to_owned();
            let quantity = r["quantity"].as_u64().expect("quantity");
            *sold_units.entry(item.clone()).or_default() += quantity;
            if confirmed.insert(key.clone(), (item, quantity)).is_some() {
                violations.push(format!("two confirmed reservations for {key}"));
            }
        }
    }
    for (item, _) in PRICES {
        let level = get_json(&client, &format!("{inventory}/stock/{item}")).await;
        let n = |k: &str| level[k].as_u64().expect("count");
        let (available, held, sold) = (n("available"), n("held"), n("sold"));
        if available + held + sold != STOCK {
            violations.push(format!("{item}: {available} + {held} + {sold} != {STOCK}"));
        }
        if held != 0 {
            violations.push(format!("{item}: {held} units still held past the expiry"));
        }
        if sold != sold_units.get(item).copied().unwrap_or_default() {
            violations.push(format!(
                "{item}: sold {sold}, confirmed reservations {sold_units:?}"
            ));
        }
    }
    let mut charged: HashMap<String, u64> = HashMap::new();
    for c in charges {
        *states.entry(format!("charge {}", c["state"])).or_default() += 1;
        let key = c["key"].as_str().expect("key").to_owned();
        if c["state"] == "charged" {
            charged.insert(key, c["charge"]["amount_cents"].as_u64().expect("amount"));
        }
    }
    for (key, (item, quantity)) in &confirmed {
        match charged.get(key) {
            None => violations.push(format!("{key}: {quantity} × {item} confirmed, not charged")),
            Some(amount) if *amount != quantity * prices[item.as_str()] => {
                violations.push(format!("{key}: charged {amount} for {quantity} × {item}"))
            }
            Some(_) => {}
        }
    }
    for key in charged.keys() {
        if !confirmed.contains_key(key) {
            violations.push(format!(
                "{key}: charged, not refunded, no confirmed reservation"
            ));
        }
    }
    for (id, (item, quantity)) in tally.created_orders.lock().expect("tally").iter() {
        let key = format!("order:{id}");
        if confirmed.get(&key) != Some(&(item.clone(), *quantity)) || !charged.contains_key(&key) {
            violations.push(format!(
                "order {id} answered 201 but is not confirmed and charged"
            ));
        }
    }
    for ((key, epoch), ids) in tally.by_key.lock().expect("tally").iter() {
        if ids.len() > 1 {
            violations.push(format!(
                "key {key} (epoch {epoch}) got {} orders",
                ids.len()
            ));
        }
    }

    // The decisions, as the traces show them.
    let mut decisions: BTreeMap<String, usize> = BTreeMap::new();
    for span in system.store.traces().into_iter().flatten() {
        let outcome = span
            .str_attribute("payment.outcome")
            .or(span.str_attribute("inventory.outcome"));
        if matches!(
            span.name.as_str(),
            "settle_charge"
                | "settle_reservation"
                | "refund_payment"
                | "release_inventory"
                | "expire_reservation"
                | "reconcile_charge"
        ) {
            let name = match outcome {
                Some(outcome) => format!("{} {outcome}", span.name),
                None => span.name.clone(),
            };
            *decisions.entry(name).or_default() += 1;
        }
    }
    println!("decisions in the traces: {decisions:?}");
    let count = |a: &AtomicUsize| a.load(Ordering::Relaxed);
    println!(
        "ledger: {} requests in {took:.1?} ({} retries with the same key), {} fault switches; \
         {} created, {} rejected (4xx), {} failed (5xx), {} clients hung up, {} refused while \
         order-service restarted; {} orders confirmed and charged; {states:?}; {} violations",
        count(&tally.placed),
        count(&tally.retried),
        count(&tally.faults),
        count(&tally.created),
        count(&tally.rejected),
        count(&tally.failed),
        count(&tally.disconnected),
        count(&tally.unreachable),
        confirmed.len(),
        violations.len(),
    );
    assert!(violations.is_empty(), "{violations:#?}");
    // The faults did bite: some orders failed, some were cut off, some charges were settled.
    assert!(count(&tally.created) > ORDERS / 4, "too few orders created");
    assert!(count(&tally.failed) + count(&tally.disconnected) > 0);
}
