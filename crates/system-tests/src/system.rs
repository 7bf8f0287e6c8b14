//! The whole system for one test: a trace-store in the test's runtime and the four services
//! as processes exporting to it.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use trace_store::{StoredSpan, TraceStore};

use crate::{ServiceProcess, free_port};

/// The four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// order-service.
    Order,
    /// inventory-service.
    Inventory,
    /// payment-service.
    Payment,
    /// notification-service.
    Notification,
}

impl Service {
    const ALL: [Service; 4] = [
        Self::Inventory,
        Self::Payment,
        Self::Notification,
        Self::Order,
    ];

    /// The binary and `service.name`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Order => "order-service",
            Self::Inventory => "inventory-service",
            Self::Payment => "payment-service",
            Self::Notification => "notification-service",
        }
    }

    /// The variable order-service reads this service's URL from.
    fn url_variable(self) -> Option<&'static str> {
        match self {
            Self::Order => None,
            Self::Inventory => Some("INVENTORY_SERVICE_URL"),
            Self::Payment => Some("PAYMENT_SERVICE_URL"),
            Self::Notification => Some("NOTIFICATION_SERVICE_URL"),
        }
    }
}

/// The OTLP transport the services export with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Otlp {
    /// OTLP/gRPC (the default).
    Grpc,
    /// OTLP/HTTP with protobuf.
    HttpProtobuf,
}

/// Describes a [`System`] before it starts.
pub struct SystemBuilder {
    otlp: Otlp,
    env: Vec<(String, String)>,
    service_env: HashMap<Service, Vec<(String, String)>>,
    absent: HashSet<Service>,
    replaced: HashMap<Service, String>,
    otlp_endpoint: Option<String>,
}

impl Default for SystemBuilder {
    fn default() -> Self {
        Self {
            otlp: Otlp::Grpc,
            // Export every 100 ms instead of every 5 s (1 s for logs), so tests do not wait.
            env: vec![
                ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
                ("OTEL_BLRP_SCHEDULE_DELAY".into(), "100".into()),
            ],
            service_env: HashMap::new(),
            absent: HashSet::new(),
            replaced: HashMap::new(),
            otlp_endpoint: None,
        }
    }
}

impl SystemBuilder {
    /// Exports over `otlp`.
    pub fn otlp(mut self, otlp: Otlp) -> Self {
        self.otlp = otlp;
        self
    }

    /// Sets `key=value` for every service.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets `key=value` for `service` only.
    pub fn service_env(mut self, service: Service, key: &str, value: &str) -> Self {
        self.service_env
            .entry(service)
            .or_default()
            .push((key.into(), value.into()));
        self
    }

    /// Does not start `service`: order-service calls a port where nothing listens.
    pub fn without(mut self, service: Service) -> Self {
        self.absent.insert(service);
        self
    }

    /// Does not start `service`: order-service calls `url` instead (a fake of the test's).
    pub fn replace(mut self, service: Service, url: String) -> Self {
        self.replaced.insert(service, url);
        self
    }

    /// Exports to `endpoint` (a store the test controls) instead of the system's own store.
    pub fn otlp_endpoint(mut self, endpoint: String) -> Self {
        self.otlp_endpoint = Some(endpoint);
        self
    }

    /// Starts the store and the services, and waits until every service is healthy.
    pub async fn start(self) -> System {
        let local = trace_store::start_local()
            .await
            .expect("trace-store starts");
        let endpoint = self
            .otlp_endpoint
            .clone()
            .unwrap_or_else(|| match self.otlp {
                Otlp::Grpc => format!("http://{}", local.grpc),
                Otlp::HttpProtobuf => format!("http://{}", local.http),
            });
        let store = local.store;
        let api = format!("http://{}", local.api);

        let protocol = match self.otlp {
            Otlp::Grpc => "grpc",
            Otlp::HttpProtobuf => "http/protobuf",
        };
        let mut common = vec![
            (
                "OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(),
                protocol.to_owned(),
            ),
            ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint),
        ];
        common.extend(self.env);

        let ports: HashMap<Service, u16> = Service::ALL.iter().map(|&s| (s, free_port())).collect();
        let mut order_env = Vec::new();
        for service in [Service::Inventory, Service::Payment, Service::Notification] {
            let url = self
                .replaced
                .get(&service)
                .cloned()
                .unwrap_or_else(|| format!("http://127.0.0.1:{}", ports[&service]));
            if let Some(variable) = service.url_variable() {
                order_env.push((variable.to_owned(), url));
            }
        }

