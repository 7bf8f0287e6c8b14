//! `bench`: what tracing costs. Starts the four release binaries on 127.0.0.1 once per
//! configuration and load, drives them with the load generator, and prints, for each, the
//! throughput, latency, CPU per order summed over the four processes, the CPU added per span
//! against "no telemetry", and memory; then it sends a fixed rate for a minute per OTLP
//! transport and compares the spans expected with those received.
//!
//! Configurations: a bare axum chain with the same hops (`bare-hops`, the floor), no
//! telemetry, `OTEL_SDK_DISABLED=true`, spans exported over OTLP/gRPC and over
//! OTLP/HTTP-protobuf to an in-process trace-store (log records off), the default (spans and
//! log records over gRPC), and the default again through opentelemetry-otlp's exporters
//! (`TELEMETRY_EXPORTER=opentelemetry-otlp`). µs/span charges everything added to the spans. Loads: the seed's (16 connections, the
//! simulated latency on) and saturation (64 in flight, the simulated latency off).
//!
//! Run: `cargo build --release --workspace && target/release/bench` (see BENCHMARKS.md).

use std::{
    path::PathBuf,
    process::{Child, Command, ExitCode, Stdio},
    sync::Arc,
    time::Duration,
};

use clap::Parser;

mod by_crate;
mod environment;
mod instructions;
mod last_line;
use last_line::LastLine;
use loadgen::{
    drive::{Plan, Target, run},
    mix::{Mix, OrderKind},
};

/// Measures the cost of tracing.
#[derive(Debug, Parser)]
struct Args {
    /// Seconds of each closed-loop run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Runs of each row, taken in turn (every row once, then again): each figure printed is
    /// the median of the runs, and the CPU column shows their spread.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    rounds: u32,
    /// Only these rows, comma-separated (default: all seven). "no telemetry" runs whenever a
    /// row after it does: µs/span is measured against it. Fewer rows leave time for more
    /// rounds, which is what a difference of a few µs a span needs on a noisy machine.
    #[arg(long, value_enum, value_delimiter = ',')]
    rows: Vec<Row>,
    /// Only these loads, comma-separated (default: both).
    #[arg(long, value_enum, value_delimiter = ',')]
    loads: Vec<LoadKind>,
    /// Requests in flight at the seed's load (its `wrk` ran 16 connections).
    #[arg(long, default_value_t = 16)]
    seed_concurrency: usize,
    /// Requests in flight at saturation.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Worker threads of every process's runtime, the bare chain's included
    /// (`TOKIO_WORKER_THREADS`): 1 is the services' default (`service_kit::runtime`: tokio's
    /// current-thread scheduler), 2 is tokio's own on this 2-core machine.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    worker_threads: u16,
    /// Orders per second of the sustained runs (tracing on).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds of each sustained run; 0 skips them.
    #[arg(long, default_value_t = 60.0)]
    sustained_seconds: f64,
    /// Instead of the tables, count the instructions each row runs per order, every process
    /// under valgrind's callgrind (repeatable where CPU time is not; needs `valgrind`).
    #[arg(long)]
    instructions: bool,
    /// Orders of each row with `--instructions`, sent at 10 a second. At least 100: what the
    /// idle run does not reproduce exactly (timers, wake-ups) is spread over the orders, and
    /// 10 orders leave it at a tenth of an order's count.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(100..=100_000))]
    instruction_orders: u64,
    /// With `--instructions`, keep every process's callgrind file in this directory
    /// (`<row>/loaded/<service>` and `<row>/idle/<service>`, the row's name in kebab case), for
    /// `callgrind_annotate --inclusive=yes`: the profile behind the counts. Best with a build
    /// that keeps function names (BENCHMARKS.md, "The profile").
    #[arg(long, value_name = "DIR", requires = "instructions")]
    keep_profiles: Option<std::path::PathBuf>,
    /// With `--keep-profiles`, also print what each row adds to an order against no telemetry
    /// by crate (the crate of the function that ran each instruction, read with
    /// `callgrind_annotate`): whose work a span is. Meaningful on the profiling build.
    #[arg(long, requires = "keep_profiles")]
    by_crate: bool,
    /// With `--instructions`, callgrind also simulates this machine's first-level caches, and
    /// a second table gives each row's instruction- and data-cache misses an order, and what a
    /// span adds: what the instruction count leaves out (BENCHMARKS.md, twenty-ninth round).
    #[arg(long, requires = "instructions")]
    cache_sim: bool,
    /// Runs each row measured per span at the same time as a no-telemetry twin of its own
    /// (two sets of four processes, each at the load), instead of the rows in turn: each
    /// round's difference is then between two runs the machine treated alike, on a machine
    /// twice as busy. Prints the per-span table of those rows only; `--rows no-telemetry`
    /// alone pairs no telemetry with its twin, the check that pairing itself adds nothing.
    #[arg(long, conflicts_with = "instructions")]
    paired: bool,
    /// With `--paired`, each row's twin is the same row run from the binaries in DIR (another
    /// build's `target/release`, copied aside) instead of no telemetry: two builds compared
    /// at the same time, so that what the machine does between two runs leaves their
    /// difference. Prints each row's CPU an order against its twin's, in percent.
    #[arg(long, value_name = "DIR", requires = "paired")]
    twin_binaries: Option<PathBuf>,
    /// With `--twin-binaries`, the orders of the closed-loop runs by weight, as loadgen's
    /// `--mix` (`fast=70,slow=10,invalid=10,unknown=10` is loadgen's default): two builds
    /// compared on refused, unknown and slow orders too, not only on the fast ones every other
    /// figure is of. Only there: µs a span divides by the 21 spans of a created order.
    #[arg(long, default_value = "fast=1", requires = "twin_binaries")]
    mix: Mix,
}

