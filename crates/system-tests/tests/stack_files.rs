//! The docker compose stack, checked without Docker: the compose file against the Compose
//! Specification's schema, Prometheus' config and rules with promtool (and the rules' unit
//! tests), and the wiring between the files: every host:port one component points at is a
//! compose service listening on that port, every datasource link names an existing UID, every
//! image is pinned, and the Collector defines exactly the components its pipelines use.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::Command,
};

use serde_json::Value;

fn repo() -> PathBuf {
    system_tests::compose::repo_root()
}

fn read(path: &str) -> String {
    let full = repo().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn yaml(path: &str) -> Value {
    system_tests::compose::repo_yaml(path)
}

fn compose() -> Value {
    yaml("docker-compose.yml")
}

/// `host:port` of a URL or a bare `host:port`.
fn host_port(reference: &str) -> (String, u16) {
    let rest = reference.split_once("://").map_or(reference, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = authority
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{reference} has no port"));
    (
        host.to_owned(),
        port.parse()
            .unwrap_or_else(|_| panic!("{reference}: bad port")),
    )
}

fn port_of(endpoint: &Value) -> u16 {
    host_port(endpoint.as_str().expect("endpoint string")).1
}

/// The ports each compose service listens on, read from each component's own configuration.
fn listening_ports() -> BTreeMap<String, BTreeSet<u16>> {
    let compose = compose();
    let mut ports: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    for (name, service) in compose["services"].as_object().expect("services") {
        if let Some(port) = service["environment"]["PORT"].as_str() {
            ports
                .entry(name.clone())
                .or_default()
                .insert(port.parse().expect("PORT"));
        }
    }
    let collector = yaml("otel-collector/otel-collector.yml");
    let otlp = &collector["receivers"]["otlp"]["protocols"];
    let telemetry = &collector["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]
        ["prometheus"];
    ports.insert(
        "otel-collector".into(),
        [
            port_of(&otlp["grpc"]["endpoint"]),
            port_of(&otlp["http"]["endpoint"]),
            port_of(&collector["exporters"]["prometheus"]["endpoint"]),
            port_of(&collector["extensions"]["health_check"]["endpoint"]),
            u16::try_from(telemetry["port"].as_u64().expect("telemetry port")).expect("port"),
        ]
        .into(),
    );
    let tempo = yaml("tempo/tempo.yml");
    let receivers = &tempo["distributor"]["receivers"]["otlp"]["protocols"];
    ports.insert(
        "tempo".into(),
        [
            u16::try_from(
                tempo["server"]["http_listen_port"]
                    .as_u64()
                    .expect("http port"),
            )
            .expect("port"),
            u16::try_from(
                tempo["server"]["grpc_listen_port"]
                    .as_u64()
                    .expect("grpc port"),
            )
            .expect("port"),
            port_of(&receivers["grpc"]["endpoint"]),
            port_of(&receivers["http"]["endpoint"]),
        ]
        .into(),
    );
    let loki = yaml("loki/loki.yml");
    ports.insert(
        "loki".into(),
        [u16::try_from(
            loki["server"]["http_listen_port"]
                .as_u64()
                .expect("loki http port"),
        )
        .expect("port")]
        .into(),
    );
    // Prometheus and Grafana listen on their images' defaults (no flag moves them here).
    ports.insert("prometheus".into(), [9090].into());
    ports.insert("grafana".into(), [3000].into());
    ports
}

/// Every reference one component makes to another, as (who, what it points at).
fn references() -> Vec<(String, String)> {
    let compose = compose();
    let mut refs = Vec::new();
    for (name, service) in compose["services"].as_object().expect("services") {
        if let Some(env) = service["environment"].as_object() {
            for (key, value) in env {
                if key.ends_with("_URL") || key == "OTEL_EXPORTER_OTLP_ENDPOINT" {
                    refs.push((
                        format!("{name} {key}"),
                        value.as_str().expect("string").to_owned(),
                    ));
                }
            }
        }
    }
    let collector = yaml("otel-collector/otel-collector.yml");
    refs.push((
        "collector otlp_grpc/tempo".into(),
        collector["exporters"]["otlp_grpc/tempo"]["endpoint"]
            .as_str()
            .expect("endpoint")
            .into(),
    ));
    refs.push((
        "collector otlp_http/loki".into(),
        collector["exporters"]["otlp_http/loki"]["endpoint"]
            .as_str()
            .expect("endpoint")
            .into(),
    ));
    let tempo = yaml("tempo/tempo.yml");
    for write in tempo["metrics_generator"]["storage"]["remote_write"]
        .as_array()
        .into_iter()
        .flatten()
    {
        refs.push((
            "tempo remote_write".into(),
            write["url"].as_str().expect("url").into(),
        ));
    }
    let datasources = yaml("grafana/provisioning/datasources/datasources.yml");
    for source in datasources["datasources"].as_array().expect("datasources") {
        refs.push((
            format!("grafana datasource {}", source["uid"]),
            source["url"].as_str().expect("url").into(),
        ));
    }
    let prometheus = yaml("prometheus/prometheus.yml");
    for job in prometheus["scrape_configs"]
        .as_array()
        .expect("scrape_configs")
    {
        for config in job["static_configs"].as_array().expect("static_configs") {
            for target in config["targets"].as_array().expect("targets") {
                let target = target.as_str().expect("target");
                // A job scraping "localhost" is Prometheus scraping itself.
                let target = target.replace("localhost:", "prometheus:");
                refs.push((format!("prometheus job {}", job["job_name"]), target));
            }
        }
    }
    refs
}

#[test]
fn compose_file_follows_the_compose_specification() {
    let schema_path = repo().join("../shared/schemas/compose-spec.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(&schema_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (shared/ sits beside the repository)",
                schema_path.display()
            )
        }))
        .expect("schema is JSON");
    let validator = jsonschema::draft7::new(&schema).expect("a valid draft-07 schema");
    let compose = compose();
    let errors: Vec<String> = validator
        .iter_errors(&compose)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // And the checker checks: a misspelt key is refused.
    let mut broken = compose.clone();
    broken["services"]["tempo"]["restrat"] = Value::String("always".into());
    assert!(!validator.is_valid(&broken));
}

