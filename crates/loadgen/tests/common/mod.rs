//! What the tests of `bench` share: running it, a second "build" made of this one's services,
//! and reading the line that says what each side's orders got back.

use std::{path::Path, time::Duration};

use system_tests::{binary_path, run_program_for_output};

/// The quickest measured run: one round of one second at saturation, no sustained runs.
pub const ONE_SHORT_RUN: [&str; 8] = [
    "--loads",
    "saturation",
    "--rounds",
    "1",
    "--seconds",
    "1",
    "--sustained-seconds",
    "0",
];

/// `bench` with `args`, `env` added to its environment: the exit code, stdout and stderr.
pub fn bench(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    run_program_for_output(
        Path::new(env!("CARGO_BIN_EXE_bench")),
        args,
        env,
        Duration::from_secs(180),
    )
}

/// A directory for `--twin-binaries` holding this build's four services: the other "build",
/// started from a directory of its own.
pub fn twin_of_these_services() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for service in system_tests::stack::SERVICES {
        std::os::unix::fs::symlink(binary_path(service), dir.path().join(service))
            .expect("link a service");
    }
    dir
}

/// The statuses the no-telemetry row's orders got, sorted, on its side and its twin's, from
/// bench's line "no telemetry: the median run's orders got 1234 × 201; its twin's …".
pub fn statuses_of_both_sides(stdout: &str) -> [Vec<String>; 2] {
    let answers = stdout
        .lines()
        .find_map(|line| line.strip_prefix("no telemetry: the median run's orders got "))
        .unwrap_or_else(|| panic!("no answers line:\n{stdout}"));
    let (row, twin) = answers
        .split_once("; its twin's ")
        .unwrap_or_else(|| panic!("no twin's answers: {answers}"));
    [row, twin].map(|side| {
        let mut statuses: Vec<String> = side
            .split(", ")
            .map(|answer| answer.rsplit(" × ").next().unwrap_or(answer).to_owned())
            .collect();
        statuses.sort_unstable();
        statuses
    })
}
