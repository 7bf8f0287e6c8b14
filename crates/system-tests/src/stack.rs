//! The compose stack as far as it runs on a machine without Docker: the four service binaries
//! with the environment `docker-compose.yml` gives each, the trace-store where the Collector
//! would be (its OTLP receivers, and its connectors' span metrics and service graph), and the
//! real Prometheus with the compose service's flags and its mounted files.
//!
//! Each compose `host:port` is mapped to where the test runs that component ([`HostMap`]);
//! components that do not run here (the Collector's own telemetry, Tempo's `/metrics`,
//! Grafana) map to a port where nothing listens, so a reference to them fails as it would if
//! they were down, rather than reaching something else.

use std::{
    collections::HashMap,
    net::{SocketAddr, TcpListener},
    process::Command,
    time::Duration,
};

use serde_json::Value;
use trace_store::TraceStore;

use crate::{
    ServiceProcess,
    compose::{Compose, HostMap, container_paths},
    free_port,
};

/// The four services, in start order (order-service last: it calls the others).
pub const SERVICES: [&str; 4] = [
    "inventory-service",
    "payment-service",
    "notification-service",
    "order-service",
];

/// Compose flags of the `prometheus` service left out because Debian's Prometheus (2.42,
/// the one installable here) does not have them. Each entry is a v3-only flag; a flag missing
/// here that 2.42 lacks fails the test, so nothing is dropped silently.
pub const PROMETHEUS_V3_ONLY_FLAGS: [&str; 0] = [];

/// A running local stack. Processes are killed when it is dropped.
pub struct LocalStack {
    /// The spans received where the Collector would be.
    pub store: TraceStore,
    /// The store's Tempo-compatible query API, standing in for Tempo's, `http://…`.
    pub tempo_url: String,
    /// The real Prometheus, `http://…`.
    pub prometheus_url: String,
    /// Compose flags of Prometheus that were not passed (see [`PROMETHEUS_V3_ONLY_FLAGS`]).
    pub left_out_flags: Vec<String>,
    /// The full command line Prometheus was started with.
    pub prometheus_args: Vec<String>,
    processes: HashMap<String, ServiceProcess>,
    _root: tempfile::TempDir,
}