fn promtool(args: &[&str]) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool: {e}; install it with: apt-get install -y prometheus")
        });
    assert!(
        output.status.success(),
        "promtool {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn prometheus_config_and_rules_pass_promtool_and_the_alerts_fire_only_when_they_should() {
    // Without --syntax-only, promtool also loads every rule file the config's globs match, as
    // Prometheus does at start (tests/compose_stack.rs runs Prometheus itself).
    promtool(&["check", "config", "prometheus/prometheus.yml"]);
    promtool(&["check", "rules", "prometheus/rules/orders.yml"]);
    promtool(&["test", "rules", "prometheus/tests/orders_test.yml"]);
}

#[test]
fn every_address_a_file_points_at_is_a_service_listening_on_that_port() {
    let listening = listening_ports();
    let compose = compose();
    let services = compose["services"].as_object().expect("services");
    let mut checked = 0;
    for (who, reference) in references() {
        let (host, port) = host_port(&reference);
        assert!(
            services.contains_key(&host),
            "{who} points at {reference}: no service {host}"
        );
        assert!(
            listening.get(&host).is_some_and(|p| p.contains(&port)),
            "{who} points at {reference}, but {host} listens on {:?}",
            listening.get(&host)
        );
        checked += 1;
    }
    assert!(checked >= 17, "only {checked} references found");

    for (name, service) in services {
        // Published ports: loopback only, to a port the container listens on.
        for mapping in service["ports"].as_array().into_iter().flatten() {
            let mapping = mapping.as_str().expect("short syntax");
            let parts: Vec<&str> = mapping.split(':').collect();
            assert_eq!(
                parts.len(),
                3,
                "{name}: {mapping} does not name a host address"
            );
            assert_eq!(
                parts[0], "127.0.0.1",
                "{name}: {mapping} is reachable from the network"
            );
            let inner: u16 = parts[2].parse().expect("port");
            assert!(
                listening[name].contains(&inner),
                "{name} publishes {inner}, listens on {:?}",
                listening[name]
            );
        }
        // Health checks probe a port the service listens on.
        if let Some(test) = service["healthcheck"]["test"].as_array() {
            let words: Vec<&str> = test.iter().filter_map(Value::as_str).collect();
            // `loki -health -health.url=…` (grafana/loki v3.7.6 cmd/loki/health.go).
            let url = words.iter().find_map(|w| {
                w.strip_prefix("-health.url=")
                    .or(Some(w).filter(|w| w.starts_with("http://")).copied())
            });
            match url {
                Some(url) => {
                    let (host, port) = host_port(url);
                    assert_eq!(host, "localhost", "{name}: {url}");
                    assert!(listening[name].contains(&port), "{name} healthcheck {url}");
                }
                None => {
                    assert!(words.contains(&"--health-check"), "{name}: {words:?}");
                    assert!(
                        service["environment"]["PORT"].is_string(),
                        "{name} probes $PORT"
                    );
                }
            }
        }
        // depends_on: existing services, and service_healthy only where there is a healthcheck.
        for (dependency, condition) in service["depends_on"].as_object().into_iter().flatten() {
            assert!(
                services.contains_key(dependency),
                "{name} depends on unknown {dependency}"
            );
            if condition["condition"] == "service_healthy" {
                assert!(
                    services[dependency]["healthcheck"].is_object(),
                    "{name} waits for {dependency} to be healthy, which has no healthcheck"
                );
            }
        }
        // Mounted files exist in the repository.
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let source = volume
                .as_str()
                .expect("short syntax")
                .split(':')
                .next()
                .expect("source");
            if source.starts_with("./") {
                assert!(
                    repo().join(source).exists(),
                    "{name} mounts missing {source}"
                );
            }
        }
    }
}

