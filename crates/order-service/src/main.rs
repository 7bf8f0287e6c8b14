//! order-service: read settings, then run until SIGTERM/SIGINT.

use std::process::ExitCode;

use order_service::{AppState, SERVICE, Settings, router};
use tokio_util::task::TaskTracker;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => return service_kit::config_error(&SERVICE, &e),
    };
    let background = TaskTracker::new();
    let state = match AppState::new(&settings, background.clone()) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("{}: cannot build the HTTP client: {e}", SERVICE.name);
            return ExitCode::FAILURE;
        }
    };
    service_kit::run(SERVICE, settings.listen, router(state), background).await
}
