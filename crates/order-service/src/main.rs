//! order-service: see the crate documentation; `order_service::run` is the whole process.

use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    order_service::run(CancellationToken::new()).await
}