#[test]
fn every_image_is_pinned_and_every_build_names_a_workspace_binary() {
    let compose = compose();
    for (name, service) in compose["services"].as_object().expect("services") {
        let image = service["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no image"));
        let (_, tag) = image
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("{name}: {image} has no tag"));
        assert!(
            tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()),
            "{name}: {image} is not pinned to a version"
        );
        if let Some(built) = service["build"]["args"]["SERVICE"].as_str() {
            assert_eq!(built, name, "{name} builds {built}");
            assert!(
                repo()
                    .join("crates")
                    .join(built)
                    .join("src/main.rs")
                    .exists(),
                "no binary {built}"
            );
        }
    }
    let dockerfile = read("Dockerfile");
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("ARG") && l.contains("IMAGE="))
    {
        let image = line.split('=').nth(1).expect("default");
        assert!(
            image.contains(':') && !image.ends_with(":latest"),
            "Dockerfile: {line}"
        );
    }
}

#[test]
fn grafana_links_name_datasources_that_exist() {
    let datasources = yaml("grafana/provisioning/datasources/datasources.yml");
    let uids: BTreeSet<String> = datasources["datasources"]
        .as_array()
        .expect("datasources")
        .iter()
        .map(|d| {
            d["uid"]
                .as_str()
                .expect("every datasource has a fixed uid")
                .to_owned()
        })
        .collect();
    assert_eq!(
        uids,
        BTreeSet::from([
            "loki".to_owned(),
            "prometheus".to_owned(),
            "tempo".to_owned()
        ])
    );

    let mut used = Vec::new();
    collect_uids(&datasources, &mut used);
    let dashboard: Value =
        serde_json::from_str(&read("grafana/dashboards/orders.json")).expect("dashboard JSON");
    collect_uids(&dashboard, &mut used);
    assert!(used.len() >= 10, "{used:?}");
    for uid in used {
        assert!(
            uids.contains(&uid),
            "a link or panel uses unknown datasource {uid}"
        );
    }
    let tempo = &datasources["datasources"][1]["jsonData"];
    assert_eq!(tempo["serviceMap"]["datasourceUid"], "prometheus");
    assert_eq!(tempo["tracesToMetrics"]["datasourceUid"], "prometheus");
    // Trace to logs: Loki, by service and trace id. The id of an OTLP record is structured
    // metadata (grafana/loki v3.7.6 pkg/loghttp/push/otlp.go), so the query must filter on the
    // `trace_id` label, never on the line (`|= "<id>"` matches nothing); `$$` is a literal `$`
    // in provisioning, or Grafana substitutes an (empty) environment variable.
    let to_logs = &tempo["tracesToLogsV2"];
    assert_eq!(to_logs["datasourceUid"], "loki");
    assert_eq!(to_logs["customQuery"], true);
    assert_eq!(
        to_logs["query"],
        r#"{$${__tags}} | trace_id="$${__span.traceId}""#
    );
    assert_eq!(to_logs["tags"][0]["key"], "service.name");
    // Loki's `service_name` label is service.name with its dot made an underscore.
    assert_eq!(to_logs["tags"][0]["value"], "service_name");
    // From a log line back to its trace: the trace_id label (a regex over label names).
    let loki = datasources["datasources"]
        .as_array()
        .expect("datasources")
        .iter()
        .find(|d| d["uid"] == "loki")
        .expect("loki datasource");
    let field = &loki["jsonData"]["derivedFields"][0];
    assert_eq!(field["matcherType"], "label");
    assert_eq!(field["matcherRegex"], "^trace_id$");
    assert_eq!(field["datasourceUid"], "tempo");
    assert_eq!(field["url"], "$${__value.raw}");
    // The dashboard's logs panel reads the four services' streams from Loki.
    let logs_panel = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .find(|p| p["type"] == "logs")
        .expect("a logs panel");
    assert_eq!(logs_panel["datasource"]["uid"], "loki");
    let expr = logs_panel["targets"][0]["expr"].as_str().expect("expr");
    for service in [
        "order-service",
        "inventory-service",
        "payment-service",
        "notification-service",
    ] {
        assert!(expr.contains(service), "{expr}");
    }
    assert_eq!(
        datasources["datasources"][0]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"],
        "tempo"
    );

    let provider = yaml("grafana/provisioning/dashboards/dashboards.yml");
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .expect("path");
    let compose = compose();
    let mounted = compose["services"]["grafana"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .any(|v| {
            v.as_str()
                .is_some_and(|v| v.starts_with("./grafana/dashboards:") && v.contains(path))
        });
    assert!(mounted, "dashboards are not mounted at {path}");
}

/// Every `datasourceUid` value and every `datasource.uid`, anywhere in `value`.
fn collect_uids(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("datasourceUid", Value::String(uid)) => out.push(uid.clone()),
                    ("datasource", Value::Object(ds)) => {
                        if let Some(uid) = ds.get("uid").and_then(Value::as_str) {
                            out.push(uid.to_owned());
                        }
                    }
                    _ => collect_uids(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_uids(i, out)),
        _ => {}
    }
}

