//! payment-service: see the crate documentation; `payment_service::run` is the whole process.

use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    payment_service::run(CancellationToken::new()).await
}