        let log_dir = tempfile::tempdir().expect("temp dir for service logs");
        let mut processes = HashMap::new();
        let mut envs = HashMap::new();
        for service in Service::ALL {
            if self.absent.contains(&service) || self.replaced.contains_key(&service) {
                continue;
            }
            let mut env = common.clone();
            if service == Service::Order {
                env.extend(order_env.iter().cloned());
            }
            env.extend(self.service_env.get(&service).cloned().unwrap_or_default());
            let process =
                ServiceProcess::spawn(service.name(), ports[&service], &env, log_dir.path());
            processes.insert(service, process);
            envs.insert(service, env);
        }
        for process in processes.values_mut() {
            process.wait_healthy(Duration::from_secs(20)).await;
        }
        System {
            store,
            api,
            processes,
            envs,
            log_dir,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                // Below the services' idle-connection timeout (5 s, `service_kit::serve`), as
                // their own client's is: a test that pauses that long between two requests
                // would otherwise send the second on a connection the service is closing, and
                // read a broken answer (seen once, in `idle_connections`, on a loaded machine).
                .pool_idle_timeout(Duration::from_secs(4))
                .build()
                .expect("test HTTP client"),
        }
    }
}

/// What `POST /orders` answered.
#[derive(Debug)]
pub struct OrderAnswer {
    /// The status code.
    pub status: u16,
    /// The `X-Trace-Id` header.
    pub trace_id: Option<String>,
    /// The JSON body (`Null` if the body was not JSON).
    pub body: serde_json::Value,
    /// Time from sending to the full answer.
    pub elapsed: Duration,
}

/// A running system. Its processes are killed when it is dropped; its store stops with the
/// test's runtime.
pub struct System {
    /// Every span the services exported.
    pub store: TraceStore,
    /// The store's Tempo-compatible API, `http://127.0.0.1:<port>`.
    pub api: String,
    processes: HashMap<Service, ServiceProcess>,
    /// The environment each process was started with, for [`System::restart`].
    envs: HashMap<Service, Vec<(String, String)>>,
    log_dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl System {
    /// A system with every service started and default settings.
    pub fn builder() -> SystemBuilder {
        SystemBuilder::default()
    }

    /// The process of `service` (panics if it was not started).
    pub fn process(&self, service: Service) -> &ServiceProcess {
        &self.processes[&service]
    }

    /// The process of `service`, mutably.
    pub fn process_mut(&mut self, service: Service) -> &mut ServiceProcess {
        self.processes
            .get_mut(&service)
            .expect("service was started")
    }

    /// Starts `service` again, on its port and with its environment, once its process has
    /// exited (after a SIGTERM, say); waits until it is healthy.
    pub async fn restart(&mut self, service: Service) {
        let old = self
            .processes
            .remove(&service)
            .expect("service was started");
        let port = old.addr.port();
        drop(old);
        let mut process = ServiceProcess::spawn(
            service.name(),
            port,
            &self.envs[&service],
            self.log_dir.path(),
        );
        process.wait_healthy(Duration::from_secs(20)).await;
        self.processes.insert(service, process);
    }

    /// `http://127.0.0.1:<port>` of `service`.
    pub fn url(&self, service: Service) -> String {
        self.process(service).url()
    }

    /// A plain HTTP client (no tracing of its own).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// `service`'s `GET /metrics` exposition.
    pub async fn metrics(&self, service: Service) -> String {
        self.client
            .get(format!("{}/metrics", self.url(service)))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text")
    }

    /// Units of `item` inventory-service says are available.
    pub async fn available(&self, item: &str) -> u64 {
        let level: serde_json::Value = self
            .client
            .get(format!("{}/stock/{item}", self.url(Service::Inventory)))
            .send()
            .await
            .expect("inventory-service answers")
            .json()
            .await
            .expect("a JSON stock level");
        level["available"].as_u64().expect("available is a number")
    }

    /// Sends `POST /orders` with a JSON body.
    pub async fn post_order(&self, body: serde_json::Value) -> OrderAnswer {
        let request = self
            .client
            .post(format!("{}/orders", self.url(Service::Order)))
            .json(&body);
        send(request).await
    }

    /// Sends `POST /orders` with a raw body and content type.
    pub async fn post_order_raw(
        &self,
        body: impl Into<reqwest::Body>,
        content_type: &str,
    ) -> OrderAnswer {
        let request = self
            .client
            .post(format!("{}/orders", self.url(Service::Order)))
            .header("content-type", content_type)
            .body(body);
        send(request).await
    }

    /// Waits until the trace holds at least `count` spans (or 10 s pass), then a moment more
    /// so that any span beyond `count` would arrive too; returns the trace.
    /// Panics if the trace-store refused any span the services sent (an attribute key twice).
    pub async fn trace(&self, trace_id: &str, count: usize) -> Vec<StoredSpan> {
        let spans = self
            .store
            .wait_for(trace_id, Duration::from_secs(10), |spans| {
                spans.len() >= count
            })
            .await;
        if spans.len() >= count {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // A span the store refused is a defect of the services, whatever the test looks at.
        if let Some(refusal) = self.store.last_refusal() {
            panic!("the trace-store refused a span: {refusal}");
        }
        self.store.trace(trace_id)
    }
}

/// Sends a request and reads the answer as an [`OrderAnswer`].
pub async fn send(request: reqwest::RequestBuilder) -> OrderAnswer {
    let started = Instant::now();
    let response = request.send().await.expect("order-service answers");
    let status = response.status().as_u16();
    let trace_id = response
        .headers()
        .get("x-trace-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap_or_default();
    OrderAnswer {
        status,
        trace_id,
        body: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        elapsed: started.elapsed(),
    }
}