#[test]
fn the_collector_defines_exactly_what_its_pipelines_use() {
    let config = yaml("otel-collector/otel-collector.yml");
    let defined = |section: &str| -> BTreeSet<String> {
        config[section]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let connectors = defined("connectors");
    let mut used: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let pipelines = config["service"]["pipelines"]
        .as_object()
        .expect("pipelines");
    for (pipeline, spec) in pipelines {
        for role in ["receivers", "processors", "exporters"] {
            let names = spec[role]
                .as_array()
                .unwrap_or_else(|| panic!("{pipeline} has no {role}"));
            for name in names.iter().map(|n| n.as_str().expect("name").to_owned()) {
                // A connector is an exporter of one pipeline and a receiver of another.
                let section = if connectors.contains(&name) {
                    "connectors"
                } else {
                    role
                };
                used.entry(section).or_default().insert(name);
            }
        }
        assert!(
            !spec["exporters"].as_array().expect("exporters").is_empty(),
            "{pipeline} exports nowhere"
        );
    }
    for section in ["receivers", "processors", "exporters", "connectors"] {
        assert_eq!(
            defined(section),
            used.get(section).cloned().unwrap_or_default(),
            "{section}: defined vs used"
        );
    }
    let extensions: BTreeSet<String> = config["service"]["extensions"]
        .as_array()
        .expect("extensions")
        .iter()
        .map(|e| e.as_str().expect("name").to_owned())
        .collect();
    assert_eq!(defined("extensions"), extensions);

    // memory_limiter comes first wherever data enters; sampling happens after the connectors
    // that count every span.
    assert_eq!(pipelines["traces/in"]["processors"][0], "memory_limiter");
    let metrics_source: Vec<&str> = pipelines["traces/in"]["exporters"]
        .as_array()
        .expect("exporters")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(metrics_source.contains(&"spanmetrics") && metrics_source.contains(&"servicegraph"));
    assert!(
        !pipelines["traces/in"]["processors"]
            .as_array()
            .expect("processors")
            .iter()
            .any(|p| p == "tail_sampling")
    );
    // Both curls of the README are always kept: a slow trace by latency, the fast one by rate.
    let policies = config["processors"]["tail_sampling"]["policies"]
        .as_array()
        .expect("policies");
    let kinds: Vec<&str> = policies.iter().filter_map(|p| p["type"].as_str()).collect();
    assert!(
        kinds.contains(&"status_code")
            && kinds.contains(&"latency")
            && kinds.contains(&"rate_limiting"),
        "{kinds:?}"
    );
    // Tempo does not compute the same series again from sampled traces.
    let tempo = yaml("tempo/tempo.yml");
    assert_eq!(
        tempo["overrides"]["defaults"]["metrics_generator"]["processors"],
        serde_json::json!(["local-blocks"])
    );
}

#[test]
fn alert_rules_query_metrics_the_services_expose() {
    let rules = read("prometheus/rules/orders.yml");
    // The names the services' /metrics use (see tests/metrics.rs): renaming one breaks alerting.
    for name in [
        "http_server_request_duration_seconds_bucket",
        "http_server_request_duration_seconds_count",
        "http_route",
        "http_response_status_code",
    ] {
        assert!(rules.contains(name), "rules do not use {name}");
    }
    let compose = compose();
    let jobs: BTreeSet<String> = yaml("prometheus/prometheus.yml")["scrape_configs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["job_name"].as_str().expect("name").to_owned())
        .collect();
    for service in [
        "order-service",
        "inventory-service",
        "payment-service",
        "notification-service",
    ] {
        assert!(compose["services"][service].is_object());
        assert!(jobs.contains(service), "no scrape job {service}");
    }
}

/// One row of IMAGES.md: an image (`*` matches any run of characters) and what it holds.
struct ImageRow {
    pattern: String,
    programs: Vec<String>,
    shell: bool,
}

impl ImageRow {
    fn matches(&self, image: &str) -> bool {
        match self.pattern.split_once('*') {
            Some((head, tail)) => image.starts_with(head) && image.ends_with(tail),
            None => self.pattern == image,
        }
    }

    /// Whether `program` (a path, or a bare name looked up in PATH) is in the image.
    fn holds(&self, program: &str) -> bool {
        self.programs.iter().any(|p| {
            p == program || (!program.contains('/') && p.rsplit('/').next() == Some(program))
        })
    }
}

/// The table of IMAGES.md.
fn image_rows() -> Vec<ImageRow> {
    let text = read("IMAGES.md");
    let rows: Vec<ImageRow> = text
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            assert_eq!(cells.len(), 5, "IMAGES.md row: {line}");
            let ticked = |cell: &str| -> Vec<String> {
                cell.split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_owned)
                    .collect()
            };
            ImageRow {
                pattern: ticked(cells[0]).remove(0),
                programs: ticked(cells[2]),
                shell: cells[3] == "yes",
            }
        })
        .collect();
    assert!(rows.len() >= 6, "IMAGES.md has {} rows", rows.len());
    rows
}

