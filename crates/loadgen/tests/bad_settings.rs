//! The load generator, the benchmark and the bare chain meet a bad `TOKIO_WORKER_THREADS` as
//! the services do: exit status 2 and one line naming it, where tokio itself would panic.

use std::{path::Path, time::Duration};

use system_tests::run_program_to_exit;

#[test]
fn a_bad_tokio_worker_threads_is_one_line_and_exit_two_not_a_panic() {
    for (binary, args) in [
        (
            env!("CARGO_BIN_EXE_loadgen"),
            &["--url", "http://127.0.0.1:9"][..],
        ),
        (env!("CARGO_BIN_EXE_bench"), &[][..]),
        (env!("CARGO_BIN_EXE_bare-hops"), &["order"][..]),
    ] {
        let (code, stderr) = run_program_to_exit(
            Path::new(binary),
            args,
            &[("TOKIO_WORKER_THREADS", "many")],
            Duration::from_secs(10),
        );
        assert_eq!(code, Some(2), "{binary}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{binary}: {stderr}");
        assert!(
            stderr.contains("invalid TOKIO_WORKER_THREADS=\"many\""),
            "{binary}: {stderr}"
        );
    }
}
