//! The default command: the whole system, the two orders, then every new trace until Ctrl-C.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    io::{self, Write},
    net::SocketAddr,
    process::ExitCode,
    time::{Duration, Instant},
};

use anstream::{eprintln, print, println};
use anstyle::{AnsiColor, Style};
use serde_json::json;
use tokio::net::TcpListener;
use trace_store::{StoredSpan, TraceStore};

use crate::{
    cli::{RunArgs, ServiceName},
    supervisor::ServiceChild,
    waterfall,
};

const OK: Style = AnsiColor::Green.on_default().bold();
const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

/// A trace is drawn once no span has reached it for this long.
const SETTLE: Duration = Duration::from_millis(1200);

/// The two requests of the spec, fast and slow.
pub(crate) const ORDERS: [(&str, i64); 2] = [("fast path", 2), ("slow path", 8)];

/// Runs everything until SIGINT/SIGTERM. Exit status 0 after a clean stop, 1 if something could
/// not start.
pub async fn run(args: RunArgs) -> ExitCode {
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot listen for signals: {e}")),
    };
    let store = TraceStore::with_capacity(args.max_spans);
    if let Err(message) = start_store(&args, &store).await {
        return fail(&message);
    }

    let log_dir = std::env::temp_dir().join(format!("tracing-demo-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&log_dir) {
        return fail(&format!("cannot create {}: {e}", log_dir.display()));
    }
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(http) => http,
        Err(e) => return fail(&format!("cannot build an HTTP client: {e}")),
    };
    let mut children = Vec::new();
    let started = tokio::select! {
        started = start_services(&args, &log_dir, &http, &mut children) => started,
        _ = signals.next() => Err("interrupted during start-up".to_owned()),
    };
    if let Err(message) = started {
        stop_all(children).await;
        return fail(&message);
    }
    println!(
        "{DIM}service logs (JSON lines): {}{DIM:#}\n",
        log_dir.display()
    );

    let width = terminal_width();
    let mut shown = Shown::default();
    let order_url = format!("http://127.0.0.1:{}/orders", args.order_port);
    for (label, quantity) in ORDERS {
        let body = json!({"item": "book", "quantity": quantity, "price": 9.99});
        println!(
            "{BOLD}$ curl -X POST {order_url} -H 'Content-Type: application/json' -d '{body}'{BOLD:#}   # {label}"
        );
        match send_order(&http, &order_url, &body).await {
            Ok((status, trace_id)) => {
                println!("{status}, X-Trace-Id: {trace_id}\n");
                let spans = settle(&store, &trace_id).await;
                let logs = store.logs(&trace_id);
                print!("{}", waterfall::render(&spans, &logs, width));
                println!();
                shown.insert(trace_id);
            }
            Err(e) => eprintln!("order failed: {e}"),
        }
    }
    println!(
        "{BOLD}Serving.{BOLD:#} Send orders to {order_url}; each new trace appears below.\n\
         Tempo API: http://127.0.0.1:{api} (e.g. curl http://127.0.0.1:{api}/api/search?tags=service.name=order-service)\n\
         Draw a trace: cargo run --release -- trace <trace-id> --api http://127.0.0.1:{api}\n\
         Ctrl-C stops everything.\n",
        api = args.api_port
    );
    let _ = io::stdout().flush();

    follow(&store, &args, width, &mut shown, &mut signals).await;

    println!("\nstopping…");
    let clean = stop_all(children).await;
    let stats = store.stats();
    println!(
        "stopped. The store held {} spans in {} traces ({} evicted).",
        stats.spans, stats.traces, stats.evicted_spans
    );
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Binds the store's three ports and serves them.
async fn start_store(args: &RunArgs, store: &TraceStore) -> Result<(), String> {
    let bind = |port: u16, what: &'static str, flag: &'static str| async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        TcpListener::bind(addr)
            .await
            .map_err(|e| busy_port(port, what, flag, &e))
    };
    let grpc = bind(
        args.otlp_grpc_port,
        "the OTLP/gRPC receiver",
        "--otlp-grpc-port",
    )
    .await?;
    let http = bind(
        args.otlp_http_port,
        "the OTLP/HTTP receiver",
        "--otlp-http-port",
    )
    .await?;
    let api = bind(args.api_port, "the Tempo API", "--api-port").await?;
    let never = std::future::pending::<()>;
    tokio::spawn(trace_store::serve_grpc(grpc, store.clone(), never()));
    tokio::spawn(trace_store::serve_http(http, store.clone(), never()));
    tokio::spawn(trace_store::serve_query(api, store.clone(), never()));
    println!(
        "{OK}✓{OK:#} trace-store           OTLP gRPC 127.0.0.1:{} · OTLP HTTP 127.0.0.1:{} · Tempo API http://127.0.0.1:{}",
        args.otlp_grpc_port, args.otlp_http_port, args.api_port
    );
    Ok(())
}

fn busy_port(port: u16, what: &str, flag: &str, error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::AddrInUse {
        format!(
            "port {port} ({what}) is already in use: stop what holds it, or move it with {flag} <PORT>"
        )
    } else {
        format!("cannot listen on 127.0.0.1:{port} ({what}): {error}")
    }
}

