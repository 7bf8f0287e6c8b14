//! `loadgen`: send orders to order-service at a rate or a concurrency, print what it measured.

use std::{io::IsTerminal, process::ExitCode, sync::Arc, time::Duration};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use loadgen::{
    drive::{Plan, Target, run},
    mix::Mix,
};

/// Sends orders to order-service and reports latency by status.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
struct Args {
    /// order-service's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8001")]
    url: String,
    /// Open loop: requests per second, on schedule (coordinated omission corrected).
    #[arg(long, conflicts_with = "concurrency")]
    rate: Option<f64>,
    /// Closed loop: requests kept in flight.
    #[arg(long)]
    concurrency: Option<usize>,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Order kinds by weight: fast (qty 2), slow (qty 8), invalid (qty 0), unknown (item).
    #[arg(long, default_value = "fast=70,slow=10,invalid=10,unknown=10")]
    mix: Mix,
    /// Per-request timeout, in seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Print the report as JSON (and no progress bar).
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    service_kit::runtime::block_on_tool("loadgen", drive_load(args))
}

async fn drive_load(args: Args) -> ExitCode {
    let in_range = |v: f64, max: f64| v > 0.0 && v <= max;
    if !(in_range(args.duration, 1e7)
        && in_range(args.timeout, 3600.0)
        && args.rate.is_none_or(|r| in_range(r, 1e6)))
    {
        eprintln!(
            "loadgen: --duration (s, up to 1e7), --timeout (s, up to 3600) and --rate (up to 1e6/s) must be positive"
        );
        return ExitCode::from(2);
    }
    let plan = match (args.rate, args.concurrency) {
        (Some(rate), _) => Plan::Open { rate },
        (None, Some(concurrency)) if concurrency > 0 => Plan::Closed { concurrency },
        (None, Some(_)) => {
            eprintln!("loadgen: --concurrency must be positive");
            return ExitCode::from(2);
        }
        (None, None) => Plan::Open { rate: 20.0 },
    };
    let target = match Target::new(&args.url, Duration::from_secs_f64(args.timeout)) {
        Ok(target) => Arc::new(target),
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bar = if args.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new((args.duration * 1000.0) as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    };
    let duration = Duration::from_secs_f64(args.duration);
    let stats = run(target, plan, duration, &args.mix, |stats, elapsed| {
        bar.set_position(elapsed.as_millis() as u64);
        bar.set_message(format!(
            "{:.0}/s  errors {}  p99 {:.1} ms",
            stats.count() as f64 / elapsed.as_secs_f64().max(1e-3),
            stats.errors(),
            stats.quantile(0.99).as_secs_f64() * 1000.0
        ));
    })
    .await;
    bar.finish_and_clear();
    let report = stats.report(duration);
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("loadgen: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", report.table());
    }
    ExitCode::SUCCESS
}
