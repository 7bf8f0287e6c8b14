//! `bench`: what tracing costs. Starts the four release binaries on 127.0.0.1 three times (no
//! telemetry; `OTEL_SDK_DISABLED=true`; tracing exporting OTLP/gRPC to an in-process
//! trace-store), drives each with the load generator with the simulated latency off, and prints
//! throughput, latency, CPU per 1 000 orders, memory, and spans expected against received.
//!
//! Run: `cargo build --release --workspace && target/release/bench` (see BENCHMARKS.md).

use std::{
    path::PathBuf,
    process::{Child, Command, ExitCode, Stdio},
    sync::Arc,
    time::Duration,
};

use clap::Parser;
use loadgen::{
    drive::{Plan, Target, run},
    mix::Mix,
};

/// Measures the cost of tracing.
#[derive(Debug, Parser)]
struct Args {
    /// Seconds of each closed-loop throughput run.
    #[arg(long, default_value_t = 15.0)]
    seconds: f64,
    /// Requests in flight in the throughput runs.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Orders per second of the sustained run (tracing on).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds of the sustained run.
    #[arg(long, default_value_t = 60.0)]
    sustained_seconds: f64,
}

const SERVICES: [&str; 4] = [
    "inventory-service",
    "payment-service",
    "notification-service",
    "order-service",
];

/// Spans of one created order: SPEC §2's 17, plus the 4 of `confirm_inventory`.
const SPANS_PER_ORDER: u64 = 21;

struct Services {
    children: Vec<(String, Child)>,
    order_url: String,
}

