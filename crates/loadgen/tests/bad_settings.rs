//! The load generator, the benchmark and the bare chain meet a bad `TOKIO_WORKER_THREADS` as
//! the services do: exit status 2 and one line naming it, where tokio itself would panic.

use std::{process::Command, time::Duration};

/// Runs `binary` with `args` and a bad `TOKIO_WORKER_THREADS`; its exit status and stderr.
fn run_with_bad_worker_threads(binary: &str, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(binary)
        .args(args)
        .env("TOKIO_WORKER_THREADS", "many")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{binary} did not exit within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("collect output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

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
        let (code, stderr) = run_with_bad_worker_threads(binary, args);
        assert_eq!(code, Some(2), "{binary}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{binary}: {stderr}");
        assert!(
            stderr.contains("invalid TOKIO_WORKER_THREADS=\"many\""),
            "{binary}: {stderr}"
        );
    }
}
