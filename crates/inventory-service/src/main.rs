//! inventory-service: read settings, then run until SIGTERM/SIGINT.

use std::process::ExitCode;

use inventory_service::{SERVICE, Settings, StockBook, router};
use tokio_util::task::TaskTracker;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => return service_kit::config_error(&SERVICE, &e),
    };
    let app = router(StockBook::new(settings.stock));
    service_kit::run(SERVICE, settings.listen, app, TaskTracker::new()).await
}