/// Starts the four services in order and waits for each to be healthy.
async fn start_services(
    args: &RunArgs,
    log_dir: &std::path::Path,
    http: &reqwest::Client,
    children: &mut Vec<ServiceChild>,
) -> Result<(), String> {
    // Check every port first: a busy one is a clear message, not a child's start-up failure.
    for service in ServiceName::ALL {
        let port = args.port(service);
        std::net::TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| busy_port(port, service.name(), service.port_flag(), &e))?;
    }
    let url = |s: ServiceName| format!("http://127.0.0.1:{}", args.port(s));
    let env: Vec<(String, String)> = [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", args.otlp_grpc_port),
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
        // Export every 200 ms instead of every 5 s, so a trace is drawn right after its request.
        ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
        ("INVENTORY_SERVICE_URL", url(ServiceName::Inventory)),
        ("PAYMENT_SERVICE_URL", url(ServiceName::Payment)),
        ("NOTIFICATION_SERVICE_URL", url(ServiceName::Notification)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for service in ServiceName::ALL {
        let mut child = ServiceChild::spawn(service, args.port(service), &env, log_dir)
            .map_err(|e| e.to_string())?;
        let healthy = child.wait_healthy(http).await;
        let pid = child.pid().unwrap_or_default();
        let url = child.url.clone();
        children.push(child);
        healthy.map_err(|e| e.to_string())?;
        println!("{OK}✓{OK:#} {:<21} {url}  (pid {pid})", service.name());
    }
    Ok(())
}

/// Stops every child (order-service first, so no request finds its callee gone); returns
/// whether all stopped cleanly.
async fn stop_all(children: Vec<ServiceChild>) -> bool {
    let mut clean = true;
    for child in children.into_iter().rev() {
        let name = child.service.name();
        if child.stop().await {
            println!("{OK}✓{OK:#} {name} stopped");
        } else {
            println!("{name} had to be killed");
            clean = false;
        }
    }
    clean
}

pub(crate) async fn send_order(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<(reqwest::StatusCode, String), String> {
    let response = http
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| with_causes(&e))?;
    let status = response.status();
    let trace_id = response
        .headers()
        .get("x-trace-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or("the answer has no X-Trace-Id header")?;
    Ok((status, trace_id))
}

/// Waits until `trace_id` has spans and none arrived for [`SETTLE`] (at most 15 s).
async fn settle(store: &TraceStore, trace_id: &str) -> Vec<StoredSpan> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut count = 0;
    let mut quiet_since = Instant::now();
    loop {
        let spans = store.trace(trace_id);
        if spans.len() != count {
            count = spans.len();
            quiet_since = Instant::now();
        }
        if (count > 0 && quiet_since.elapsed() >= SETTLE) || Instant::now() >= deadline {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Traces already printed, remembered up to a bound.
#[derive(Default)]
struct Shown {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Shown {
    const CAPACITY: usize = 100_000;

    fn insert(&mut self, id: String) {
        if self.set.insert(id.clone()) {
            self.order.push_back(id);
            if self.order.len() > Self::CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}

/// Prints each new trace once it has settled, until a signal.
async fn follow(
    store: &TraceStore,
    args: &RunArgs,
    width: usize,
    shown: &mut Shown,
    signals: &mut Signals,
) {
    let (mut seen, _) = store.changed_since(u64::MAX);
    let mut pending: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = signals.next() => return,
            _ = tick.tick() => {}
        }
        let (now_seen, changed) = store.changed_since(seen);
        seen = now_seen;
        for id in changed {
            pending.insert(id, Instant::now());
        }
        let settled: Vec<String> = pending
            .iter()
            .filter(|(_, at)| at.elapsed() >= SETTLE)
            .map(|(id, _)| id.clone())
            .collect();
        for id in settled {
            pending.remove(&id);
            if shown.set.contains(&id) {
                continue;
            }
            let spans = store.trace(&id);
            if spans.is_empty() {
                continue;
            }
            if args.draw_all {
                print!("{}", waterfall::render(&spans, &store.logs(&id), width));
                println!();
            } else {
                println!(
                    "{}  {DIM}→ cargo run --release -- trace {id} --api http://127.0.0.1:{}{DIM:#}",
                    waterfall::summary(&spans),
                    args.api_port
                );
            }
            shown.insert(id);
        }
        let _ = io::stdout().flush();
    }
}

/// SIGINT and SIGTERM, as one stream.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

fn terminal_width() -> usize {
    terminal_size::terminal_size()
        .map(|(w, _)| usize::from(w.0))
        .or_else(|| std::env::var("COLUMNS").ok()?.parse().ok())
        .unwrap_or(120)
        .max(60)
}

fn fail(message: &str) -> ExitCode {
    eprintln!("demo: {message}");
    ExitCode::FAILURE
}

/// `demo trace <id> --api <url>`: draws one trace from a Tempo-compatible API.
pub async fn draw_trace(id: &str, api: &str) -> ExitCode {
    let valid = (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        eprintln!("demo: invalid trace id {id:?}: expected up to 32 hex digits");
        return ExitCode::from(2);
    }
    let client = match trace_store::TempoClient::new(api) {
        Ok(client) => client,
        Err(e) => {
            eprintln!("demo: {e}");
            return ExitCode::from(2);
        }
    };
    match client.trace(id).await {
        Ok(Some(spans)) => {
            // This store's API has the trace's log lines; a real Tempo has none (Loki has).
            let logs = client.logs(id).await.ok().flatten().unwrap_or_default();
            print!("{}", waterfall::render(&spans, &logs, terminal_width()));
            ExitCode::SUCCESS
        }
        Ok(None) => fail(&format!("trace {id} not found at {api}")),
        Err(e) => fail(&e.to_string()),
    }
}

/// `error: cause: cause`, since reqwest's own message leaves out why ("connection refused").
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
