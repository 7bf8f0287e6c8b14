//! `demo serve <service>`: one service, in the foreground, exactly as its own binary runs it.

use std::{io::Read, process::ExitCode};

use tokio_util::sync::CancellationToken;

use crate::cli::ServiceName;

/// Runs `service` until SIGTERM/SIGINT, or until standard input closes: the demo gives each
/// child a pipe, so a child stops by itself if the demo dies without stopping it.
pub fn serve(service: ServiceName) -> ExitCode {
    let stop = CancellationToken::new();
    let on_eof = stop.clone();
    std::thread::spawn(move || {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        on_eof.cancel();
    });
    use service_kit::runtime::block_on;
    match service {
        ServiceName::Order => block_on(&order_service::SERVICE, order_service::run(stop)),
        ServiceName::Inventory => {
            block_on(&inventory_service::SERVICE, inventory_service::run(stop))
        }
        ServiceName::Payment => block_on(&payment_service::SERVICE, payment_service::run(stop)),
        ServiceName::Notification => block_on(
            &notification_service::SERVICE,
            notification_service::run(stop),
        ),
    }
}
