//! What `bench`'s services take from its environment: a fault set for bench reaches every
//! service of both builds and is named in the header, and a bad one is the service's own
//! one-line refusal; whether telemetry is on, where it goes and the listeners stay bench's to
//! decide, whatever the shell holds.

mod common;

use common::{
    ONE_SHORT_RUN, bench, bench_no_telemetry_against_these_services, services_built_beside_bench,
    statuses_of_both_sides,
};

#[test]
fn a_fault_in_benchs_environment_reaches_both_builds_and_is_named() {
    let (code, stdout, stderr) =
        bench_no_telemetry_against_these_services(&[], &[("PAYMENT_FAILURE_RATE", "1")]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("from bench's environment: PAYMENT_FAILURE_RATE=1;"),
        "{stdout}"
    );
    // Every charge refused, on both sides: every order 502, and nothing else.
    for statuses in statuses_of_both_sides(&stdout) {
        assert_eq!(statuses, ["502"], "{stdout}");
    }
}

#[test]
fn what_a_row_decides_is_not_taken_from_benchs_environment() {
    services_built_beside_bench();
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
    services_built_beside_bench();
    let args = [&["--rows", "no-telemetry"][..], &ONE_SHORT_RUN].concat();
    let (code, stdout, stderr) = bench(&args, &[("PAYMENT_FAILURE_RATE", "abc")]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("payment-service exited at start (exit status: 2): ")
            && stderr.contains("PAYMENT_FAILURE_RATE=\"abc\": expected a number from 0 to 1"),
        "{stderr}"
    );
}
