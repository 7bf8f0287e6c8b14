//! `bench --paired --twin-binaries DIR`: two builds compared at the same time. Each row's twin
//! is the same row started from DIR's programs; a DIR without them is one line and exit 2.
//! `--mix` sends both sides another mix of orders, and is refused without a twin directory.

mod common;

use std::{os::unix::fs::PermissionsExt, path::Path, time::Duration};

use common::{bench, bench_no_telemetry_against_these_services, statuses_of_both_sides};
use system_tests::run_program_to_exit;

#[test]
fn a_twin_directory_without_the_programs_is_one_line_and_exit_two() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, _, stderr) = bench_bare_against(dir.path(), "1");
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no bare-hops there"), "{stderr}");
}

#[test]
fn twin_binaries_without_paired_are_refused() {
    assert_refused_for_want_of(&["--twin-binaries", "/tmp"], "--paired");
}

#[test]
fn a_mix_without_twin_binaries_is_refused() {
    // Every other figure divides by the 21 spans of a created order.
    assert_refused_for_want_of(&["--mix", "invalid=1"], "--twin-binaries");
}

/// `bench` with `args` exits 2 at once, naming the option `missing`.
fn assert_refused_for_want_of(args: &[&str], missing: &str) {
    let args = [args, &["--sustained-seconds", "0"]].concat();
    let (code, stderr) = run_program_to_exit(
        Path::new(env!("CARGO_BIN_EXE_bench")),
        &args,
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains(missing), "{stderr}");
}

#[test]
fn both_builds_are_sent_the_mix_and_say_what_it_got_back() {
    let (code, stdout, stderr) =
        bench_no_telemetry_against_these_services(&["--mix", "invalid=1,unknown=1"], &[]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("orders invalid=1,unknown=1 "), "{stdout}");
    // Refused (400) and unknown (404) orders, on both sides, and nothing else.
    for statuses in statuses_of_both_sides(&stdout) {
        assert_eq!(statuses, ["400", "404"], "{stdout}");
    }
}

#[test]
fn each_row_runs_against_its_twin_started_from_the_other_directory() {
    // The other "build": a bare-hops that notes each start, then becomes the real one (same
    // process, so `bench` measures it).
    let real = env!("CARGO_BIN_EXE_bare-hops");
    let dir = twin_with_bare_hops(&format!("echo \"$1\" >> started\nexec '{real}' \"$@\""));
    let (code, stdout, stderr) = bench_bare_against(dir.path(), "1");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");

    // The twin's four processes, and only they, came from the other directory.
    let started = std::fs::read_to_string(dir.path().join("started")).unwrap_or_default();
    let mut roles: Vec<&str> = started.lines().collect();
    roles.sort_unstable();
    assert_eq!(
        roles,
        ["inventory", "notification", "order", "payment"],
        "{stdout}"
    );

    // The row, against its twin, in percent: orders/s, both CPU figures, the percent, errors.
    assert!(stdout.contains("vs twin %"), "{stdout}");
    let row = stdout
        .lines()
        .find(|line| line.starts_with("bare axum hops"))
        .unwrap_or_else(|| panic!("no row for the bare chain:\n{stdout}"));
    let figures: Vec<f64> = row["bare axum hops".len()..]
        .split_whitespace()
        .map(|figure| figure.parse().unwrap_or(f64::NAN))
        .collect();
    assert_eq!(figures.len(), 5, "{row}");
    let [orders_per_second, cpu, twin_cpu, percent, errors] = figures[..] else {
        unreachable!()
    };
    assert!(orders_per_second > 0.0, "{row}");
    assert!(cpu > 0.0 && twin_cpu > 0.0, "{row}");
    // One round: the percent is the two figures' own, which are printed to 0.0005 ms.
    let expected = (cpu / twin_cpu - 1.0) * 100.0;
    let rounding = 100.0 * 0.0005 / twin_cpu * (1.0 + cpu / twin_cpu) + 0.05;
    assert!(
        (percent - expected).abs() <= rounding,
        "{row}: {percent} % is not {cpu} against {twin_cpu}"
    );
    assert_eq!(errors, 0.0, "{row}");
}

#[test]
fn a_process_that_exits_during_a_run_fails_the_run_and_is_named() {
    // The other "build": its notification process ends 3 s after it starts, within the run
    // (2 s of warm-up, then 2 s measured). The bare chain's orders then fail; the services'
    // would not (their notifications are fire-and-forget), and only a CPU an order lower by
    // the notification service's share would show it.
    let real = env!("CARGO_BIN_EXE_bare-hops");
    let dir = twin_with_bare_hops(&format!(
        "if [ \"$1\" = notification ]; then exec timeout 3 '{real}' \"$@\"; fi\nexec '{real}' \"$@\""
    ));
    let (code, stdout, stderr) = bench_bare_against(dir.path(), "2");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("notification") && stderr.contains("exited during the run"),
        "{stderr}"
    );
    assert!(
        !stdout
            .lines()
            .any(|line| line.starts_with("bare axum hops")),
        "a row printed from a run with a process gone:\n{stdout}"
    );
}

#[test]
fn a_process_that_exits_at_start_with_its_stderr_held_open_fails_at_once() {
    // The other "build": a wrapper that says why on stderr and exits, its background child
    // holding the pipe open for longer than the run may take.
    let dir = twin_with_bare_hops("echo 'bare-hops: refused' >&2\nsleep 240 &\nexit 3");
    let (code, stdout, stderr) = bench_bare_against(dir.path(), "1");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("exited at start (exit status: 3): bare-hops: refused"),
        "{stderr}"
    );
}

/// A directory for `--twin-binaries` whose `bare-hops` is the shell script `script`, run in
/// that directory.
fn twin_with_bare_hops(script: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let wrapper = dir.path().join("bare-hops");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\ncd '{}'\n{script}\n", dir.path().display()),
    )
    .expect("write the wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
        .expect("make the wrapper executable");
    dir
}

/// `bench`, the bare chain once for `seconds` at saturation (the quickest row it can pair),
/// paired with its twin from `dir`: the exit code, stdout and stderr.
fn bench_bare_against(dir: &Path, seconds: &str) -> (Option<i32>, String, String) {
    let dir_arg = dir.display().to_string();
    let args = [
        "--paired",
        "--rows",
        "bare",
        "--loads",
        "saturation",
        "--rounds",
        "1",
        "--seconds",
        seconds,
        "--sustained-seconds",
        "0",
        "--twin-binaries",
        &dir_arg,
    ];
    bench(&args, &[])
}