impl Services {
    async fn start(env: &[(&str, String)]) -> Result<Self, String> {
        let dir = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(PathBuf::from))
            .ok_or("cannot find the binaries' directory")?;
        let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
        let url = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
        let mut children = Vec::new();
        for (i, name) in SERVICES.iter().enumerate() {
            let binary = dir.join(name);
            let child = Command::new(&binary)
                .env("HOST", "127.0.0.1")
                .env("PORT", ports[i].to_string())
                // Logs cost too; keep them to warnings in every configuration alike.
                .env("RUST_LOG", "warn")
                .env("INVENTORY_LOOKUP_SCALE", "0")
                .env("INVENTORY_SERVICE_URL", url(0))
                .env("PAYMENT_SERVICE_URL", url(1))
                .env("NOTIFICATION_SERVICE_URL", url(2))
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| {
                    format!(
                        "{}: {e} (build first: cargo build --release --workspace)",
                        binary.display()
                    )
                })?;
            children.push((name.to_string(), child));
        }
        // Dropped on an early return: the children are killed (see Drop), not left holding ports.
        let services = Self {
            children,
            order_url: url(3),
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .map_err(|e| e.to_string())?;
        for (i, name) in SERVICES.iter().enumerate() {
            let health = format!("{}/health", url(i));
            let mut healthy = false;
            for _ in 0..200 {
                if http
                    .get(&health)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    healthy = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !healthy {
                return Err(format!("{name} did not become healthy"));
            }
        }
        Ok(services)
    }

    /// CPU seconds used so far by the four processes (utime + stime, USER_HZ = 100).
    fn cpu_seconds(&self) -> f64 {
        self.children
            .iter()
            .filter_map(|(_, c)| std::fs::read_to_string(format!("/proc/{}/stat", c.id())).ok())
            .filter_map(|stat| {
                let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                Some(fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?)
            })
            .sum::<f64>()
            / 100.0
    }

    /// RSS of each process, MiB.
    fn rss_mib(&self) -> Vec<f64> {
        self.children
            .iter()
            .map(|(_, c)| {
                std::fs::read_to_string(format!("/proc/{}/status", c.id()))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("VmRSS:"))?
                            .split_whitespace()
                            .nth(1)?
                            .parse::<f64>()
                            .ok()
                    })
                    .unwrap_or(0.0)
                    / 1024.0
            })
            .collect()
    }

    /// SIGTERM (so spans are flushed), then up to 10 s for each to exit; Drop kills the rest.
    fn stop(mut self) {
        for (_, child) in &self.children {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        for (_, child) in &mut self.children {
            while std::time::Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

struct Measured {
    name: &'static str,
    throughput: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_per_1000: f64,
    rss_idle: Vec<f64>,
    rss_load: Vec<f64>,
    errors: u64,
}

async fn throughput(
    name: &'static str,
    env: &[(&str, String)],
    args: &Args,
) -> Result<Measured, String> {
    let services = Services::start(env).await?;
    let target = Arc::new(
        Target::new(&services.order_url, Duration::from_secs(10)).map_err(|e| e.to_string())?,
    );
    let fast: Mix = "fast=1"
        .parse()
        .map_err(|e: loadgen::mix::MixError| e.to_string())?;
    let rss_idle = services.rss_mib();
    // Warm up connections and allocators, unmeasured.
    run(
        target.clone(),
        Plan::Closed {
            concurrency: args.concurrency,
        },
        Duration::from_secs(2),
        &fast,
        |_, _| {},
    )
    .await;
    let cpu_before = services.cpu_seconds();
    let duration = Duration::from_secs_f64(args.seconds);
    let stats = run(
        target,
        Plan::Closed {
            concurrency: args.concurrency,
        },
        duration,
        &fast,
        |_, _| {},
    )
    .await;
    let cpu = services.cpu_seconds() - cpu_before;
    let rss_load = services.rss_mib();
    services.stop();
    let report = stats.report(duration);
    Ok(Measured {
        name,
        throughput: report.throughput_per_second,
        p50_ms: stats.quantile(0.5).as_secs_f64() * 1000.0,
        p99_ms: stats.quantile(0.99).as_secs_f64() * 1000.0,
        cpu_per_1000: cpu / (report.requests as f64 / 1000.0),
        rss_idle,
        rss_load,
        errors: report.errors,
    })
}

/// Orders at `args.rate` for `args.sustained_seconds`, exporting to `store`: (created orders,
/// spans expected, spans received, the order-service RSS at the end).
async fn sustained(bsp: &[(&str, String)], args: &Args) -> Result<(u64, u64, u64, f64), String> {
    let local = trace_store::serve_local(trace_store::TraceStore::with_capacity(usize::MAX))
        .await
        .map_err(|e| e.to_string())?;
    let mut env = vec![(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://{}", local.grpc),
    )];
    env.extend(bsp.iter().cloned());
    let services = Services::start(&env).await?;
    let target = Arc::new(
        Target::new(&services.order_url, Duration::from_secs(10)).map_err(|e| e.to_string())?,
    );
    let fast: Mix = "fast=1"
        .parse()
        .map_err(|e: loadgen::mix::MixError| e.to_string())?;
    let stats = run(
        target,
        Plan::Open { rate: args.rate },
        Duration::from_secs_f64(args.sustained_seconds),
        &fast,
        |_, _| {},
    )
    .await;
    let rss = services.rss_mib().last().copied().unwrap_or(0.0);
    let created = stats
        .report(Duration::from_secs(1))
        .rows
        .iter()
        .find(|r| r.outcome == "201")
        .map_or(0, |r| r.count);
    services.stop();
    // The notifications' spans arrive last; SIGTERM flushed everything that was queued.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok((
        created,
        created * SPANS_PER_ORDER,
        local.store.span_count() as u64,
        rss,
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "bench: {cores} cores; closed loop, concurrency {}, {} s per configuration; simulated latency off\n",
        args.concurrency, args.seconds
    );

    let store = match trace_store::start_local().await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let configurations: [(&'static str, Vec<(&str, String)>); 3] = [
        ("no telemetry", vec![("TELEMETRY", "off".into())]),
        ("SDK disabled", vec![("OTEL_SDK_DISABLED", "true".into())]),
        (
            "tracing → OTLP",
            vec![(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{}", store.grpc),
            )],
        ),
    ];
    let mut results = Vec::new();
    for (name, env) in &configurations {
        match throughput(name, env, &args).await {
            Ok(m) => results.push(m),
            Err(e) => {
                eprintln!("bench: {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "{:<16} {:>10} {:>9} {:>9} {:>14} {:>24} {:>24} {:>7}",
        "configuration",
        "orders/s",
        "p50 ms",
        "p99 ms",
        "CPU s/1000",
        "RSS idle MiB (o,i,p,n)",
        "RSS load MiB (o,i,p,n)",
        "errors"
    );
    for m in &results {
        // Print order-service first in the RSS columns.
        let order_first = |v: &[f64]| format!("{:.1},{:.1},{:.1},{:.1}", v[3], v[0], v[1], v[2]);
        println!(
            "{:<16} {:>10.0} {:>9.2} {:>9.2} {:>14.3} {:>24} {:>24} {:>7}",
            m.name,
            m.throughput,
            m.p50_ms,
            m.p99_ms,
            m.cpu_per_1000,
            order_first(&m.rss_idle),
            order_first(&m.rss_load),
            m.errors
        );
    }
    let base = &results[0];
    for m in &results[1..] {
        println!(
            "{} vs no telemetry: throughput {:+.1} %, CPU per order {:+.1} %",
            m.name,
            (m.throughput / base.throughput - 1.0) * 100.0,
            (m.cpu_per_1000 / base.cpu_per_1000 - 1.0) * 100.0
        );
    }

    println!(
        "\nsustained: {} orders/s for {} s, tracing on",
        args.rate, args.sustained_seconds
    );
    let tuned: Vec<(&str, String)> = vec![
        ("OTEL_BSP_MAX_QUEUE_SIZE", "65536".into()),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "500".into()),
    ];
    for (label, bsp) in [
        ("default OTEL_BSP_*", Vec::new()),
        ("tuned (queue 65536, batch 4096, delay 500 ms)", tuned),
    ] {
        match sustained(&bsp, &args).await {
            Ok((orders, expected, received, rss)) => println!(
                "{label}: {orders} orders, spans expected {expected}, received {received}, dropped {} ({:.2} %); order-service RSS {rss:.1} MiB",
                expected.saturating_sub(received),
                expected.saturating_sub(received) as f64 / expected.max(1) as f64 * 100.0
            ),
            Err(e) => {
                eprintln!("bench: sustained: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