/// Why `test` (a compose or Dockerfile healthcheck) cannot run in `image`, if it cannot.
fn healthcheck_problem(rows: &[ImageRow], image: &str, test: &[String]) -> Option<String> {
    let Some(row) = rows.iter().find(|r| r.matches(image)) else {
        return Some(format!("{image} has no row in IMAGES.md"));
    };
    match test.first().map(String::as_str) {
        Some("NONE") => None,
        Some("CMD") => {
            let program = test.get(1)?;
            (!row.holds(program)).then(|| {
                format!(
                    "runs {program}, which {image} does not hold (it has {:?})",
                    row.programs
                )
            })
        }
        Some("CMD-SHELL") => (!row.shell).then(|| format!("needs a shell; {image} has none")),
        other => Some(format!("unknown healthcheck form {other:?}")),
    }
}

fn words(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn every_healthcheck_runs_a_program_its_image_holds() {
    let rows = image_rows();
    let compose = compose();
    let services = compose["services"].as_object().expect("services");
    let mut problems = Vec::new();
    let mut checked = 0;
    for (name, service) in services {
        let image = service["image"].as_str().expect("image");
        if !rows.iter().any(|r| r.matches(image)) {
            problems.push(format!("{name}: {image} has no row in IMAGES.md"));
        }
        if service["healthcheck"]["disable"] == true {
            continue;
        }
        let test = words(&service["healthcheck"]["test"]);
        if !test.is_empty() {
            checked += 1;
            if let Some(problem) = healthcheck_problem(&rows, image, &test) {
                problems.push(format!("{name}: {problem}"));
            }
        }
        // Waiting for a service to be healthy needs a healthcheck that can pass.
        for (dependency, condition) in service["depends_on"].as_object().into_iter().flatten() {
            if condition["condition"] == "service_healthy" {
                let theirs = words(&services[dependency]["healthcheck"]["test"]);
                let their_image = services[dependency]["image"].as_str().expect("image");
                if theirs.is_empty() || healthcheck_problem(&rows, their_image, &theirs).is_some() {
                    problems.push(format!(
                        "{name} waits for {dependency} to be healthy, which it can never be"
                    ));
                }
            }
        }
    }
    assert!(checked >= 6, "only {checked} healthchecks");

    // The Dockerfile's own HEALTHCHECK, in the image it builds.
    let dockerfile = read("Dockerfile");
    let runtime = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ARG RUNTIME_IMAGE="))
        .expect("ARG RUNTIME_IMAGE");
    assert!(
        rows.iter().any(|r| r.matches(runtime)),
        "the Dockerfile's runtime image {runtime} has no row in IMAGES.md"
    );
    let own = rows
        .iter()
        .find(|r| r.matches("order-tracing/order-service:0.1.0"))
        .expect("a row for the images built here");
    for program in &own.programs {
        assert!(
            dockerfile
                .lines()
                .any(|l| l.starts_with("COPY --from=build") && l.ends_with(program.as_str())),
            "IMAGES.md says the built image holds {program}, the Dockerfile copies no such file"
        );
    }
    let healthcheck = dockerfile
        .lines()
        .find_map(|l| l.trim().strip_prefix("CMD [\""))
        .expect("the Dockerfile's HEALTHCHECK CMD");
    let program = healthcheck.split('"').next().expect("program");
    if let Some(problem) = healthcheck_problem(
        &rows,
        "order-tracing/order-service:0.1.0",
        &["CMD".into(), program.into()],
    ) {
        problems.push(format!("Dockerfile HEALTHCHECK: {problem}"));
    }
    assert!(problems.is_empty(), "{problems:#?}");

    // And the check checks: Tempo probing itself with wget, as compose had it, is refused.
    let tempo = compose["services"]["tempo"]["image"]
        .as_str()
        .expect("image");
    let wget = [
        "CMD",
        "wget",
        "-q",
        "-O",
        "/dev/null",
        "http://localhost:3200/ready",
    ]
    .map(String::from);
    assert!(healthcheck_problem(&rows, tempo, &wget).is_some());
}

/// `30s`, `500ms`, `2m` as milliseconds.
fn millis(duration: &str) -> u64 {
    let digits: String = duration.chars().take_while(char::is_ascii_digit).collect();
    let number: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("duration {duration}"));
    match &duration[digits.len()..] {
        "ms" => number,
        "s" => number * 1000,
        "m" => number * 60_000,
        unit => panic!("duration {duration}: unit {unit}"),
    }
}

