//! `bench --instructions`: what each row costs in instructions, counted by valgrind's
//! callgrind, which gives the same count run after run where CPU time on a shared machine
//! swings by tens of percent.
//!
//! Each row runs twice: once with the orders, once idle for as long, both with the same
//! start-up, warm-up and shutdown. The difference of the two counts at exit, divided by the
//! orders, is the cost of one order alone: handling, spans, logs and export (each run waits
//! for the batch processors' 5 s timer to ship every span before it stops). Kernel time (the
//! syscalls of each hop) is not counted: this is the user-space part of the cost.

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

/// Every row, one after the other; prints instructions per order for each process, and keeps
/// the callgrind files in `keep` if it is given.
pub(super) async fn run_all(
    configurations: &[Configuration],
    orders: u64,
    keep: Option<&Path>,
    by_crate: bool,
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
    for (name, binaries, env) in configurations {
        // SERVICES order: inventory, payment, notification, order.
        let keep = keep.map(|dir| dir.join(kebab_case(name)));
        let per_order = match count(*binaries, env, orders, keep.as_deref()).await {
            Ok(per_order) => per_order,
            Err(e) => {
                eprintln!("bench: {name}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let total: f64 = per_order.iter().sum();
        if *name == super::Row::NoTelemetry.name() {
            baseline = Some(total);
        }
        let per_span = match baseline {
            Some(base) if *name != super::Row::NoTelemetry.name() => {
                format!("{:.0}", (total - base) / SPANS_PER_ORDER as f64)
            }
            _ => "-".to_owned(),
        };
        println!(
            "{:<22} {:>12.0} {:>12.0} {:>12.0} {:>12.0} {:>12.0} {:>12}",
            name, per_order[3], per_order[0], per_order[1], per_order[2], total, per_span
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
    let no_telemetry = by_crate_rows
        .iter()
        .position(|(name, _)| *name == super::Row::NoTelemetry.name());
    if let Some(at) = no_telemetry {
        let (name, counts) = by_crate_rows.remove(at);
        super::by_crate::print((name, &counts), &by_crate_rows);
    }
    ExitCode::SUCCESS
}

/// Instructions per order of each process (in [`SERVICES`] order); the runs' callgrind files
/// kept in `keep`'s `loaded` and `idle` if it is given.
async fn count(
    binaries: super::Binaries,
    env: &[(&'static str, String)],
    orders: u64,
    keep: Option<&Path>,
) -> Result<Vec<f64>, String> {
    let kept = |run: &str| keep.map(|dir| dir.join(run));
    let loaded = count_run(binaries, env, orders, orders, kept("loaded").as_deref()).await?;
    let idle = count_run(binaries, env, orders, 0, kept("idle").as_deref()).await?;
    Ok(loaded
        .iter()
        .zip(&idle)
        .map(|(l, i)| (*l as f64 - *i as f64) / orders as f64)
        .collect())
}

/// Instructions of each process for a run of `slots` tenths of a second in which `orders`
/// (0 or `slots`) orders are sent; its callgrind files moved to `keep` if it is given.
async fn count_run(
    binaries: super::Binaries,
    env: &[(&'static str, String)],
    slots: u64,
    orders: u64,
    keep: Option<&Path>,
) -> Result<Vec<u64>, String> {
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
) -> Result<Vec<u64>, String> {
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

/// The `totals:` (or `summary:`) line of a callgrind output file.
fn totals(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
        })
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("{}: no totals line", path.display()))
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
    use super::kebab_case;

    #[test]
    fn row_names_become_directory_names() {
        assert_eq!(kebab_case("spans+logs, gRPC"), "spans-logs-grpc");
        assert_eq!(kebab_case("no telemetry"), "no-telemetry");
        assert_eq!(kebab_case("SDK disabled"), "sdk-disabled");
    }
}
