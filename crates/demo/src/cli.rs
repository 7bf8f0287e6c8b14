//! The command line.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Runs the four services with an embedded trace backend and draws each trace in the terminal.
#[derive(Debug, Parser)]
#[command(
    name = "demo",
    version,
    after_help = "With no command, runs everything (see the options above).\nExamples:\n  cargo run --release\n  cargo run --release -- trace 4bf92f3577b34da6a3ce929d0e0e4736 --api http://localhost:3200"
)]
pub struct Cli {
    /// What to do (default: run everything).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the default command.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Draw one trace from a Tempo-compatible API (this demo's, or the compose stack's Tempo).
    Trace {
        /// The trace id (hex), as in a response's X-Trace-Id header.
        id: String,
        /// Base URL of the Tempo HTTP API.
        #[arg(long, default_value = "http://localhost:3200")]
        api: String,
    },
    /// Check a running stack (after `docker compose up --wait`): send the two orders, then
    /// find their traces in Tempo, the services and the service graph in Prometheus, and
    /// Grafana's health and datasources. One PASS/FAIL line per step; exit 1 if any failed.
    Smoke(SmokeArgs),
    /// Run one service in the foreground; the default command starts one of each.
    Serve {
        /// Which service.
        service: ServiceName,
    },
}

/// Where the stack's components answer (the compose file's published ports by default).
#[derive(Debug, Clone, Args)]
pub struct SmokeArgs {
    /// Base URL of order-service.
    #[arg(long, default_value = "http://localhost:8001")]
    pub order_url: String,
    /// Base URL of the Tempo HTTP API.
    #[arg(long, default_value = "http://localhost:3200")]
    pub tempo_url: String,
    /// Base URL of Prometheus.
    #[arg(long, default_value = "http://localhost:9090")]
    pub prometheus_url: String,
    /// Base URL of Grafana.
    #[arg(long, default_value = "http://localhost:3000")]
    pub grafana_url: String,
    /// Skip the Grafana steps (a stack without Grafana).
    #[arg(long)]
    pub skip_grafana: bool,
    /// Base URL of Loki's HTTP API.
    #[arg(long, default_value = "http://localhost:3100")]
    pub loki_url: String,
    /// Seconds the steps may wait, in all, for data to arrive (tail sampling holds a trace
    /// 10 s; the service graph needs a connector flush and a scrape, 15 s each).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

/// The four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceName {
    /// order-service.
    #[value(name = "order-service")]
    Order,
    /// inventory-service.
    #[value(name = "inventory-service")]
    Inventory,
    /// payment-service.
    #[value(name = "payment-service")]
    Payment,
    /// notification-service.
    #[value(name = "notification-service")]
    Notification,
}

impl ServiceName {
    /// Start order: order-service last, as it calls the others.
    pub const ALL: [ServiceName; 4] = [
        Self::Inventory,
        Self::Payment,
        Self::Notification,
        Self::Order,
    ];

    /// The `service.name`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Order => "order-service",
            Self::Inventory => "inventory-service",
            Self::Payment => "payment-service",
            Self::Notification => "notification-service",
        }
    }

    /// The flag that moves its port.
    pub fn port_flag(self) -> &'static str {
        match self {
            Self::Order => "--order-port",
            Self::Inventory => "--inventory-port",
            Self::Payment => "--payment-port",
            Self::Notification => "--notification-port",
        }
    }
}

/// Where everything listens (always 127.0.0.1), and how traces are shown.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// order-service port.
    #[arg(long, default_value_t = 8001)]
    pub order_port: u16,
    /// inventory-service port.
    #[arg(long, default_value_t = 8002)]
    pub inventory_port: u16,
    /// payment-service port.
    #[arg(long, default_value_t = 8003)]
    pub payment_port: u16,
    /// notification-service port.
    #[arg(long, default_value_t = 8004)]
    pub notification_port: u16,
    /// Port of the trace store's OTLP/gRPC receiver.
    #[arg(long, default_value_t = 4317)]
    pub otlp_grpc_port: u16,
    /// Port of the trace store's OTLP/HTTP receiver.
    #[arg(long, default_value_t = 4318)]
    pub otlp_http_port: u16,
    /// Port of the trace store's Tempo-compatible query API.
    #[arg(long, default_value_t = 3200)]
    pub api_port: u16,
    /// Most spans the store keeps; the oldest traces are evicted beyond it.
    #[arg(long, default_value_t = trace_store::DEFAULT_MAX_SPANS)]
    pub max_spans: usize,
    /// Draw every new trace in full, not as a one-line summary.
    #[arg(long)]
    pub draw_all: bool,
}

impl RunArgs {
    /// The port of `service`.
    pub fn port(&self, service: ServiceName) -> u16 {
        match service {
            ServiceName::Order => self.order_port,
            ServiceName::Inventory => self.inventory_port,
            ServiceName::Payment => self.payment_port,
            ServiceName::Notification => self.notification_port,
        }
    }
}
