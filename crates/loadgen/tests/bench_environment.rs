//! What `bench`'s services take from its environment: a fault set for bench reaches every
//! service of both builds and is named in the header, and a bad one is the service's own
//! one-line refusal; whether telemetry is on, where it goes and the listeners stay bench's to
//! decide, whatever the shell holds.

use std::{path::Path, time::Duration};

use system_tests::{binary_path, run_program_for_output};

#[test]
fn a_fault_in_benchs_environment_reaches_both_builds_and_is_named() {
    // The other "build" is this one's services, from a directory of their own.
    let dir = tempfile::tempdir().expect("temp dir");
    for service in system_tests::stack::SERVICES {
        std::os::unix::fs::symlink(binary_path(service), dir.path().join(service))
            .expect("link a service");
    }
    let dir_arg = dir.path().display().to_string();
    let (code, stdout, stderr) = bench(
        &[
            "--paired",
            "--twin-binaries",
            &dir_arg,
            "--rows",
            "no-telemetry",
            "--loads",
            "saturation",
            "--rounds",
            "1",
            "--seconds",
            "1",
            "--sustained-seconds",
            "0",
        ],
        &[("PAYMENT_FAILURE_RATE", "1")],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("from bench's environment: PAYMENT_FAILURE_RATE=1;"),
        "{stdout}"
    );
    // Every charge refused, on both sides: every order 502, and nothing else.
    let answers = stdout
        .lines()
        .find_map(|line| line.strip_prefix("no telemetry: the median run's orders got "))
        .unwrap_or_else(|| panic!("no answers line:\n{stdout}"));
    let (row, twin) = answers
        .split_once("; its twin's ")
        .unwrap_or_else(|| panic!("no twin's answers: {answers}"));
    for side in [row, twin] {
        let statuses: Vec<&str> = side
            .split(", ")
            .map(|answer| answer.rsplit(" × ").next().unwrap_or(answer))
            .collect();
        assert_eq!(statuses, ["502"], "{answers}");
    }
}

#[test]
fn what_a_row_decides_is_not_taken_from_benchs_environment() {
    for service in system_tests::stack::SERVICES {
        binary_path(service);
    }
    // Inherited, each would change the sustained runs: no spans made (`TELEMETRY=off`,
    // `OTEL_SDK_DISABLED`), none exported (`OTEL_TRACES_EXPORTER=none`), or the services
    // unable to start side by side (one `ADMIN_PORT` for all four).
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
        .to_string();
    let (code, stdout, stderr) = bench(
        &[
            "--rows",
            "bare",
            "--loads",
            "saturation",
            "--rounds",
            "1",
            "--seconds",
            "1",
            "--sustained-seconds",
            "1",
            "--rate",
            "20",
        ],
        &[
            ("TELEMETRY", "off"),
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("ADMIN_PORT", &admin_port),
        ],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "withheld (bench sets its own): ADMIN_PORT OTEL_SDK_DISABLED OTEL_TRACES_EXPORTER TELEMETRY"
        ),
        "{stdout}"
    );
    // Both transports: every span of every order received.
    for protocol in ["grpc", "http/protobuf"] {
        let line = stdout
            .lines()
            .find(|line| line.starts_with(&format!("{protocol}: ")))
            .unwrap_or_else(|| panic!("no sustained run over {protocol}:\n{stdout}"));
        assert!(line.contains(", missing 0 (0.00 %)"), "{line}");
        assert!(
            !line.starts_with(&format!("{protocol}: 0 orders")),
            "{line}"
        );
    }
}

#[test]
fn a_bad_setting_in_benchs_environment_fails_at_once_with_the_services_own_line() {
    for service in system_tests::stack::SERVICES {
        binary_path(service);
    }
    let (code, stdout, stderr) = bench(
        &[
            "--rows",
            "no-telemetry",
            "--loads",
            "saturation",
            "--rounds",
            "1",
            "--seconds",
            "1",
            "--sustained-seconds",
            "0",
        ],
        &[("PAYMENT_FAILURE_RATE", "abc")],
    );
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("payment-service exited at start (exit status: 2): ")
            && stderr.contains("PAYMENT_FAILURE_RATE=\"abc\": expected a number from 0 to 1"),
        "{stderr}"
    );
}

/// `bench` with `args`, `env` added to its environment: the exit code, stdout and stderr.
fn bench(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    run_program_for_output(
        Path::new(env!("CARGO_BIN_EXE_bench")),
        args,
        env,
        Duration::from_secs(180),
    )
}
