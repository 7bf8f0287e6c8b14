//! inventory-service: see the crate documentation; `inventory_service::run` is the whole
//! process, on the runtime `service_kit::runtime` builds.

use tokio_util::sync::CancellationToken;

fn main() -> std::process::ExitCode {
    service_kit::runtime::block_on(
        &inventory_service::SERVICE,
        inventory_service::run(CancellationToken::new()),
    )
}
