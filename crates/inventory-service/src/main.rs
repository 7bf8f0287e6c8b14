//! inventory-service: see the crate documentation; `inventory_service::run` is the whole process.

use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    inventory_service::run(CancellationToken::new()).await
}
