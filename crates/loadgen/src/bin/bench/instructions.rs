//! `bench --instructions`: what each row costs in instructions, counted by valgrind's
//! callgrind, which gives the same count run after run where CPU time on a shared machine
//! swings by tens of percent.
//!
//! Each row runs twice: once with the orders, once idle for as long, both with the same
//! start-up, warm-up and shutdown. The difference of the two counts at exit, divided by the
//! orders, is the cost of one order alone: handling, spans, logs and export (each run waits
//! for the batch processors' 5 s timer to ship every span before it stops). Kernel time (the
//! syscalls of each hop) is not counted: this is the user-space part of the cost.
//!
//! With `--cache-sim`, callgrind also simulates the machine's first-level caches, and a second
//! table gives the misses an order: what an instruction count leaves out, code and data that
//! had to be fetched again (BENCHMARKS.md, twenty-ninth round).

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Duration,
};

use loadgen::{
    drive::{Plan, run},
    mix::{Mix, OrderKind},
};

use super::{Configuration, SERVICES, SPANS_PER_ORDER, Services, order_target};

/// Orders a second under callgrind: the four processes run ~10–50 times slower.
const RATE: f64 = 10.0;

/// Longer than the batch processors' schedule (5 s for spans, 1 s for logs).
const EXPORT_WAIT: Duration = Duration::from_secs(7);

/// `binary` under callgrind, its counts written to `out` at exit.
pub(super) fn under_callgrind(binary: &Path, out: &Path) -> Command {
    let mut command = Command::new("valgrind");
    command
        .arg("--tool=callgrind")
        .arg("--dump-instr=no")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(binary);
    command
}