#[test]
fn service_graph_halves_wait_longer_than_any_service_takes_to_export_them() {
    let compose = compose();
    // The SDK's default batch delay is 5 s (OTEL_BSP_SCHEDULE_DELAY, in ms).
    let slowest_export = compose["services"]
        .as_object()
        .expect("services")
        .values()
        .filter(|s| s["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"].is_string())
        .map(|s| {
            s["environment"]["OTEL_BSP_SCHEDULE_DELAY"]
                .as_str()
                .map_or(5000, |d| d.parse().expect("OTEL_BSP_SCHEDULE_DELAY in ms"))
        })
        .max()
        .expect("services export OTLP");
    let collector = yaml("otel-collector/otel-collector.yml");
    let ttl = millis(
        collector["connectors"]["servicegraph"]["store"]["ttl"]
            .as_str()
            .expect("servicegraph store ttl"),
    );
    // Each half can wait up to one batch delay in its own process; twice that, and the
    // export itself, fit in the ttl.
    assert!(
        ttl >= 2 * slowest_export,
        "servicegraph ttl {ttl} ms: a half exported {slowest_export} ms after the other becomes an \"unknown\" node"
    );
    // The traces/in pipeline feeds the connectors without batching first (a batch would add
    // its timeout to the gap).
    assert!(
        !collector["service"]["pipelines"]["traces/in"]["processors"]
            .as_array()
            .expect("processors")
            .iter()
            .any(|p| p == "batch")
    );
}

#[test]
fn collector_and_tempo_use_the_current_names_and_keep_what_grafana_reads() {
    let collector = yaml("otel-collector/otel-collector.yml");
    // Collector 0.150 (core v0.150.0 exporter/otlpexporter/metadata.yaml): the gRPC exporter is
    // `otlp_grpc`; `otlp` is a deprecated alias that logs a warning at start.
    for exporter in collector["exporters"]
        .as_object()
        .expect("exporters")
        .keys()
    {
        let kind = exporter.split('/').next().unwrap_or(exporter);
        assert_ne!(kind, "otlp", "{exporter}: use otlp_grpc");
    }
    let tempo = yaml("tempo/tempo.yml");
    // TraceQL metrics older than query_backend_after (30 min) are read from flushed blocks.
    assert_eq!(
        tempo["metrics_generator"]["processor"]["local_blocks"]["flush_to_storage"],
        true
    );
    // The generator is disabled without storage.path (even for local-blocks only).
    assert!(tempo["metrics_generator"]["storage"]["path"].is_string());
}

