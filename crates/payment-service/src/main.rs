//! payment-service: see the crate documentation; `payment_service::run` is the whole
//! process, on the runtime `service_kit::runtime` builds.

use tokio_util::sync::CancellationToken;

fn main() -> std::process::ExitCode {
    service_kit::runtime::block_on(
        &payment_service::SERVICE,
        payment_service::run(CancellationToken::new()),
    )
}