/// The rows of the tables, in the order they run and print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Row {
    /// The bare axum chain (`bare-hops`), the floor.
    Bare,
    /// `TELEMETRY=off`.
    NoTelemetry,
    /// `OTEL_SDK_DISABLED=true`.
    SdkDisabled,
    /// Spans over OTLP/gRPC, no log records.
    SpansGrpc,
    /// Spans over OTLP/HTTP, no log records.
    SpansHttp,
    /// Spans and log records over OTLP/gRPC: the services' defaults.
    Default,
    /// The defaults through opentelemetry-otlp's exporters.
    OtlpCrate,
}

impl Row {
    /// The row's name in the tables, and its configuration's.
    fn name(self) -> &'static str {
        match self {
            Row::Bare => "bare axum hops",
            Row::NoTelemetry => "no telemetry",
            Row::SdkDisabled => "SDK disabled",
            Row::SpansGrpc => "spans, gRPC",
            Row::SpansHttp => "spans, HTTP",
            Row::Default => "spans+logs, gRPC",
            Row::OtlpCrate => "spans+logs, otlp crate",
        }
    }
}

/// The loads of the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LoadKind {
    /// The seed's: 16 in flight, the simulated latency on.
    Seed,
    /// 64 in flight, the simulated latency off.
    Saturation,
}

/// The configurations of `rows` (all when empty), in their order, with "no telemetry" kept
/// whenever a row measured against it is asked for.
fn selected(
    configurations: impl IntoIterator<Item = Configuration>,
    rows: &[Row],
) -> Vec<Configuration> {
    let baseline_needed = rows
        .iter()
        .any(|row| !matches!(row, Row::Bare | Row::NoTelemetry));
    configurations
        .into_iter()
        .filter(|(name, _, _)| {
            rows.is_empty()
                || rows.iter().any(|row| row.name() == *name)
                || (*name == Row::NoTelemetry.name() && baseline_needed)
        })
        .collect()
}

const SERVICES: [&str; 4] = [
    "inventory-service",
    "payment-service",
    "notification-service",
    "order-service",
];

/// The `bare-hops` role of each entry of [`SERVICES`].
const BARE_ROLES: [&str; 4] = ["inventory", "payment", "notification", "order"];

/// Spans of one created order: SPEC §2's 17, plus the 4 of `confirm_inventory`.
const SPANS_PER_ORDER: u64 = 21;

/// What runs behind the four ports.
#[derive(Clone, Copy, PartialEq)]
enum Binaries {
    /// The four services.
    Services,
    /// `bare-hops`: the same calls and nothing else.
    Bare,
}

impl Binaries {
    /// The programs started, one for each entry of [`SERVICES`] (`bare-hops` four times).
    fn programs(self) -> [&'static str; 4] {
        match self {
            Binaries::Services => SERVICES,
            Binaries::Bare => ["bare-hops"; 4],
        }
    }
}

/// The directory `bench` itself was started from, where `cargo build` put the binaries it runs.
fn own_binaries() -> Result<PathBuf, String> {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(PathBuf::from))
        .ok_or_else(|| "cannot find the binaries' directory".to_owned())
}

/// The first program of `configurations` missing from `dir`, as a one-line message.
fn missing_program(dir: &std::path::Path, configurations: &[Configuration]) -> Option<String> {
    configurations
        .iter()
        .flat_map(|(_, binaries, _)| binaries.programs())
        .find(|program| !dir.join(program).is_file())
        .map(|program| {
            format!(
                "--twin-binaries {}: no {program} there (copy a release build's binaries into it)",
                dir.display()
            )
        })
}

/// A row of the tables: its name, what runs, and the environment added.
type Configuration = (&'static str, Binaries, Vec<(&'static str, String)>);

/// How the services are loaded.
#[derive(Clone, Copy)]
struct Load {
    name: &'static str,
    concurrency: usize,
    /// `INVENTORY_LOOKUP_SCALE`: 1 is the real simulated latency, 0 removes it.
    lookup_scale: &'static str,
}