/// Every key of `loki/loki.yml`, as a path, with where the pinned version defines it. Loki
/// parses its file strictly: a key not in this list (a typo, a key of another version) would
/// stop it at start, so a new key is added here only after it was read in the source.
const LOKI_KEYS: &[(&str, &str)] = &[
    ("auth_enabled", "pkg/loki/loki.go Config.AuthEnabled"),
    ("server", "pkg/loki/loki.go Config.Server"),
    (
        "server.http_listen_port",
        "dskit server.Config.HTTPListenPort",
    ),
    ("common", "pkg/loki/loki.go Config.Common"),
    (
        "common.instance_addr",
        "pkg/loki/common/common.go InstanceAddr",
    ),
    ("common.path_prefix", "pkg/loki/common/common.go PathPrefix"),
    ("common.storage", "pkg/loki/common/common.go Storage"),
    (
        "common.storage.filesystem",
        "pkg/loki/common/common.go Storage.FSConfig",
    ),
    (
        "common.storage.filesystem.chunks_directory",
        "common.go FilesystemConfig",
    ),
    (
        "common.storage.filesystem.rules_directory",
        "common.go FilesystemConfig",
    ),
    (
        "common.replication_factor",
        "pkg/loki/common/common.go ReplicationFactor",
    ),
    ("common.ring", "pkg/util/ring/ring_config.go RingConfig"),
    ("common.ring.kvstore", "ring_config.go KVStore"),
    ("common.ring.kvstore.store", "dskit kv.Config.Store"),
    ("schema_config", "pkg/loki/loki.go Config.SchemaConfig"),
    (
        "schema_config.configs",
        "pkg/storage/config/schema_config.go SchemaConfig",
    ),
    (
        "schema_config.configs.from",
        "schema_config.go PeriodConfig",
    ),
    (
        "schema_config.configs.store",
        "schema_config.go PeriodConfig.IndexType",
    ),
    (
        "schema_config.configs.object_store",
        "schema_config.go PeriodConfig",
    ),
    (
        "schema_config.configs.schema",
        "schema_config.go PeriodConfig",
    ),
    (
        "schema_config.configs.index",
        "schema_config.go IndexPeriodicTableConfig",
    ),
    (
        "schema_config.configs.index.prefix",
        "schema_config.go PeriodicTableConfig",
    ),
    (
        "schema_config.configs.index.period",
        "schema_config.go PeriodicTableConfig",
    ),
    ("distributor", "pkg/loki/loki.go Config.Distributor"),
    (
        "distributor.otlp_config",
        "pkg/distributor/distributor.go Config.OTLPConfig",
    ),
    (
        "distributor.otlp_config.default_resource_attributes_as_index_labels",
        "pkg/loghttp/push/otlp_config.go GlobalOTLPConfig",
    ),
    ("limits_config", "pkg/loki/loki.go Config.LimitsConfig"),
    (
        "limits_config.allow_structured_metadata",
        "pkg/validation/limits.go",
    ),
    ("limits_config.retention_period", "pkg/validation/limits.go"),
    (
        "limits_config.reject_old_samples",
        "pkg/validation/limits.go",
    ),
    (
        "limits_config.reject_old_samples_max_age",
        "pkg/validation/limits.go",
    ),
    ("compactor", "pkg/loki/loki.go Config.CompactorConfig"),
    ("compactor.retention_enabled", "pkg/compactor/config.go"),
    ("compactor.delete_request_store", "pkg/compactor/config.go"),
    ("analytics", "pkg/loki/loki.go Config.Analytics"),
    (
        "analytics.reporting_enabled",
        "pkg/analytics/reporter.go Config.Enabled",
    ),
];

/// Every key path of `value` (list items share their list's path).
fn key_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                out.insert(path.clone());
                key_paths(child, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                key_paths(item, prefix, out);
            }
        }
        _ => {}
    }
}

