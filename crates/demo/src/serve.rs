//! `demo serve <service>`: one service, in the foreground, exactly as its own binary runs it.

use std::{io::Read, process::ExitCode};

use tokio_util::sync::CancellationToken;

use crate::cli::ServiceName;

/// Runs `service` until SIGTERM/SIGINT, or until standard input closes: the demo gives each
/// child a pipe, so a child stops by itself if the demo dies without stopping it.
pub async fn serve(service: ServiceName) -> ExitCode {
    let stop = CancellationToken::new();
    let on_eof = stop.clone();
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        on_eof.cancel();
    });
    match service {
        ServiceName::Order => order_service::run(stop).await,
        ServiceName::Inventory => inventory_service::run(stop).await,
        ServiceName::Payment => payment_service::run(stop).await,
        ServiceName::Notification => notification_service::run(stop).await,
    }
}
