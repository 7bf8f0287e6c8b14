//! The service binaries, built on first use.
//!
//! Cargo gives a test the path of its own package's binaries only; these are five other
//! packages. So the first test to need them runs `cargo build` for them (a no-op when they are
//! fresh) with the profile the tests were built with, and takes them from the same target dir.

use std::{path::PathBuf, process::Command, sync::OnceLock};

const PACKAGES: [&str; 5] = [
    "order-service",
    "inventory-service",
    "payment-service",
    "notification-service",
    "demo",
];

/// The path of binary `name` (one of the four services, or `demo`), built if needed.
pub fn binary_path(name: &str) -> PathBuf {
    let dir = BUILT
        .get_or_init(build_all)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    dir.join(name)
}

static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn build_all() -> Result<PathBuf, String> {
    // The test executable is target/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("test executable is not in target/<profile>/deps")?
        .to_path_buf();
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "--quiet"]);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        cargo.arg("--release");
    }
    for package in PACKAGES {
        cargo.args(["-p", package, "--bin", package]);
    }
    cargo.current_dir(env!("CARGO_MANIFEST_DIR"));
    let status = cargo
        .status()
        .map_err(|e| format!("cannot run cargo build: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build of the service binaries failed: {status}"
        ));
    }
    Ok(profile_dir)
}
