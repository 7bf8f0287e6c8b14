//! The compose stack's Prometheus, run for real: Debian's `prometheus` with the compose
//! service's own flags and `prometheus/prometheus.yml` and `prometheus/rules/` placed where
//! compose mounts them, scraping the four service binaries, which run with the environment
//! compose gives them and export to the trace-store where the Collector would be (see
//! `system_tests::stack`). What a user would see after a few orders: every scrape target of a
//! service up, the recording rules with values, the alerts loaded, evaluated and quiet, the
//! orders' trace ids as exemplars, and every metric any Grafana query or alert uses present.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use system_tests::{
    compose::repo_yaml,
    promql::metric_names,
    stack::{LocalStack, PROMETHEUS_V3_ONLY_FLAGS},
};

/// The metrics Grafana's Tempo datasource queries itself for the Service Graph tab and its
/// table, whatever the provisioning says: grafana/grafana v12.1.0,
/// `public/app/plugins/datasource/tempo/datasource.ts` (`serviceMapMetrics`,
/// `rateMetric`, `errorRateMetric`, `durationMetric`).
const GRAFANA_TEMPO_SERVICE_GRAPH_METRICS: [&str; 6] = [
    "traces_service_graph_request_total",
    "traces_service_graph_request_failed_total",
    "traces_service_graph_request_server_seconds_sum",
    "traces_service_graph_request_server_seconds_bucket",
    "traces_spanmetrics_calls_total",
    "traces_spanmetrics_latency_bucket",
];

/// Series that exist only once a request has failed (the servicegraph connector counts failed
/// edges only: `connector/servicegraphconnector`, contrib v0.150.0); healthy traffic cannot
/// show them. The trace-store's stand-in writes it on a failed edge (its unit tests).
const ONLY_AFTER_A_FAILURE: [&str; 1] = ["traces_service_graph_request_failed_total"];

/// Scrape jobs whose component runs here; the others are listed with why not.
const JOBS_RUN_HERE: [&str; 6] = [
    "order-service",
    "inventory-service",
    "payment-service",
    "notification-service",
    "otel-collector-spanmetrics",
    "prometheus",
];
const JOBS_NOT_RUN_HERE: [(&str, &str); 2] = [
    (
        "otel-collector",
        "the Collector's own telemetry: no Collector binary here",
    ),
    ("tempo", "Tempo's own /metrics: no Tempo binary here"),
];

/// Every metric name that a Grafana panel, datasource link or built-in query, or a Prometheus
/// rule reads.
fn metrics_used() -> BTreeSet<String> {
    let mut used: BTreeSet<String> = GRAFANA_TEMPO_SERVICE_GRAPH_METRICS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            system_tests::compose::repo_root().join("grafana/dashboards/orders.json"),
        )
        .expect("dashboard"),
    )
    .expect("dashboard JSON");
    let mut exprs = Vec::new();
    // PromQL only: the logs panel's LogQL and the trace-to-logs query are Loki's.
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["datasource"]["type"] != "loki" {
            collect_strings(panel, "expr", &mut exprs);
        }
    }
    for source in repo_yaml("grafana/provisioning/datasources/datasources.yml")["datasources"]
        .as_array()
        .expect("datasources")
    {
        collect_strings(&source["jsonData"]["tracesToMetrics"], "query", &mut exprs);
    }
    collect_strings(
        &repo_yaml("prometheus/rules/orders.yml"),
        "expr",
        &mut exprs,
    );
    assert!(exprs.len() >= 12, "only {} queries found", exprs.len());
    for expr in exprs {
        used.extend(metric_names(&expr));
    }
    used
}

/// Every string value under key `key`, anywhere in `value`.
fn collect_strings(value: &Value, key: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if k == key => out.push(s.clone()),
                    other => collect_strings(other, key, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, key, out)),
        _ => {}
    }
}