struct Services {
    children: Vec<(String, Child)>,
    /// Each child's stderr, for why it exited at start.
    stderr: Vec<LastLine>,
    urls: Vec<String>,
    order_url: String,
}

impl Services {
    async fn start(binaries: Binaries, env: &[(&str, String)]) -> Result<Self, String> {
        Self::start_under(binaries, env, None).await
    }

    /// [`Services::start`], each process under callgrind writing to `callgrind_dir` when given
    /// (`instructions`).
    async fn start_under(
        binaries: Binaries,
        env: &[(&str, String)],
        callgrind_dir: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        Self::start_from(&own_binaries()?, binaries, env, callgrind_dir).await
    }

    /// [`Services::start_under`], the programs taken from `dir`.
    ///
    /// The ports are free when chosen, not when the services bind them ([`free_ports`]): should
    /// another program take one in between, the service exits at once saying so, and the four
    /// are started again on other ports, five attempts in all.
    async fn start_from(
        dir: &std::path::Path,
        binaries: Binaries,
        env: &[(&str, String)],
        callgrind_dir: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        const ATTEMPTS: usize = 5;
        let mut attempt = 1;
        loop {
            match Self::start_once(dir, binaries, env, callgrind_dir).await {
                Err(why) if why.contains("Address already in use") => {
                    if attempt == ATTEMPTS {
                        return Err(format!("{why} (on each of {ATTEMPTS} sets of ports)"));
                    }
                    attempt += 1;
                }
                started => return started,
            }
        }
    }

