//! notification-service: see the crate documentation; `notification_service::run` is the whole process.

use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    notification_service::run(CancellationToken::new()).await
}