async fn post_order(client: &reqwest::Client, url: &str, quantity: i64) -> (u16, String) {
    let response = client
        .post(format!("{url}/orders"))
        .json(&json!({"item": "book", "quantity": quantity, "price": 9.99}))
        .send()
        .await
        .expect("order-service answers");
    let trace_id = response
        .headers()
        .get("x-trace-id")
        .and_then(|v| v.to_str().ok())
        .expect("X-Trace-Id")
        .to_owned();
    (response.status().as_u16(), trace_id)
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_runs_with_the_compose_files_and_answers_every_query_grafana_and_the_alerts_make()
 {
    let stack = LocalStack::start().await;
    println!("prometheus {}", stack.prometheus_args.join(" "));
    assert_eq!(
        stack.left_out_flags, PROMETHEUS_V3_ONLY_FLAGS,
        "compose flags that this Prometheus lacks"
    );
    let started = std::time::SystemTime::now();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let order_url = stack.url("order-service");
    let mut sent = BTreeSet::new();
    // Traffic across two scrapes at least, as a user's would be: a rate needs a counter seen
    // before and after an increase.
    let used = metrics_used();
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut slow = BTreeSet::new();
    let (p99, ratio, missing) = loop {
        for quantity in [2, 2, 0, 8] {
            let (status, trace_id) = post_order(&client, &order_url, quantity).await;
            // A rejected order is the caller's mistake: counted, but no error for the alert.
            assert_eq!(status, if quantity == 0 { 400 } else { 201 });
            if quantity == 8 {
                slow.insert(trace_id.clone());
            }
            sent.insert(trace_id);
        }
        let p99 = stack
            .query("order_service:request_duration_seconds:p99_5m")
            .await;
        let ratio = stack.query("order_service:requests_5xx:ratio_5m").await;
        let produced: BTreeSet<String> = stack
            .prometheus_api("/api/v1/label/__name__/values", &[])
            .await
            .as_array()
            .expect("names")
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect();
        let missing: Vec<String> = used
            .difference(&produced)
            .filter(|name| !ONLY_AFTER_A_FAILURE.contains(&name.as_str()))
            .cloned()
            .collect();
        let p99_known = p99
            .first()
            .and_then(|s| s["value"][1].as_str())
            .is_some_and(|v| v != "NaN");
        if (p99_known && !ratio.is_empty() && missing.is_empty()) || Instant::now() > deadline {
            break (p99, ratio, missing);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    println!("used by Grafana and the rules but not in Prometheus yet: {missing:?}");

    // Every target of a component that runs here is up.
    let targets = stack
        .prometheus_api("/api/v1/targets", &[("state", "active")])
        .await;
    let mut up = BTreeSet::new();
    for target in targets["activeTargets"].as_array().expect("activeTargets") {
        let job = target["labels"]["job"].as_str().expect("job");
        let health = target["health"].as_str().unwrap_or("");
        println!("target {job:28} {health:7} {}", target["lastError"]);
        if JOBS_RUN_HERE.contains(&job) {
            assert_eq!(health, "up", "{job}: {}", target["lastError"]);
            up.insert(job);
        } else {
            let (_, why) = JOBS_NOT_RUN_HERE
                .iter()
                .find(|(j, _)| *j == job)
                .unwrap_or_else(|| {
                    panic!("scrape job {job} is neither run here nor listed as not")
                });
            println!("  not run here: {why}");
        }
    }
    assert_eq!(up, BTreeSet::from(JOBS_RUN_HERE));

    // The recording rules have values: a p99 near the slow order's, no 5xx.
    assert_eq!(p99.len(), 1, "{p99:?}");
    let p99: f64 = p99[0]["value"][1]
        .as_str()
        .expect("value")
        .parse()
        .expect("number");
    assert!((0.1..=1.0).contains(&p99), "p99 {p99}");
    assert_eq!(ratio.len(), 1, "{ratio:?}");
    assert_eq!(
        ratio[0]["value"][1], "0",
        "healthy traffic, 5xx ratio {ratio:?}"
    );

    // Both alerts are loaded, evaluated, healthy and quiet.
    let rules = stack.prometheus_api("/api/v1/rules", &[]).await;
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_array().expect("groups") {
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["name"].as_str().expect("name");
            println!("rule {name:45} {} {}", rule["health"], rule["state"]);
            assert_eq!(rule["health"], "ok", "{name}: {}", rule["lastError"]);
            assert!(
                !rule["lastEvaluation"]
                    .as_str()
                    .unwrap_or("0001")
                    .starts_with("0001"),
                "{name} was never evaluated"
            );
            if rule["type"] == "alerting" {
                assert_eq!(rule["state"], "inactive", "{name} on healthy traffic");
                alerts.insert(name.to_owned());
            }
        }
    }
    assert_eq!(
        alerts,
        BTreeSet::from([
            "OrderServiceErrors".to_owned(),
            "OrderServiceSlow".to_owned()
        ])
    );

    // The latency histogram's exemplars are the orders' trace ids, slow ones among them: their
    // bucket holds no fast order.
    let start = started
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .saturating_sub(60)
        .to_string();
    let end = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 60)
        .to_string();
    let exemplars = stack
        .prometheus_api(
            "/api/v1/query_exemplars",
            &[
                (
                    "query",
                    "http_server_request_duration_seconds_bucket{job=\"order-service\"}",
                ),
                ("start", &start),
                ("end", &end),
            ],
        )
        .await;
    let linked: BTreeSet<String> = exemplars
        .as_array()
        .expect("exemplar series")
        .iter()
        .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["labels"]["trace_id"].as_str().map(str::to_owned))
        .collect();
    println!("exemplar trace ids: {linked:?}");
    assert!(
        !linked.is_disjoint(&slow),
        "no slow order ({slow:?}) among {linked:?}"
    );
    assert!(linked.is_subset(&sent), "{linked:?} vs sent {sent:?}");

    // Every metric a Grafana query, link or alert reads is in Prometheus.
    println!("metrics used by Grafana and the rules: {used:?}");
    assert!(
        missing.is_empty(),
        "used but produced by no component: {missing:?}"
    );
}