    /// [`Services::start_from`], once, on ports free now.
    async fn start_once(
        dir: &std::path::Path,
        binaries: Binaries,
        env: &[(&str, String)],
        callgrind_dir: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        let ports = free_ports(4)?;
        let url = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
        let withheld = environment::withheld_here();
        // Dropped on an early return, a spawn's failure included: the children started so far
        // are killed (see Drop), not left holding ports.
        let mut services = Self {
            children: Vec::new(),
            stderr: Vec::new(),
            urls: (0..4).map(url).collect(),
            order_url: url(3),
        };
        for (i, (name, program)) in SERVICES.iter().zip(binaries.programs()).enumerate() {
            let binary = dir.join(program);
            let role = (binaries == Binaries::Bare).then_some(BARE_ROLES[i]);
            let mut command = match callgrind_dir {
                None => Command::new(&binary),
                Some(out) => instructions::under_callgrind(&binary, &out.join(name)),
            };
            command.args(role);
            for name in &withheld {
                command.env_remove(name);
            }
            let mut child = command
                .env("HOST", "127.0.0.1")
                .env("PORT", ports[i].to_string())
                .env("INVENTORY_SERVICE_URL", url(0))
                .env("PAYMENT_SERVICE_URL", url(1))
                .env("NOTIFICATION_SERVICE_URL", url(2))
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| {
                    format!(
                        "{}: {e} (build first: cargo build --release --workspace)",
                        binary.display()
                    )
                })?;
            services.stderr.push(LastLine::watch(child.stderr.take()));
            services.children.push((name.to_string(), child));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .map_err(|e| e.to_string())?;
        for (i, name) in SERVICES.iter().enumerate() {
            let health = format!("{}/health", url(i));
            let mut healthy = false;
            // Under callgrind a process starts several times slower.
            let tries = if callgrind_dir.is_some() { 1200 } else { 200 };
            for _ in 0..tries {
                if let Some(why) = services.exited_at_start(i) {
                    return Err(why);
                }
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

    /// Whether the `i`th process has exited, and then what it said last: a service refuses a
    /// bad setting at start with one line on stderr.
    fn exited_at_start(&mut self, i: usize) -> Option<String> {
        let (name, child) = &mut self.children[i];
        let status = child.try_wait().ok()??;
        let said = self.stderr[i].of_exited();
        Some(if said.is_empty() {
            format!("{name} exited at start ({status})")
        } else {
            format!("{name} exited at start ({status}): {said}")
        })
    }

    /// CPU seconds used so far by the four processes together (utime + stime, USER_HZ = 100),
    /// or which of them has exited: a process gone would add nothing to a run's CPU, and its
    /// row would look cheap for it.
    fn cpu_seconds(&self) -> Result<f64, String> {
        self.children
            .iter()
            .map(|(name, child)| {
                let who = || format!("{name} (pid {})", child.id());
                let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id()))
                    .map_err(|e| format!("{}: {e}", who()))?;
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map(|(_, rest)| rest.split_whitespace().collect())
                    .unwrap_or_default();
                // The state: a zombie (`Z`) or dead (`X`) process exited and awaits its reaping.
                if matches!(fields.first(), Some(&"Z" | &"X")) {
                    return Err(format!("{} exited", who()));
                }
                let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
                match (ticks(11), ticks(12)) {
                    (Some(user), Some(system)) => Ok((user + system) / 100.0),
                    _ => Err(format!("{}: unreadable /proc stat", who())),
                }
            })
            .sum()
    }

    /// The CPU seconds used since `before` (a [`Services::cpu_seconds`] reading), or which
    /// process exited meanwhile.
    fn cpu_seconds_since(&self, before: f64) -> Result<f64, String> {
        Ok(self
            .cpu_seconds()
            .map_err(|e| format!("{e} during the run"))?
            - before)
    }

    /// `otel_sdk_spans_dropped_total` summed over the four services' `/metrics`, or `None` if
    /// one of them did not answer within 2 s (an overloaded service, its queues full).
    async fn dropped_spans(&self) -> Option<f64> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .ok()?;
        let mut dropped = 0.0;
        for url in &self.urls {
            let response = http.get(format!("{url}/metrics")).send().await.ok()?;
            let text = response.text().await.unwrap_or_default();
            dropped += text
                .lines()
                .filter(|l| l.starts_with("otel_sdk_spans_dropped_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>();
        }
        Some(dropped)
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
    async fn stop(self) {
        self.stop_within(Duration::from_secs(10)).await;
    }

    /// [`Services::stop`], waiting up to `limit`, on a timer rather than a thread sleep: bench's
    /// own trace store, on the same runtime, takes the services' last export meanwhile.
    async fn stop_within(mut self, limit: Duration) {
        for (_, child) in &self.children {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        let deadline = std::time::Instant::now() + limit;
        for (_, child) in &mut self.children {
            while std::time::Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                tokio::time::sleep(Duration::from_millis(20)).await;
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

/// `n` distinct ports free now, from 20000-32000: below Linux's ephemeral range (32768-60999),
/// where a port let go can at once become the local port of an outgoing connection, and a
/// service would find it busy (the system tests' `free_port` chooses so for the same reason).
/// Each listener is held until all are chosen: ports asked for one at a time may repeat, and a
/// service told another's port fails to bind while its health check, answered by the other,
/// passes.
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..1000 {
        let port = fastrand::u16(20_000..32_000);
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push((port, listener));
            if held.len() == n {
                return Ok(held.into_iter().map(|(port, _listener)| port).collect());
            }
        }
    }
    Err("no free port on 127.0.0.1 in 20000-32000".to_owned())
}

/// The target every row loads: order-service's `POST /orders`, each with a 10 s timeout.
fn order_target(services: &Services) -> Result<Arc<Target>, String> {
    Target::new(&services.order_url, Duration::from_secs(10))
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

struct Measured {
    name: &'static str,
    throughput: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_ms_per_order: f64,
    rss_load: Vec<f64>,
    errors: u64,
    /// What the orders got back (`outcomes`).
    outcomes: String,
}

impl Measured {
    /// Each figure's median over `runs` (the RSS of the run with the median CPU).
    fn median(runs: &[Measured]) -> Measured {
        let mid = |f: fn(&Measured) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let cpu = mid(|m| m.cpu_ms_per_order);
        let typical = runs
            .iter()
            .find(|m| m.cpu_ms_per_order == cpu)
            .unwrap_or(&runs[0]);
        Measured {
            name: typical.name,
            throughput: mid(|m| m.throughput),
            p50_ms: mid(|m| m.p50_ms),
            p99_ms: mid(|m| m.p99_ms),
            cpu_ms_per_order: cpu,
            rss_load: typical.rss_load.clone(),
            errors: runs.iter().map(|m| m.errors).sum(),
            outcomes: typical.outcomes.clone(),
        }
    }
}

/// The lowest and highest of `values`.
fn spread(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), v| {
        (low.min(v), high.max(v))
    })
}

/// One closed-loop run of `load` against `binaries` started with `env`.
async fn throughput(
    name: &'static str,
    binaries: Binaries,
    env: &[(&str, String)],
    load: Load,
    seconds: f64,
) -> Result<Measured, String> {
    let services = start_for(None, binaries, env, load).await?;
    let fast = Mix::only(OrderKind::Fast);
    let measured = measure(name, &services, load, seconds, &fast).await;
    services.stop().await;
    measured
}

/// `binaries` started with `env`, at `load`'s simulated latency, from `dir` if given (else
/// from `bench`'s own directory).
async fn start_for(
    dir: Option<&std::path::Path>,
    binaries: Binaries,
    env: &[(&str, String)],
    load: Load,
) -> Result<Services, String> {
    let mut env = env.to_vec();
    env.push(("INVENTORY_LOOKUP_SCALE", load.lookup_scale.into()));
    match dir {
        Some(dir) => Services::start_from(dir, binaries, &env, None).await,
        None => Services::start(binaries, &env).await,
    }
}

/// How long a run is loaded before it is measured: connections made, allocators warm.
const WARM_UP: Duration = Duration::from_secs(2);

/// `configuration` and a `twin` (no telemetry, or the same row from `twin_dir`'s binaries),
/// both started, then loaded at the same time: each one's CPU is measured while the machine
/// does the same to the other, so what its other tenants and its clock do between two runs
/// leaves their difference (on this machine, tens of percent of CPU an order over an hour).
/// The twin is started and polled first when `twin_first` (every other round), so that
/// neither side keeps whatever going first brings. Returns the configuration's figures, then
/// the twin's.
async fn paired(
    configuration: &Configuration,
    (twin, twin_dir): (&Configuration, Option<&std::path::Path>),
    load: Load,
    (seconds, mix): (f64, &Mix),
    twin_first: bool,
) -> Result<(Measured, Measured), String> {
    let ((first, first_dir), (second, second_dir)) = if twin_first {
        ((twin, twin_dir), (configuration, None))
    } else {
        ((configuration, None), (twin, twin_dir))
    };
    let first_services = start_for(first_dir, first.1, &first.2, load).await?;
    let second_services = start_for(second_dir, second.1, &second.2, load).await?;
    let (first_measured, second_measured) = tokio::join!(
        measure(first.0, &first_services, load, seconds, mix),
        measure(second.0, &second_services, load, seconds, mix)
    );
    // Stopped once both runs are over: `stop` waits, and would hold up the other run.
    first_services.stop().await;
    second_services.stop().await;
    let (first_measured, second_measured) = (first_measured?, second_measured?);
    Ok(if twin_first {
        (second_measured, first_measured)
    } else {
        (first_measured, second_measured)
    })
}

/// Warms `services` up, then runs `load` of `mix`'s orders against them for `seconds`.
async fn measure(
    name: &'static str,
    services: &Services,
    load: Load,
    seconds: f64,
    mix: &Mix,
) -> Result<Measured, String> {
    let target = order_target(services)?;
    let plan = Plan::Closed {
        concurrency: load.concurrency,
    };
    // Warm up connections and allocators, unmeasured.
    run(target.clone(), plan, WARM_UP, mix, |_, _| {}).await;
    let cpu_before = services.cpu_seconds()?;
    let duration = Duration::from_secs_f64(seconds);
    let stats = run(target, plan, duration, mix, |_, _| {}).await;
    let cpu = services.cpu_seconds_since(cpu_before)?;
    let rss_load = services.rss_mib();
    let report = stats.report(duration);
    if report.errors > 0 {
        // The CPU figure then divides by failed orders too: say what they got back.
        eprintln!(
            "bench: {name}, {} in flight: {} of {} orders failed ({})",
            load.concurrency,
            report.errors,
            report.requests,
            outcomes(&report)
        );
    }
    Ok(Measured {
        name,
        throughput: report.throughput_per_second,
        p50_ms: stats.quantile(0.5).as_secs_f64() * 1000.0,
        p99_ms: stats.quantile(0.99).as_secs_f64() * 1000.0,
        cpu_ms_per_order: cpu * 1000.0 / (report.requests.max(1) as f64),
        rss_load,
        errors: report.errors,
        outcomes: outcomes(&report),
    })
}

/// What the orders of a run got back, `count × outcome`, so that a failed run says why.
fn outcomes(report: &loadgen::stats::Report) -> String {
    let outcomes: Vec<String> = report
        .rows
        .iter()
        .filter(|row| row.outcome != "all")
        .map(|row| format!("{} × {}", row.count, row.outcome))
        .collect();
    outcomes.join(", ")
}

/// The environment of services exporting spans to `receiver` over `protocol`, and log
/// records too when `logs`.
fn exporting(
    receiver: std::net::SocketAddr,
    protocol: &str,
    logs: bool,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{receiver}")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.to_owned()),
    ];
    if !logs {
        env.push(("OTEL_LOGS_EXPORTER", "none".to_owned()));
    }
    env
}

/// How long after a sustained run its RSS is read again: past the 5 s after which the services
/// close idle connections (`service_kit::serve::IDLE_CONNECTION_TIMEOUT`) and their second
/// trim of freed memory, 7 quiet seconds on (`service_kit::memory`).
const QUIET_AFTER: Duration = Duration::from_secs(9);

/// What a sustained run found.
struct Sustained {
    created: u64,
    expected: u64,
    received: u64,
    dropped_counted: Option<f64>,
    /// As the load stops, and once the services have been quiet for a while (they give
    /// freed memory back after a burst: `service_kit::memory`).
    rss_end: Vec<f64>,
    rss_later: Vec<f64>,
    cpu_ms_per_order: f64,
}

/// Orders at `args.rate` for `args.sustained_seconds`, exporting to a fresh store over
/// `protocol`, the batch processor at its defaults.
async fn sustained(protocol: &str, args: &Args) -> Result<Sustained, String> {
    let local = trace_store::serve_local(trace_store::TraceStore::with_capacity(usize::MAX))
        .await
        .map_err(|e| e.to_string())?;
    let receiver = match protocol {
        "grpc" => local.grpc,
        _ => local.http,
    };
    let mut env = exporting(receiver, protocol, false);
    env.extend([
        ("INVENTORY_LOOKUP_SCALE", "0".to_owned()),
        // At the default level the four processes, the store and the load generator together
        // top out below this rate on two cores; the question here is the exporter, not logs.
        ("RUST_LOG", "warn".to_owned()),
        ("TOKIO_WORKER_THREADS", args.worker_threads.to_string()),
    ]);
    let services = Services::start(Binaries::Services, &env).await?;
    let target = order_target(&services)?;
    let cpu_before = services.cpu_seconds()?;
    let stats = run(
        target,
        Plan::Open { rate: args.rate },
        Duration::from_secs_f64(args.sustained_seconds),
        &Mix::only(OrderKind::Fast),
        |_, _| {},
    )
    .await;
    let cpu = services.cpu_seconds_since(cpu_before)?;
    let created = stats
        .report(Duration::from_secs(1))
        .rows
        .iter()
        .find(|r| r.outcome == "201")
        .map_or(0, |r| r.count);
    let dropped_counted = services.dropped_spans().await;
    let rss_end = services.rss_mib();
    tokio::time::sleep(QUIET_AFTER).await;
    let rss_later = services.rss_mib();
    services.stop().await;
    // The notifications' spans arrive last; SIGTERM flushed everything that was queued.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(Sustained {
        created,
        expected: created * SPANS_PER_ORDER,
        received: local.store.span_count() as u64,
        dropped_counted,
        rss_end,
        rss_later,
        cpu_ms_per_order: cpu * 1000.0 / (stats.count().max(1) as f64),
    })
}

/// The CPU added per span by the runs of `row` against those of `base`, paired by round:
/// the median of the rounds' differences and, with more than one round, their middle half.
fn per_span(row: &[Measured], base: &[Measured]) -> String {
    median_and_middle_half(
        row.iter()
            .zip(base)
            .map(|(r, b)| {
                (r.cpu_ms_per_order - b.cpu_ms_per_order) * 1000.0 / SPANS_PER_ORDER as f64
            })
            .collect(),
    )
}

/// How much more CPU an order the runs of `row` took than those of `twin`, in percent, paired
/// by round: the median and the middle half, as [`per_span`].
fn against_twin(row: &[Measured], twin: &[Measured]) -> String {
    median_and_middle_half(
        row.iter()
            .zip(twin)
            .map(|(r, t)| (r.cpu_ms_per_order / t.cpu_ms_per_order - 1.0) * 100.0)
            .collect(),
    )
}

/// The median of `values` and, with more than one, their middle half (with three: all of
/// them), which says how far the median can be trusted; the extremes of many rounds are the
/// machine's.
fn median_and_middle_half(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let (median, low, high) = (values[n / 2], values[n / 4], values[(3 * n) / 4]);
    if n > 1 {
        format!("{median:.1} ({low:.1}–{high:.1})")
    } else {
        format!("{median:.1}")
    }
}

/// `--paired` at `load`: each round, every row at the same time as its twin (the rows taken
/// in turn within a round); prints each row's and its twins' median CPU an order. The twin is
/// no telemetry, and the last column the µs a span; with `--twin-binaries`, the same row from
/// the other build, and the last column the percent of CPU an order more than the twin's.
async fn paired_table(
    configurations: &[Configuration],
    load: Load,
    args: &Args,
) -> Result<(), String> {
    let baseline = configurations
        .iter()
        .find(|(name, _, _)| *name == Row::NoTelemetry.name());
    let twin_dir = args.twin_binaries.as_deref();
    // Each row measured, with its twin and the twin's directory.
    let pairs: Vec<_> = configurations
        .iter()
        .filter(|(name, binaries, _)| match twin_dir {
            // Each row asked for against itself; not the baseline `selected` adds.
            Some(_) => args.rows.is_empty() || args.rows.iter().any(|row| row.name() == *name),
            // No telemetry against its twin only when asked for by name: the check that
            // pairing itself adds nothing (a difference of about 0).
            None => {
                *binaries == Binaries::Services
                    && (*name != Row::NoTelemetry.name() || args.rows.contains(&Row::NoTelemetry))
            }
        })
        .filter_map(|configuration| match (twin_dir, baseline) {
            (Some(dir), _) => Some((configuration, (configuration, Some(dir)))),
            (None, baseline) => Some((configuration, (baseline?, None))),
        })
        .collect();
    if pairs.is_empty() {
        return Ok(());
    }
    println!(
        "{:<22} {:>9} {:>11} {:>16} {:>16} {:>7}",
        "configuration",
        "orders/s",
        "CPU ms/ord",
        "twin CPU ms/ord",
        if twin_dir.is_some() {
            "vs twin %"
        } else {
            "µs/span"
        },
        "errors"
    );
    let mut runs: Vec<(Vec<Measured>, Vec<Measured>)> =
        pairs.iter().map(|_| (Vec::new(), Vec::new())).collect();
    for round in 0..args.rounds {
        for (&(configuration, twin), (rows, twins)) in pairs.iter().zip(&mut runs) {
            let (row, twin) = paired(
                configuration,
                twin,
                load,
                (args.seconds, &args.mix),
                round % 2 == 1,
            )
            .await
            .map_err(|e| format!("{}: {e}", configuration.0))?;
            rows.push(row);
            twins.push(twin);
        }
    }
    let medians: Vec<(Measured, Measured)> = runs
        .iter()
        .map(|(rows, twins)| (Measured::median(rows), Measured::median(twins)))
        .collect();
    for ((rows, twins), (m, twin)) in runs.iter().zip(&medians) {
        println!(
            "{:<22} {:>9.0} {:>11.3} {:>16.3} {:>16} {:>7}",
            m.name,
            m.throughput,
            m.cpu_ms_per_order,
            twin.cpu_ms_per_order,
            if twin_dir.is_some() {
                against_twin(rows, twins)
            } else {
                per_span(rows, twins)
            },
            m.errors + twin.errors
        );
    }
    // What the orders got back, so that a mix's refusals are seen to be refusals.
    for (m, twin) in &medians {
        println!(
            "{}: the median run's orders got {}; its twin's {}",
            m.name, m.outcomes, twin.outcomes
        );
    }
    Ok(())
}

/// Order-service first, as the tables read.
fn order_first(v: &[f64]) -> String {
    format!("{:.1},{:.1},{:.1},{:.1}", v[3], v[0], v[1], v[2])
}

fn main() -> ExitCode {
    let args = Args::parse();
    service_kit::runtime::block_on_tool("bench", bench(args))
}

async fn bench(args: Args) -> ExitCode {
    let store = match trace_store::start_local().await {
        Ok(store) => store,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut through_the_crate = exporting(store.grpc, "grpc", true);
    through_the_crate.push(("TELEMETRY_EXPORTER", "opentelemetry-otlp".into()));
    let mut configurations: [Configuration; 7] = [
        (Row::Bare.name(), Binaries::Bare, Vec::new()),
        (
            Row::NoTelemetry.name(),
            Binaries::Services,
            vec![("TELEMETRY", "off".into())],
        ),
        (
            Row::SdkDisabled.name(),
            Binaries::Services,
            vec![("OTEL_SDK_DISABLED", "true".into())],
        ),
        (
            Row::SpansGrpc.name(),
            Binaries::Services,
            exporting(store.grpc, "grpc", false),
        ),
        (
            Row::SpansHttp.name(),
            Binaries::Services,
            exporting(store.http, "http/protobuf", false),
        ),
        (
            Row::Default.name(),
            Binaries::Services,
            exporting(store.grpc, "grpc", true),
        ),
        (Row::OtlpCrate.name(), Binaries::Services, through_the_crate),
    ];
    for (_, _, env) in &mut configurations {
        env.push(("TOKIO_WORKER_THREADS", args.worker_threads.to_string()));
    }
    let configurations = selected(configurations, &args.rows);
    if let Some(message) = args
        .twin_binaries
        .as_deref()
        .and_then(|dir| missing_program(dir, &configurations))
    {
        eprintln!("bench: {message}");
        return ExitCode::from(2);
    }
    if args.instructions {
        return instructions::run_all(
            &configurations,
            args.instruction_orders,
            args.keep_profiles.as_deref(),
            args.by_crate,
            args.cache_sim,
        )
        .await;
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "bench: {cores} cores, {} runtime thread(s) in each of the four processes (TOKIO_WORKER_THREADS; 1 is tokio's current-thread scheduler); closed loop, {} s per run, {} runs of each row taken in turn (medians; CPU spread = lowest–highest; µs/span = median of each round's difference to no telemetry, with the middle half of those differences: 25th–75th percentile, with three rounds lowest–highest); orders {} (fast: quantity 2, slow: 8, invalid: 0, unknown: an item not in the catalogue); logs at the default (RUST_LOG unset: info) in every row; \"otlp crate\" = the default row through opentelemetry-otlp's exporters (TELEMETRY_EXPORTER=opentelemetry-otlp); {}\n",
        args.worker_threads,
        args.seconds,
        args.rounds,
        args.mix,
        environment::described()
    );
    if let Some(dir) = &args.twin_binaries {
        println!(
            "--paired --twin-binaries {}: each row runs at the same time as a twin, the same row run from that directory's binaries (two sets of four processes, each at the load: the machine twice as busy); CPU ms/ord and twin CPU ms/ord are the medians of each side, vs twin % the median of the rounds' CPU an order against the twin's, in percent, with their middle half; the twin starts first in every other round\n",
            dir.display()
        );
    } else if args.paired {
        println!(
            "--paired: each row runs at the same time as a no-telemetry twin (two sets of four processes, each at the load: the machine twice as busy); CPU ms/ord and twin CPU ms/ord are the medians of each side, µs/span the median of the rounds' differences with their middle half; the twin starts first in every other round\n"
        );
    }
    let loads = [
        (
            LoadKind::Seed,
            Load {
                name: "seed's load",
                concurrency: args.seed_concurrency,
                lookup_scale: "1",
            },
        ),
        (
            LoadKind::Saturation,
            Load {
                name: "saturation",
                concurrency: args.concurrency,
                lookup_scale: "0",
            },
        ),
    ];
    let loads = loads
        .into_iter()
        .filter(|(kind, _)| args.loads.is_empty() || args.loads.contains(kind))
        .map(|(_, load)| load);
    for load in loads {
        println!(
            "{}: {} in flight, simulated latency {}",
            load.name,
            load.concurrency,
            if load.lookup_scale == "0" {
                "off"
            } else {
                "on"
            }
        );
        if args.paired {
            if let Err(e) = paired_table(&configurations, load, &args).await {
                eprintln!("bench: {e}");
                return ExitCode::FAILURE;
            }
            println!();
            continue;
        }
        println!(
            "{:<22} {:>9} {:>8} {:>8} {:>11} {:>13} {:>16} {:>24} {:>7}",
            "configuration",
            "orders/s",
            "p50 ms",
            "p99 ms",
            "CPU ms/ord",
            "CPU spread",
            "µs/span",
            "RSS load MiB (o,i,p,n)",
            "errors"
        );
        let mut runs: Vec<Vec<Measured>> = configurations.iter().map(|_| Vec::new()).collect();
        for _ in 0..args.rounds {
            for ((name, binaries, env), row) in configurations.iter().zip(&mut runs) {
                match throughput(name, *binaries, env, load, args.seconds).await {
                    Ok(m) => row.push(m),
                    Err(e) => {
                        eprintln!("bench: {name}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
        let mut baseline: Option<&[Measured]> = None;
        for row in &runs {
            let m = Measured::median(row);
            let (low, high) = spread(row.iter().map(|r| r.cpu_ms_per_order));
            if m.name == Row::NoTelemetry.name() {
                baseline = Some(row);
            }
            // CPU added per span against no telemetry, paired by round (the machine drifts
            // more between rounds than within one); meaningless for the rows before it.
            let per_span = match baseline {
                Some(base) if m.name != Row::NoTelemetry.name() => per_span(row, base),
                _ => "-".to_owned(),
            };
            println!(
                "{:<22} {:>9.0} {:>8.2} {:>8.2} {:>11.3} {:>13} {:>16} {:>24} {:>7}",
                m.name,
                m.throughput,
                m.p50_ms,
                m.p99_ms,
                m.cpu_ms_per_order,
                format!("{low:.3}–{high:.3}"),
                per_span,
                order_first(&m.rss_load),
                m.errors
            );
        }
        println!();
    }
    if args.sustained_seconds <= 0.0 {
        return ExitCode::SUCCESS;
    }
    println!(
        "sustained: {} orders/s for {} s, tracing exported, batch processor at its defaults, RUST_LOG=warn",
        args.rate, args.sustained_seconds
    );
    for protocol in ["grpc", "http/protobuf"] {
        match sustained(protocol, &args).await {
            Ok(s) => println!(
                "{protocol}: {} orders, spans expected {}, received {}, missing {} ({:.2} %), counted dropped {}; CPU {:.3} ms/order; RSS (o,i,p,n) at the end {} MiB, {} s later {} MiB",
                s.created,
                s.expected,
                s.received,
                s.expected.saturating_sub(s.received),
                s.expected.saturating_sub(s.received) as f64 / s.expected.max(1) as f64 * 100.0,
                s.dropped_counted.map_or_else(
                    || "unknown (a /metrics did not answer within 2 s)".to_owned(),
                    |d| d.to_string()
                ),
                s.cpu_ms_per_order,
                order_first(&s.rss_end),
                QUIET_AFTER.as_secs(),
                order_first(&s.rss_later),
            ),
            Err(e) => {
                eprintln!("bench: sustained: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::{Binaries, Configuration, Row, selected};

    fn seven() -> Vec<Configuration> {
        [
            Row::Bare,
            Row::NoTelemetry,
            Row::SdkDisabled,
            Row::SpansGrpc,
            Row::SpansHttp,
            Row::Default,
            Row::OtlpCrate,
        ]
        .map(|row| (row.name(), Binaries::Services, Vec::new()))
        .into()
    }

    fn names(configurations: &[Configuration]) -> Vec<&'static str> {
        configurations.iter().map(|(name, _, _)| *name).collect()
    }

    #[test]
    fn without_rows_every_row_runs_in_order() {
        assert_eq!(names(&selected(seven(), &[])), names(&seven()));
    }

    #[test]
    fn a_row_measured_per_span_brings_its_baseline() {
        let rows = selected(seven(), &[Row::Default, Row::SpansGrpc]);
        assert_eq!(
            names(&rows),
            ["no telemetry", "spans, gRPC", "spans+logs, gRPC"]
        );
    }

    #[test]
    fn the_bare_chain_alone_runs_alone() {
        assert_eq!(names(&selected(seven(), &[Row::Bare])), ["bare axum hops"]);
    }
}
