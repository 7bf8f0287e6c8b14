//! notification-service: read settings, then run until SIGTERM/SIGINT.

use std::process::ExitCode;

use notification_service::{DEFAULT_PORT, SERVICE, router};
use service_kit::ListenSettings;
use tokio_util::task::TaskTracker;

#[tokio::main]
async fn main() -> ExitCode {
    let listen = match ListenSettings::from_env(DEFAULT_PORT) {
        Ok(listen) => listen,
        Err(e) => return service_kit::config_error(&SERVICE, &e),
    };
    service_kit::run(SERVICE, listen, router(), TaskTracker::new()).await
}
