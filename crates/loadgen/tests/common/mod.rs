//! What the tests of `bench` share: running it, against a second "build" made of this one's
//! services, and reading the line that says what each side's orders got back.

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

/// Builds the four services into the directory `bench` starts its own from (the services are
/// other packages: cargo builds only this one's binaries for its tests).
#[allow(
    dead_code,
    reason = "twin_binaries' tests run the bare chain, loadgen's own binary"
)]
pub fn services_built_beside_bench() {
    binary_path(system_tests::stack::SERVICES[0]);
}

/// `bench --paired` for the no-telemetry row once ([`ONE_SHORT_RUN`]), `extra` added, against
/// a twin "build" made of this build's four services from a directory of their own.
pub fn bench_no_telemetry_against_these_services(
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, String, String) {
    let twin = tempfile::tempdir().expect("temp dir");
    for service in system_tests::stack::SERVICES {
        std::os::unix::fs::symlink(binary_path(service), twin.path().join(service))
            .expect("link a service");
    }
    let twin_arg = twin.path().display().to_string();
    let paired = [
        "--paired",
        "--twin-binaries",
        &twin_arg,
        "--rows",
        "no-telemetry",
    ];
    bench(&[&paired[..], extra, &ONE_SHORT_RUN].concat(), env)
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
