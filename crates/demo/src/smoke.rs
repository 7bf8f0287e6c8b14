//! `demo smoke`: after `docker compose up --wait`, checks what a user is about to look at, one
//! line per step with PASS, FAIL or SKIP: the two curls of the README answered, both traces in
//! Tempo, the slow order's log lines in Loki with their span's id, the four services scraped by
//! Prometheus, the service-graph edges computed by the Collector, and Grafana healthy with its
//! datasources provisioned.
//!
//! Every step polls until it passes or the shared deadline passes: spans reach Tempo only after
//! the services' batch delay and the Collector's tail-sampling wait, and the service graph only
//! after the connector's flush and a Prometheus scrape. Every call has its own timeout.

use std::{
    collections::BTreeSet,
    process::ExitCode,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use trace_store::{StoredSpan, TempoClient};

use crate::{
    cli::SmokeArgs,
    run::{ORDERS, send_order, with_causes},
    waterfall,
};

/// The services whose series Prometheus must have.
const SERVICES: [&str; 4] = [
    "order-service",
    "inventory-service",
    "payment-service",
    "notification-service",
];

/// The calls an order makes, as service-graph edges.
const EDGES: [(&str, &str); 3] = [
    ("order-service", "inventory-service"),
    ("order-service", "payment-service"),
    ("order-service", "notification-service"),
];

/// The Grafana datasources provisioned from `grafana/provisioning/datasources/`.
const DATASOURCES: [&str; 3] = ["loki", "prometheus", "tempo"];

/// How a step ended.
enum Outcome {
    Pass(String),
    Fail(String),
    Skip(String),
}

/// Runs every step and prints one line each; fails if any step failed.
pub async fn smoke(args: SmokeArgs) -> ExitCode {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            eprintln!("demo smoke: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tempo = match TempoClient::new(&args.tempo_url) {
        Ok(tempo) => tempo,
        Err(e) => {
            eprintln!("demo smoke: --tempo-url: {e}");
            return ExitCode::from(2);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    println!(
        "smoke check: orders {}, Tempo {}, Prometheus {}, Grafana {}",
        args.order_url,
        args.tempo_url,
        args.prometheus_url,
        if args.skip_grafana {
            "skipped"
        } else {
            &args.grafana_url
        }
    );

    let mut failed = 0;
    let mut report = |step: &str, outcome: Outcome| {
        let (mark, detail) = match outcome {
            Outcome::Pass(d) => ("PASS", d),
            Outcome::Fail(d) => {
                failed += 1;
                ("FAIL", d)
            }
            Outcome::Skip(d) => ("SKIP", d),
        };
        println!("{mark}  {step:<44} {detail}");
    };

    let orders = place_orders(&http, &args.order_url).await;
    let trace_ids: Vec<(String, String)> = match &orders {
        Ok((ids, detail)) => {
            report(
                "order-service answers the two curls",
                Outcome::Pass(detail.clone()),
            );
            ids.clone()
        }
        Err(e) => {
            report(
                "order-service answers the two curls",
                Outcome::Fail(e.clone()),
            );
            Vec::new()
        }
    };
    let outcome = if trace_ids.is_empty() {
        Outcome::Skip("no trace ids to look for".into())
    } else {
        find_traces(&tempo, &trace_ids, deadline).await
    };
    report("Tempo has both traces", outcome);
    let outcome = match trace_ids.iter().find(|(label, _)| label == "slow path") {
        Some((_, slow)) => slow_order_logs(&http, &args.loki_url, slow, deadline).await,
        None => Outcome::Skip("no slow-path trace id".into()),
    };
    report("Loki has the slow order's log lines", outcome);
    report(
        "Prometheus scrapes the four services",
        services_scraped(&http, &args.prometheus_url, deadline).await,
    );
    report(
        "Prometheus has the service-graph edges",
        service_graph(&http, &args.prometheus_url, deadline).await,
    );
    if args.skip_grafana {
        report("Grafana is healthy", Outcome::Skip("--skip-grafana".into()));
        report(
            "Grafana has its datasources",
            Outcome::Skip("--skip-grafana".into()),
        );
    } else {
        report(
            "Grafana is healthy",
            grafana_health(&http, &args.grafana_url).await,
        );
        report(
            "Grafana has its datasources",
            grafana_datasources(&http, &args.grafana_url).await,
        );
    }
    if failed == 0 {
        println!("all checks passed");
        ExitCode::SUCCESS
    } else {
        println!("{failed} check(s) failed");
        ExitCode::FAILURE
    }
}

/// The two curls of the README; their labels and trace ids.
async fn place_orders(
    http: &reqwest::Client,
    order_url: &str,
) -> Result<(Vec<(String, String)>, String), String> {
    let url = format!("{}/orders", order_url.trim_end_matches('/'));
    let mut ids = Vec::new();
    let mut details = Vec::new();
    for (label, quantity) in ORDERS {
        let body = json!({"item": "book", "quantity": quantity, "price": 9.99});
        let started = Instant::now();
        let (status, trace_id) = send_order(http, &url, &body)
            .await
            .map_err(|e| format!("{label}: POST {url}: {e}"))?;
        if status != reqwest::StatusCode::CREATED {
            return Err(format!(
                "{label}: {status}, expected 201 (trace {trace_id})"
            ));
        }
        details.push(format!(
            "{label} 201 in {} ms",
            started.elapsed().as_millis()
        ));
        ids.push((label.to_owned(), trace_id));
    }
    Ok((ids, details.join(", ")))
}

/// Polls Tempo until each trace has spans of all four services.
async fn find_traces(tempo: &TempoClient, ids: &[(String, String)], deadline: Instant) -> Outcome {
    let mut details = Vec::new();
    for (label, id) in ids {
        let spans = loop {
            let found = match tempo.trace(id).await {
                Ok(spans) => spans.unwrap_or_default(),
                Err(e) => return Outcome::Fail(format!("{label} {id}: {e}")),
            };
            if services_of(&found).len() == SERVICES.len() || Instant::now() >= deadline {
                break found;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let services = services_of(&spans);
        if services.len() < SERVICES.len() {
            return Outcome::Fail(format!(
                "{label} trace {id}: {} spans from {services:?} (all four services expected)",
                spans.len()
            ));
        }
        let dominant = waterfall::dominant_span(&spans)
            .and_then(|d| {
                spans
                    .iter()
                    .find(|s| s.span_id == d.span_id)
                    .map(|s| format!(", widest {} {:.0} %", s.name, d.share * 100.0))
            })
            .unwrap_or_default();
        details.push(format!("{label} {id}: {} spans{dominant}", spans.len()));
    }
    Outcome::Pass(details.join("; "))
}

fn services_of(spans: &[StoredSpan]) -> BTreeSet<&str> {
    spans.iter().map(|s| s.service_name.as_str()).collect()
}

/// Polls until `up` is 1 and request durations exist for every service.
async fn services_scraped(http: &reqwest::Client, prometheus: &str, deadline: Instant) -> Outcome {
    poll(deadline, || async {
        let jobs = |result: Vec<Value>, value: Option<&str>| -> BTreeSet<String> {
            result
                .iter()
                .filter(|s| value.is_none_or(|v| s["value"][1] == v))
                .filter_map(|s| s["metric"]["job"].as_str().map(str::to_owned))
                .collect()
        };
        let up = jobs(instant_query(http, prometheus, "up").await?, Some("1"));
        let with_requests = jobs(
            instant_query(
                http,
                prometheus,
                "count by (job) (http_server_request_duration_seconds_count)",
            )
            .await?,
            None,
        );
        let missing: Vec<String> = SERVICES
            .iter()
            .filter(|s| !up.contains(**s) || !with_requests.contains(**s))
            .map(|s| {
                let why = if up.contains(*s) {
                    "no request series"
                } else {
                    "not up"
                };
                format!("{s} ({why})")
            })
            .collect();
        if missing.is_empty() {
            Ok(Ok("all four up, with request series".to_owned()))
        } else {
            Ok(Err(missing.join(", ")))
        }
    })
    .await
}

/// Polls until the three edges of an order are counted.
async fn service_graph(http: &reqwest::Client, prometheus: &str, deadline: Instant) -> Outcome {
    let query = "sum by (client, server) (traces_service_graph_request_total)";
    poll(deadline, || async {
        let result = instant_query(http, prometheus, query).await?;
        let edges: BTreeSet<(String, String)> = result
            .iter()
            .filter_map(|s| {
                Some((
                    s["metric"]["client"].as_str()?.to_owned(),
                    s["metric"]["server"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let missing: Vec<String> = EDGES
            .iter()
            .filter(|(c, s)| !edges.contains(&(c.to_string(), s.to_string())))
            .map(|(c, s)| format!("{c} → {s}"))
            .collect();
        if missing.is_empty() {
            let all: Vec<String> = edges.iter().map(|(c, s)| format!("{c} → {s}")).collect();
            Ok(Ok(all.join(", ")))
        } else {
            Ok(Err(format!("missing {}", missing.join(", "))))
        }
    })
    .await
}

async fn grafana_health(http: &reqwest::Client, grafana: &str) -> Outcome {
    match get_json(
        http,
        &format!("{}/api/health", grafana.trim_end_matches('/')),
    )
    .await
    {
        Ok(health) if health["database"] == "ok" => Outcome::Pass(format!(
            "version {}, database ok",
            health["version"].as_str().unwrap_or("?")
        )),
        Ok(health) => Outcome::Fail(format!("/api/health: {health}")),
        Err(e) => Outcome::Fail(e),
    }
}

/// The datasources an anonymous viewer gets, from the settings Grafana's front end loads.
async fn grafana_datasources(http: &reqwest::Client, grafana: &str) -> Outcome {
    let url = format!("{}/api/frontend/settings", grafana.trim_end_matches('/'));
    let settings = match get_json(http, &url).await {
        Ok(settings) => settings,
        Err(e) => return Outcome::Fail(e),
    };
    let uids: BTreeSet<&str> = settings["datasources"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, d)| d["uid"].as_str())
        .collect();
    let missing: Vec<&str> = DATASOURCES
        .iter()
        .copied()
        .filter(|d| !uids.contains(d))
        .collect();
    if missing.is_empty() {
        Outcome::Pass(format!("{uids:?}"))
    } else {
        Outcome::Fail(format!("missing {missing:?} (has {uids:?})"))
    }
}

/// Retries `check` (Ok(Ok) passes, Ok(Err) is not yet, Err fails at once) until `deadline`.
async fn poll<F, Fut>(deadline: Instant, check: F) -> Outcome
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Result<String, String>, String>>,
{
    loop {
        match check().await {
            Ok(Ok(detail)) => return Outcome::Pass(detail),
            Ok(Err(not_yet)) if Instant::now() >= deadline => return Outcome::Fail(not_yet),
            Err(e) if Instant::now() >= deadline => return Outcome::Fail(e),
            // Prometheus may still be starting: retried like a missing series.
            _ => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

async fn instant_query(
    http: &reqwest::Client,
    prometheus: &str,
    query: &str,
) -> Result<Vec<Value>, String> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/query", prometheus.trim_end_matches('/')),
        [("query", query)],
    )
    .map_err(|e| format!("--prometheus-url: {e}"))?;
    let body = get_json(http, url.as_str()).await?;
    if body["status"] != "success" {
        return Err(format!("Prometheus: {body}"));
    }
    Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// The slow order's inventory lines in Loki, found by trace id the way Grafana's trace-to-logs
/// link finds them (`{service_name="…"} | trace_id="…"`): "stock reserved" must be there, with
/// a span id.
async fn slow_order_logs(
    http: &reqwest::Client,
    loki: &str,
    trace_id: &str,
    deadline: Instant,
) -> Outcome {
    let query = format!(r#"{{service_name="inventory-service"}} | trace_id="{trace_id}""#);
    let url = match reqwest::Url::parse_with_params(
        &format!("{}/loki/api/v1/query_range", loki.trim_end_matches('/')),
        [("query", query.as_str()), ("limit", "100")],
    ) {
        Ok(url) => url,
        Err(e) => return Outcome::Fail(format!("--loki-url: {e}")),
    };
    poll(deadline, || async {
        let answer = get_json(http, url.as_str()).await?;
        let lines: Vec<(String, String)> = answer["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|stream| {
                let span = stream["stream"]["span_id"].as_str().unwrap_or("").to_owned();
                stream["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(move |v| Some((v[1].as_str()?.to_owned(), span.clone())))
            })
            .collect();
        Ok(
            match lines.iter().find(|(line, _)| line.contains("stock reserved")) {
                Some((_, span)) if !span.is_empty() => Ok(format!(
                    "{} lines of {trace_id} from inventory-service, \"stock reserved\" in span {span}",
                    lines.len()
                )),
                Some(_) => Err("\"stock reserved\" has no span_id".to_owned()),
                None => Err(format!("no \"stock reserved\" line of {trace_id} yet ({} lines)", lines.len())),
            },
        )
    })
    .await
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {}", with_causes(&e)))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() {
        let start: String = text.chars().take(200).collect();
        return Err(format!("GET {url}: {status}: {start}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("GET {url}: not JSON: {e}"))
}