/// Every row, one after the other; prints instructions per order for each process (and with
/// `cache_sim` the first-level cache misses an order, a second table), and keeps the callgrind
/// files in `keep` if it is given.
pub(super) async fn run_all(
    configurations: &[Configuration],
    orders: u64,
    keep: Option<&Path>,
    by_crate: bool,
    cache_sim: bool,
) -> ExitCode {
    // Both asked before the minutes of counting rather than after them.
    let needed = [
        ("--instructions", "valgrind", true),
        ("--by-crate", "callgrind_annotate", by_crate),
    ];
    for (flag, tool, wanted) in needed {
        if wanted && Command::new(tool).arg("--version").output().is_err() {
            eprintln!("bench: {flag} needs {tool} (apt-get install -y valgrind)");
            return ExitCode::FAILURE;
        }
    }
    println!(
        "bench --instructions: {orders} fast orders per row at {RATE}/s, every process under callgrind; instructions per order (user space only), added per span against no telemetry ({SPANS_PER_ORDER} spans an order); {}\n",
        super::environment::described()
    );
    println!(
        "{:<22} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "configuration", "order", "inventory", "payment", "notification", "total", "per span"
    );
    let mut baseline = None;
    let mut by_crate_rows = Vec::new();
    let mut misses = Vec::new();
    for (name, binaries, env) in configurations {
        // SERVICES order: inventory, payment, notification, order.
        let keep = keep.map(|dir| dir.join(kebab_case(name)));
        let mut env = env.clone();
        if cache_sim {
            // valgrind reads options from this variable as well as from its command line.
            let mut options = std::env::var_os("VALGRIND_OPTS").unwrap_or_default();
            options.push(" --cache-sim=yes");
            env.push(("VALGRIND_OPTS", options.to_string_lossy().into_owned()));
        }
        let counts = match count(*binaries, &env, orders, keep.as_deref()).await {
            Ok(counts) => counts,
            Err(e) => {
                eprintln!("bench: {name}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let summed = Counts::sum(&counts);
        if cache_sim && summed.instruction_misses == 0.0 {
            // A `.valgrindrc` read after the variable can turn the simulation off again.
            eprintln!(
                "bench: {name}: callgrind counted no cache misses: is --cache-sim=no set in a .valgrindrc?"
            );
            return ExitCode::FAILURE;
        }
        misses.push((*name, summed));
        let per_order: Vec<f64> = counts.iter().map(|c| c.instructions).collect();
        let total = summed.instructions;
        if *name == super::Row::NoTelemetry.name() {
            baseline = Some(total);
        }
        println!(
            "{:<22} {:>12.0} {:>12.0} {:>12.0} {:>12.0} {:>12.0} {:>12}",
            name,
            per_order[3],
            per_order[0],
            per_order[1],
            per_order[2],
            total,
            added_per_span(name, total, baseline)
        );
        if let (true, Some(dir)) = (by_crate, &keep) {
            match super::by_crate::row(dir, orders) {
                Ok(row) => by_crate_rows.push((*name, row)),
                Err(e) => {
                    eprintln!("bench: {name}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    if cache_sim {
        print_misses(&misses);
    }
    let no_telemetry = by_crate_rows
        .iter()
        .position(|(name, _)| *name == super::Row::NoTelemetry.name());
    if let Some(at) = no_telemetry {
        let (name, counts) = by_crate_rows.remove(at);
        super::by_crate::print((name, &counts), &by_crate_rows);
    }
    ExitCode::SUCCESS
}

/// The `--cache-sim` table: each row's first-level misses an order, the four processes
/// summed, and what a span adds against no telemetry.
fn print_misses(rows: &[(&str, Counts)]) {
    println!(
        "\nfirst-level cache misses an order (callgrind's simulation of this machine's caches, each process alone: a machine that runs the four and the load on two cores misses more), the four processes summed, added per span against no telemetry:\n"
    );
    println!(
        "{:<22} {:>14} {:>10} {:>14} {:>10}",
        "configuration", "instruction", "per span", "data", "per span"
    );
    let baseline = rows
        .iter()
        .find(|(name, _)| *name == super::Row::NoTelemetry.name())
        .map(|(_, counts)| *counts);
    for (name, counts) in rows {
        println!(
            "{:<22} {:>14.0} {:>10} {:>14.0} {:>10}",
            name,
            counts.instruction_misses,
            added_per_span(
                name,
                counts.instruction_misses,
                baseline.map(|b| b.instruction_misses)
            ),
            counts.data_misses,
            added_per_span(name, counts.data_misses, baseline.map(|b| b.data_misses)),
        );
    }
}

/// What row `name`'s `value` an order adds a span against no telemetry's `baseline`, as
/// printed: "-" for no telemetry itself, or without a baseline.
fn added_per_span(name: &str, value: f64, baseline: Option<f64>) -> String {
    match baseline {
        Some(base) if name != super::Row::NoTelemetry.name() => {
            format!("{:.0}", (value - base) / SPANS_PER_ORDER as f64)
        }
        _ => "-".to_owned(),
    }
}

/// What callgrind counted in one process (or in an order, as a difference of two runs):
/// instructions, and with `--cache-sim=yes` the first-level cache misses, of instructions and
/// of data (reads and writes).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts<T = f64> {
    instructions: T,
    instruction_misses: T,
    data_misses: T,
}

impl Counts {
    fn sum(counts: &[Counts]) -> Counts {
        counts.iter().fold(Counts::default(), |total, c| Counts {
            instructions: total.instructions + c.instructions,
            instruction_misses: total.instruction_misses + c.instruction_misses,
            data_misses: total.data_misses + c.data_misses,
        })
    }

    /// `(loaded − idle) / orders` for each count.
    fn per_order(loaded: &Counts<u64>, idle: &Counts<u64>, orders: u64) -> Counts {
        let per_order = |l: u64, i: u64| (l as f64 - i as f64) / orders as f64;
        Counts {
            instructions: per_order(loaded.instructions, idle.instructions),
            instruction_misses: per_order(loaded.instruction_misses, idle.instruction_misses),
            data_misses: per_order(loaded.data_misses, idle.data_misses),
        }
    }
}

/// The counts per order of each process (in [`SERVICES`] order); the runs' callgrind files
/// kept in `keep`'s `loaded` and `idle` if it is given.
async fn count(
    binaries: super::Binaries,
    env: &[(&'static str, String)],
    orders: u64,
    keep: Option<&Path>,
) -> Result<Vec<Counts>, String> {
    let kept = |run: &str| keep.map(|dir| dir.join(run));
    let loaded = count_run(binaries, env, orders, orders, kept("loaded").as_deref()).await?;
    let idle = count_run(binaries, env, orders, 0, kept("idle").as_deref()).await?;
    Ok(loaded
        .iter()
        .zip(&idle)
        .map(|(l, i)| Counts::per_order(l, i, orders))
        .collect())
}

/// The counts of each process for a run of `slots` tenths of a second in which `orders`
/// (0 or `slots`) orders are sent; its callgrind files moved to `keep` if it is given.
async fn count_run(
    binaries: super::Binaries,
    env: &[(&'static str, String)],
    slots: u64,
    orders: u64,
    keep: Option<&Path>,
) -> Result<Vec<Counts<u64>>, String> {
    let dir = tempdir()?;
    let counts = count_in(&dir, binaries, env, slots, orders).await;
    match keep {
        Some(keep) if counts.is_ok() => {
            keep_files(&dir, keep)?;
        }
        _ => {}
    }
    let _ = std::fs::remove_dir_all(&dir);
    counts
}

/// Moves the files of `dir` into `keep` (made if missing, its same-named files replaced).
fn keep_files(dir: &Path, keep: &Path) -> Result<(), String> {
    let failed = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
    std::fs::create_dir_all(keep).map_err(|e| failed(keep, e))?;
    for entry in std::fs::read_dir(dir).map_err(|e| failed(dir, e))? {
        let from = entry.map_err(|e| failed(dir, e))?.path();
        let Some(name) = from.file_name() else {
            continue;
        };
        let to = keep.join(name);
        // A rename cannot cross file systems (a temporary directory on tmpfs): then a copy.
        if std::fs::rename(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(|e| failed(&to, e))?;
        }
    }
    Ok(())
}

/// `spans+logs, gRPC` → `spans-logs-grpc`: a row's name as a directory name.
fn kebab_case(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

/// [`count_run`], its callgrind files in `dir`.
async fn count_in(
    dir: &Path,
    binaries: super::Binaries,
    env: &[(&'static str, String)],
    slots: u64,
    orders: u64,
) -> Result<Vec<Counts<u64>>, String> {
    let mut env = env.to_vec();
    env.push(("INVENTORY_LOOKUP_SCALE", "0".into()));
    let services = Services::start_under(binaries, &env, Some(dir)).await?;
    let target = order_target(&services)?;
    let fast = Mix::only(OrderKind::Fast);
    let warm_up = Duration::from_secs(2);
    run(
        target.clone(),
        Plan::Open { rate: RATE },
        warm_up,
        &fast,
        |_, _| {},
    )
    .await;
    tokio::time::sleep(EXPORT_WAIT).await;
    let duration = Duration::from_secs_f64(slots as f64 / RATE);
    if orders > 0 {
        let stats = run(
            target,
            Plan::Open { rate: RATE },
            duration,
            &fast,
            |_, _| {},
        )
        .await;
        let report = stats.report(duration);
        if report.errors > 0 || report.requests != orders {
            return Err(format!(
                "{} of {orders} orders sent, {} failed ({}): the count would not be per order",
                report.requests,
                report.errors,
                super::outcomes(&report)
            ));
        }
    } else {
        tokio::time::sleep(duration).await;
    }
    tokio::time::sleep(EXPORT_WAIT).await;
    services.stop_within(Duration::from_secs(60)).await;
    SERVICES
        .iter()
        .map(|name| totals(&dir.join(name)))
        .collect()
}

/// The totals of a callgrind output file.
fn totals(path: &Path) -> Result<Counts<u64>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_totals(&text).ok_or_else(|| format!("{}: no totals line", path.display()))
}

/// The `totals:` (or `summary:`) line, read by the names of the `events:` line: `Ir` alone, or
/// with `--cache-sim=yes` `Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw`.
fn parse_totals(text: &str) -> Option<Counts<u64>> {
    let events: Vec<&str> = text
        .lines()
        .find_map(|line| line.strip_prefix("events:"))?
        .split_whitespace()
        .collect();
    let values: Vec<u64> = text
        .lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
        })?
        .split_whitespace()
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let event = |name: &str| {
        events
            .iter()
            .position(|e| *e == name)
            .and_then(|at| values.get(at))
            .copied()
    };
    Some(Counts {
        instructions: event("Ir")?,
        instruction_misses: event("I1mr").unwrap_or(0),
        data_misses: event("D1mr").unwrap_or(0) + event("D1mw").unwrap_or(0),
    })
}

/// A fresh directory for one row's output files.
fn tempdir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "bench-callgrind-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::{Counts, kebab_case, parse_totals};

    #[test]
    fn totals_are_read_by_their_event_names_with_or_without_the_cache_simulation() {
        let plain = "version: 1\ncmd: order-service\nevents: Ir\nfn=main\n1 5\nsummary: 1234\ntotals: 1234\n";
        assert_eq!(
            parse_totals(plain),
            Some(Counts {
                instructions: 1234,
                instruction_misses: 0,
                data_misses: 0
            })
        );
        let simulated =
            "events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\nsummary: 900 300 200 40 7 5 2 1 1\n";
        assert_eq!(
            parse_totals(simulated),
            Some(Counts {
                instructions: 900,
                instruction_misses: 40,
                data_misses: 12
            })
        );
        assert_eq!(parse_totals("events: Ir\n"), None, "no totals line");
        assert_eq!(
            parse_totals("events: Dr\ntotals: 5\n"),
            None,
            "no instructions"
        );
    }

    #[test]
    fn row_names_become_directory_names() {
        assert_eq!(kebab_case("spans+logs, gRPC"), "spans-logs-grpc");
        assert_eq!(kebab_case("no telemetry"), "no-telemetry");
        assert_eq!(kebab_case("SDK disabled"), "sdk-disabled");
    }
}
