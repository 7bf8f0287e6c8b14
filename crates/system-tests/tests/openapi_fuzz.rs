//! Each running service, fuzzed from its own OpenAPI description by schemathesis (from PyPI,
//! installed by .ci/run): a bounded number of generated requests, none answered with a 5xx and
//! none answered with a body that breaks the documented schema.

use std::process::Command;

use system_tests::{Service, System};

#[tokio::test(flavor = "multi_thread")]
async fn generated_requests_get_no_5xx_and_only_documented_answers() {
    let system = System::builder().start().await;
    for service in [
        Service::Inventory,
        Service::Payment,
        Service::Notification,
        Service::Order,
    ] {
        let schema = format!("{}/openapi.json", system.url(service));
        let run = tokio::task::spawn_blocking(move || {
            Command::new("st")
                .args([
                    "run",
                    &schema,
                    "--checks",
                    "not_a_server_error,response_schema_conformance",
                ])
                .args(["--max-examples", "40", "--seed", "20261122", "--no-color"])
                .output()
        })
        .await
        .expect("join")
        .unwrap_or_else(|e| {
            panic!("schemathesis: {e}; install it with: python3 -m pip install schemathesis")
        });
        let output = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{}:\n{output}{}",
            service.name(),
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            output.contains("passed"),
            "{}: nothing tested?\n{output}",
            service.name()
        );
    }
}
