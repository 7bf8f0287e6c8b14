//! order-service: see the crate documentation; `order_service::run` is the whole
//! process, on the runtime `service_kit::runtime` builds.

use tokio_util::sync::CancellationToken;

fn main() -> std::process::ExitCode {
    service_kit::runtime::block_on(
        &order_service::SERVICE,
        order_service::run(CancellationToken::new()),
    )
}