#[test]
fn loki_is_configured_for_otlp_with_keys_its_version_knows_and_the_collector_sends_it_logs() {
    let loki = yaml("loki/loki.yml");
    let mut keys = BTreeSet::new();
    key_paths(&loki, "", &mut keys);
    let known: BTreeSet<&str> = LOKI_KEYS.iter().map(|(key, _)| *key).collect();
    for key in &keys {
        assert!(
            known.contains(key.as_str()),
            "loki.yml: {key} was not read in grafana/loki v3.7.6; Loki would refuse the file"
        );
    }
    // Structured metadata (where OTLP ids go) needs schema v13 on tsdb, tsdb a 24h index
    // (pkg/loki/validation.go, schema_config.go); retention needs a delete-request store.
    let period = &loki["schema_config"]["configs"][0];
    assert_eq!(period["schema"], "v13");
    assert_eq!(period["store"], "tsdb");
    assert_eq!(period["index"]["period"], "24h");
    assert_ne!(loki["limits_config"]["allow_structured_metadata"], false);
    if loki["compactor"]["retention_enabled"] == true {
        assert!(loki["compactor"]["delete_request_store"].is_string());
    }
    // The compose service runs this file, and its volume holds Loki's path prefix.
    let compose = compose();
    let service = &compose["services"]["loki"];
    let config_flag = service["command"][0].as_str().expect("command");
    let mounted = service["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(Value::as_str)
        .any(|v| {
            v.starts_with("./loki/loki.yml:")
                && v.contains(config_flag.trim_start_matches("-config.file="))
        });
    assert!(mounted, "{config_flag} is not ./loki/loki.yml");
    let prefix = loki["common"]["path_prefix"].as_str().expect("path_prefix");
    assert!(
        service["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .filter_map(Value::as_str)
            .any(|v| v.ends_with(&format!(":{prefix}"))),
        "nothing keeps {prefix} across restarts"
    );

    // The Collector's logs pipeline: limited, redacted, batched, to Loki's OTLP endpoint.
    let collector = yaml("otel-collector/otel-collector.yml");
    let logs = &collector["service"]["pipelines"]["logs"];
    assert_eq!(logs["receivers"], serde_json::json!(["otlp"]));
    assert_eq!(
        logs["processors"],
        serde_json::json!(["memory_limiter", "attributes/redact", "batch"])
    );
    assert_eq!(logs["exporters"], serde_json::json!(["otlp_http/loki"]));
    // otlp_http appends /v1/logs to `endpoint`; Loki serves POST /otlp/v1/logs.
    assert_eq!(
        collector["exporters"]["otlp_http/loki"]["endpoint"],
        "http://loki:3100/otlp"
    );
}

#[test]
fn order_service_is_given_time_to_finish_its_orders_after_sigterm() {
    let compose = compose();
    let grace = compose["services"]["order-service"]["stop_grace_period"]
        .as_str()
        .expect("order-service stop_grace_period");
    let budget = compose["services"]["order-service"]["environment"]["ORDER_BUDGET_MS"]
        .as_str()
        .map_or(order_service::settings::DEFAULT_ORDER_BUDGET, |ms| {
            std::time::Duration::from_millis(ms.parse().expect("ORDER_BUDGET_MS"))
        });
    // The longest order, then the span flush (2.5 s), before compose's SIGKILL.
    let needed = order_service::longest_order(budget) + std::time::Duration::from_millis(2500);
    assert!(
        u128::from(millis(grace)) >= needed.as_millis(),
        "stop_grace_period {grace}: an order can take {needed:?} to finish"
    );
}

/// `5ms`, `2.5s` as seconds.
fn seconds(duration: &str) -> f64 {
    let (number, scale) = match duration.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => (duration.strip_suffix('s').expect("ms or s"), 1.0),
    };
    number.parse::<f64>().expect("a number") * scale
}

#[test]
fn the_trace_store_computes_the_connectors_as_the_collector_is_configured() {
    // The local stack's stand-in must write the series the real Collector would: same
    // dimensions, same buckets.
    let collector = yaml("otel-collector/otel-collector.yml");
    let connectors = &collector["connectors"];
    let names = |list: &Value, key: Option<&str>| -> Vec<String> {
        list.as_array()
            .expect("a list")
            .iter()
            .map(|d| {
                key.map_or(d, |k| &d[k])
                    .as_str()
                    .expect("a name")
                    .to_owned()
            })
            .collect()
    };
    let buckets = |list: &Value| -> Vec<f64> {
        list.as_array()
            .expect("buckets")
            .iter()
            .map(|b| seconds(b.as_str().expect("a duration")))
            .collect()
    };
    let expected = trace_store::ConnectorConfig {
        spanmetrics_dimensions: names(&connectors["spanmetrics"]["dimensions"], Some("name")),
        spanmetrics_buckets: buckets(
            &connectors["spanmetrics"]["histogram"]["explicit"]["buckets"],
        ),
        servicegraph_dimensions: names(&connectors["servicegraph"]["dimensions"], None),
        servicegraph_buckets: buckets(&connectors["servicegraph"]["latency_histogram_buckets"]),
    };
    let actual = trace_store::ConnectorConfig::default();
    assert_eq!(
        actual.spanmetrics_dimensions,
        expected.spanmetrics_dimensions
    );
    assert_eq!(
        actual.servicegraph_dimensions,
        expected.servicegraph_dimensions
    );
    for (a, e) in [
        (&actual.spanmetrics_buckets, &expected.spanmetrics_buckets),
        (&actual.servicegraph_buckets, &expected.servicegraph_buckets),
    ] {
        assert_eq!(a.len(), e.len(), "{a:?} vs {e:?}");
        assert!(
            a.iter().zip(e).all(|(x, y)| (x - y).abs() < 1e-9),
            "{a:?} vs {e:?}"
        );
    }
}
