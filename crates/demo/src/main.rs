//! `demo`: the whole system with an embedded trace backend (default), `demo trace <id>`, or
//! `demo serve <service>`. See the crate documentation.

use std::process::ExitCode;

use clap::Parser;
use demo::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        // On the runtime the service's own binary builds (`service_kit::runtime`).
        Some(Command::Serve { service }) => return demo::serve::serve(service),
        command => command,
    };
    quiet_logs();
    service_kit::runtime::block_on_tool("demo", async {
        match command {
            Some(Command::Smoke(args)) => demo::smoke::smoke(args).await,
            Some(Command::Trace { id, api }) => demo::run::draw_trace(&id, &api).await,
            Some(Command::Serve { .. }) | None => demo::run::run(cli.run).await,
        }
    })
}

/// The demo's own warnings (the trace store's evictions, say) go to stderr, as plain text.
fn quiet_logs() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .try_init();
}