impl LocalStack {
    /// Starts everything and waits until each program is ready.
    pub async fn start() -> Self {
        let compose = Compose::load();
        let local = trace_store::start_local()
            .await
            .expect("trace-store starts");
        let nowhere = closed_port();
        let prometheus_port = free_port();
        let mut hosts = HostMap::new()
            .with("otel-collector:4317", local.grpc.to_string())
            .with("otel-collector:4318", local.http.to_string())
            .with("otel-collector:8889", local.metrics.to_string())
            .with("otel-collector:8888", nowhere.clone())
            .with("otel-collector:13133", nowhere.clone())
            .with("tempo:3200", local.api.to_string())
            .with("grafana:3000", nowhere.clone())
            .with("prometheus:9090", format!("127.0.0.1:{prometheus_port}"))
            // Prometheus scraping itself, from inside its own container.
            .with("localhost:9090", format!("127.0.0.1:{prometheus_port}"));
        let mut service_ports = HashMap::new();
        for service in SERVICES {
            let port = compose_port(&compose, service);
            let local_port = free_port();
            hosts = hosts.with(
                &format!("{service}:{port}"),
                format!("127.0.0.1:{local_port}"),
            );
            service_ports.insert(service, local_port);
        }
        // Tempo's own /metrics is not produced here: only its query API has a stand-in.
        let prometheus_hosts = hosts.clone().with("tempo:3200", nowhere);

        let root = tempfile::tempdir().expect("temp dir for the stack");
        let logs = root.path().join("logs");
        std::fs::create_dir_all(&logs).expect("logs folder");
        let mut processes = HashMap::new();
        for service in SERVICES {
            let env: Vec<(String, String)> = compose
                .environment(service)
                .into_iter()
                .map(|(key, value)| {
                    let value = match key.as_str() {
                        // A container listens on all of its interfaces; here, loopback only.
                        "HOST" => "127.0.0.1".to_owned(),
                        "PORT" => service_ports[service].to_string(),
                        _ => hosts.rewrite(&value),
                    };
                    (key, value)
                })
                .collect();
            let mut command = Command::new(crate::binary_path(service));
            command.env_clear().envs(env).env("PATH", "/usr/bin:/bin");
            let addr = SocketAddr::from(([127, 0, 0, 1], service_ports[service]));
            let process = ServiceProcess::spawn_command(service, command, addr, &logs);
            processes.insert(service.to_owned(), process);
        }

        let placed = compose.materialise(
            "prometheus",
            &root.path().join("prometheus"),
            &prometheus_hosts,
        );
        let known = prometheus_flags();
        let mut left_out_flags = Vec::new();
        let mut prometheus_args = Vec::new();
        for arg in compose.command("prometheus") {
            let flag = arg.split('=').next().unwrap_or(&arg).to_owned();
            if !known.contains(&flag) {
                left_out_flags.push(arg);
                continue;
            }
            prometheus_args.push(match arg.split_once('=') {
                Some((flag, value)) => format!("{flag}={}", container_paths(value, &placed)),
                None => arg,
            });
        }
        prometheus_args.push(format!("--web.listen-address=127.0.0.1:{prometheus_port}"));
        let mut command = Command::new("prometheus");
        command.args(&prometheus_args);
        let addr = SocketAddr::from(([127, 0, 0, 1], prometheus_port));
        let prometheus = ServiceProcess::spawn_command("prometheus", command, addr, &logs);
        processes.insert("prometheus".into(), prometheus);

        for process in processes.values_mut() {
            let path = if process.name == "prometheus" {
                "/-/ready"
            } else {
                "/health"
            };
            process.wait_ready(path, Duration::from_secs(30)).await;
        }
        Self {
            store: local.store,
            tempo_url: format!("http://{}", local.api),
            prometheus_url: format!("http://127.0.0.1:{prometheus_port}"),
            left_out_flags,
            prometheus_args,
            processes,
            _root: root,
        }
    }

    /// `http://127.0.0.1:<port>` of compose service `name`.
    pub fn url(&self, name: &str) -> String {
        self.processes
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not running"))
            .url()
    }

    /// Runs a PromQL instant query; the `data.result` array.
    pub async fn query(&self, promql: &str) -> Vec<Value> {
        let body = self
            .prometheus_api("/api/v1/query", &[("query", promql)])
            .await;
        body["result"].as_array().cloned().unwrap_or_default()
    }

    /// `GET` a Prometheus API path with query parameters; the `data` of a success answer.
    pub async fn prometheus_api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let url =
            reqwest::Url::parse_with_params(&format!("{}{path}", self.prometheus_url), params)
                .expect("a valid Prometheus URL");
        let answer: Value = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap_or_else(|e| panic!("Prometheus {path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("Prometheus {path}: not JSON: {e}"));
        assert_eq!(answer["status"], "success", "Prometheus {path}: {answer}");
        answer["data"].clone()
    }
}

/// The port compose service `name` listens on (its `PORT` variable).
fn compose_port(compose: &Compose, name: &str) -> u16 {
    compose
        .environment(name)
        .into_iter()
        .find(|(k, _)| k == "PORT")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} has no PORT in docker-compose.yml"))
}

/// The long flags this machine's `prometheus` accepts, from its `--help`.
fn prometheus_flags() -> Vec<String> {
    let output = Command::new("prometheus")
        .arg("--help")
        .output()
        .unwrap_or_else(|e| {
            panic!("prometheus: {e}; install it with: apt-get install -y prometheus")
        });
    let help = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    help.split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| {
            w.split(['=', '['])
                .next()
                .unwrap_or(w)
                .trim_end_matches(',')
                .to_owned()
        })
        .collect()
}

/// `127.0.0.1:<port>` where nothing listens (a component that does not run here).
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr.to_string()
}
