//! The loops that send the orders.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::mpsc,
    time::{Instant, sleep_until},
};

use crate::{
    mix::{Mix, OrderKind},
    stats::Stats,
};

/// How requests are paced.
#[derive(Debug, Clone, Copy)]
pub enum Plan {
    /// `rate` requests per second, on schedule, however slow the answers.
    Open {
        /// Requests per second.
        rate: f64,
    },
    /// `concurrency` requests in flight at all times.
    Closed {
        /// Requests in flight.
        concurrency: usize,
    },
}

/// Most requests an open loop keeps in flight; beyond, a due request is counted as
/// `client-saturated` instead of being sent, so the generator's memory stays bounded.
pub const MAX_IN_FLIGHT: usize = 20_000;

/// order-service's `POST /orders`, with a timeout on every request.
pub struct Target {
    client: reqwest::Client,
    url: String,
}

impl Target {
    /// `POST {base}/orders`, each request giving up after `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(1024)
            // The services close a connection idle for 5 s (`service_kit::serve`); dropping it
            // first means no order is sent on a connection the server is closing, at any rate.
            .pool_idle_timeout(Duration::from_secs(4))
            .build()?;
        Ok(Self {
            client,
            url: format!("{}/orders", base.trim_end_matches('/')),
        })
    }

    /// Sends one order; the status code, or `error` if there was no answer.
    pub async fn send(&self, kind: OrderKind) -> String {
        match self.client.post(&self.url).json(&kind.body()).send().await {
            Ok(response) => {
                let status = response.status().as_u16().to_string();
                // Read the body: the request is not done until it has arrived.
                let _ = response.bytes().await;
                status
            }
            Err(_) => "error".to_owned(),
        }
    }
}

/// Runs `plan` for `duration`, calling `progress` about four times a second; returns the
/// latencies. In an open loop a latency counts from when the request was due.
pub async fn run(
    target: Arc<Target>,
    plan: Plan,
    duration: Duration,
    mix: &Mix,
    mut progress: impl FnMut(&Stats, Duration),
) -> Stats {
    let (done_tx, mut done) = mpsc::unbounded_channel::<(String, Duration)>();
    let start = Instant::now();
    let end = start + duration;
    let mut stats = Stats::default();
    let mut next_progress = start;
    let mut report = |stats: &mut Stats, done: &mut mpsc::UnboundedReceiver<(String, Duration)>| {
        while let Ok((outcome, latency)) = done.try_recv() {
            stats.record(&outcome, latency);
        }
        if Instant::now() >= next_progress {
            next_progress = Instant::now() + Duration::from_millis(250);
            progress(stats, start.elapsed());
        }
    };
    match plan {
        Plan::Open { rate } => {
            let interval = Duration::from_secs_f64(1.0 / rate.max(1e-3));
            let in_flight = Arc::new(AtomicUsize::new(0));
            let mut due = start;
            while due < end {
                sleep_until(due).await;
                report(&mut stats, &mut done);
                if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                    stats.record("client-saturated", due.elapsed());
                } else {
                    in_flight.fetch_add(1, Ordering::Relaxed);
                    let (target, tx, in_flight, kind) = (
                        target.clone(),
                        done_tx.clone(),
                        in_flight.clone(),
                        mix.pick(),
                    );
                    tokio::spawn(async move {
                        let outcome = target.send(kind).await;
                        in_flight.fetch_sub(1, Ordering::Relaxed);
                        // Measured from when it was due: a stall shows as the queue it made.
                        let _ = tx.send((outcome, due.elapsed()));
                    });
                }
                due += interval;
            }
        }
        Plan::Closed { concurrency } => {
            for _ in 0..concurrency.max(1) {
                let (target, tx, mix) = (target.clone(), done_tx.clone(), mix.clone());
                tokio::spawn(async move {
                    while Instant::now() < end {
                        let sent = Instant::now();
                        let outcome = target.send(mix.pick()).await;
                        if tx.send((outcome, sent.elapsed())).is_err() {
                            return;
                        }
                    }
                });
            }
            while Instant::now() < end {
                tokio::time::sleep(Duration::from_millis(50)).await;
                report(&mut stats, &mut done);
            }
        }
    }
    // Wait for the requests still in flight (each has its own timeout).
    drop(done_tx);
    while let Some((outcome, latency)) = done.recv().await {
        stats.record(&outcome, latency);
    }
    progress(&stats, start.elapsed());
    stats
}
