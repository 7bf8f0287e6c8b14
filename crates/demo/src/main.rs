//! `demo`: the whole system with an embedded trace backend (default), `demo trace <id>`, or
//! `demo serve <service>`. See the crate documentation.

use std::process::ExitCode;

use clap::Parser;
use demo::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        // On the runtime the service's own binary builds (`service_kit::runtime`).
        Some(Command::Serve { service }) => demo::serve::serve(service),
        Some(Command::Smoke(args)) => as_tool(demo::smoke::smoke(args)),
        Some(Command::Trace { id, api }) => {
            as_tool(async move { demo::run::draw_trace(&id, &api).await })
        }
        None => as_tool(demo::run::run(cli.run)),
    }
}

/// The demo's own commands: quiet logs, tokio's default runtime (`block_on_tool`).
fn as_tool(main: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    quiet_logs();
    service_kit::runtime::block_on_tool("demo", main)
}

/// The demo's own warnings (the trace store's evictions, say) go to stderr, as plain text.
fn quiet_logs() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .try_init();
}
