//! `demo`: the whole system with an embedded trace backend (default), `demo trace <id>`, or
//! `demo serve <service>`. See the crate documentation.

use std::process::ExitCode;

use clap::Parser;
use demo::cli::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Serve { service }) => demo::serve::serve(service).await,
        Some(Command::Smoke(args)) => {
            quiet_logs();
            demo::smoke::smoke(args).await
        }
        Some(Command::Trace { id, api }) => {
            quiet_logs();
            demo::run::draw_trace(&id, &api).await
        }
        None => {
            quiet_logs();
            demo::run::run(cli.run).await
        }
    }
}

/// The demo's own warnings (the trace store's evictions, say) go to stderr, as plain text.
fn quiet_logs() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .try_init();
}