/// Runs `demo smoke` with `args`; its exit code, output, and how long it ran.
async fn smoke(args: Vec<String>) -> (Option<i32>, String, Duration) {
    tokio::task::spawn_blocking(move || {
        // Built (if need be) before the clock starts.
        let demo = system_tests::binary_path("demo");
        let started = Instant::now();
        let output = std::process::Command::new(demo)
            .arg("smoke")
            .args(&args)
            .output()
            .expect("demo runs");
        (
            output.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            started.elapsed(),
        )
    })
    .await
    .expect("smoke finishes")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_smoke_check_passes_against_the_stack_that_runs_here() {
    let stack = LocalStack::start().await;
    let (code, output, _) = smoke(vec![
        "--order-url".into(),
        stack.url("order-service"),
        "--tempo-url".into(),
        stack.tempo_url.clone(),
        "--prometheus-url".into(),
        stack.prometheus_url.clone(),
        // The trace-store answers Loki's query_range for the trace-to-logs query too.
        "--loki-url".into(),
        stack.tempo_url.clone(),
        "--skip-grafana".into(),
        "--timeout".into(),
        "150".into(),
    ])
    .await;
    println!("{output}");
    assert_eq!(code, Some(0), "{output}");
    let marks: Vec<&str> = output
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| ["PASS", "FAIL", "SKIP"].contains(w))
        .collect();
    assert_eq!(
        marks,
        ["PASS", "PASS", "PASS", "PASS", "PASS", "SKIP", "SKIP"],
        "{output}"
    );
    // The slow order's trace is dominated by the planted defect.
    assert!(output.contains("widest slow_lookup"), "{output}");
    assert!(output.contains("\"stock reserved\" in span"), "{output}");
    for edge in [
        "order-service → inventory-service",
        "order-service → payment-service",
    ] {
        assert!(output.contains(edge), "{output}");
    }
}

#[tokio::test]
async fn the_smoke_check_fails_step_by_step_when_nothing_is_there() {
    let nowhere = format!("http://127.0.0.1:{}", system_tests::free_port());
    let (code, output, took) = smoke(vec![
        "--order-url".into(),
        nowhere.clone(),
        "--tempo-url".into(),
        nowhere.clone(),
        "--prometheus-url".into(),
        nowhere.clone(),
        "--grafana-url".into(),
        nowhere.clone(),
        "--loki-url".into(),
        nowhere,
        "--timeout".into(),
        "2".into(),
    ])
    .await;
    println!("{output}");
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("FAIL  order-service answers the two curls"),
        "{output}"
    );
    assert!(output.contains("FAIL  Grafana is healthy"), "{output}");
    assert!(output.contains("check(s) failed"), "{output}");
    // Bounded by --timeout, plus one call's own timeout at most.
    assert!(took < Duration::from_secs(30), "took {took:?}");

    let (code, output, _) = smoke(vec!["--tempo-url".into(), "not a url".into()]).await;
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("--tempo-url"), "{output}");
}
