//! What the services bench starts take from bench's own environment.
//!
//! A child process inherits its parent's environment, so a variable set for bench reaches all
//! its services. For what bench does not decide that is the point: a fault, a batch setting or
//! an allocator's tunable set once (`PAYMENT_FAILURE_RATE=0.3 target/release/bench …`) applies
//! to every row, and to both sides of a pair, and the header names it, so that a figure says
//! what it was measured under. What bench decides itself is withheld, whatever the shell holds:
//! whether telemetry is on and where it goes (each row's own setting; an `OTEL_SDK_DISABLED`
//! left in the shell would otherwise make every exporting row export nothing, and an
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` send the spans elsewhere), the log level, the
//! addresses and listeners (eight processes given one `ADMIN_PORT` would not all start), the
//! simulated latency of each load and the worker threads.

use std::ffi::OsString;

/// Variables bench sets, or wants unset, in every service it starts.
const DECIDED: [&str; 12] = [
    "HOST",
    "PORT",
    "ADMIN_PORT",
    "INVENTORY_SERVICE_URL",
    "PAYMENT_SERVICE_URL",
    "NOTIFICATION_SERVICE_URL",
    "INVENTORY_LOOKUP_SCALE",
    "TOKIO_WORKER_THREADS",
    "RUST_LOG",
    "TELEMETRY",
    "TELEMETRY_EXPORTER",
    "OTEL_SDK_DISABLED",
];

/// Beginnings of the names the services read (`OTEL_` for the SDK's and this project's
/// telemetry settings, a service's name for its faults and settings, `HTTP_` for the
/// servers', glibc's allocator tunables): what the header names when bench passes it on.
const READ_BY_THE_SERVICES: [&str; 9] = [
    "OTEL_",
    "ORDER_",
    "INVENTORY_",
    "PAYMENT_",
    "NOTIFICATION_",
    "SERVICE_NAME",
    "HTTP_",
    "GLIBC_TUNABLES",
    "MALLOC_",
];

/// Whether bench keeps `name` out of the services' environment: one of [`DECIDED`], or where
/// and how telemetry is sent (`OTEL_EXPORTER_OTLP_ENDPOINT`, `…_TRACES_PROTOCOL`,
/// `OTEL_LOGS_EXPORTER`, …).
fn withheld(name: &str) -> bool {
    DECIDED.contains(&name)
        || (name.starts_with("OTEL_EXPORTER_OTLP_")
            && (name.ends_with("_ENDPOINT") || name.ends_with("_PROTOCOL")))
        || (name.starts_with("OTEL_") && name.ends_with("_EXPORTER"))
}

/// The names of bench's environment that a service must not inherit, for `env_remove`.
pub fn withheld_here() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| name.to_str().is_some_and(withheld))
        .collect()
}

/// The header's account of bench's environment: what the services are given of it and what
/// they are not.
pub fn described() -> String {
    describe(std::env::vars_os().filter_map(|(name, value)| {
        Some((
            name.into_string().ok()?,
            value.to_string_lossy().into_owned(),
        ))
    }))
}

/// [`described`] for the variables `vars`.
fn describe(vars: impl Iterator<Item = (String, String)>) -> String {
    let mut passed = Vec::new();
    let mut kept_out = Vec::new();
    for (name, value) in vars {
        if withheld(&name) {
            kept_out.push(name);
        } else if READ_BY_THE_SERVICES
            .iter()
            .any(|start| name.starts_with(start))
        {
            passed.push(format!("{name}={value}"));
        }
    }
    passed.sort_unstable();
    kept_out.sort_unstable();
    let list = |names: &[String]| {
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(" ")
        }
    };
    format!(
        "the services' settings from bench's environment: {}; withheld (bench sets its own): {}",
        list(&passed),
        list(&kept_out)
    )
}

#[cfg(test)]
mod tests {
    use super::describe;

    fn described(vars: &[(&str, &str)]) -> String {
        describe(
            vars.iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        )
    }

    #[test]
    fn a_fault_is_passed_on_and_named_with_its_value() {
        let text = described(&[
            ("PAYMENT_FAILURE_RATE", "0.3"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "4096"),
            ("HOME", "/root"),
        ]);
        assert!(
            text.contains("environment: OTEL_BSP_MAX_QUEUE_SIZE=4096 PAYMENT_FAILURE_RATE=0.3;"),
            "{text}"
        );
        assert!(!text.contains("HOME"), "{text}");
        assert!(
            text.ends_with("withheld (bench sets its own): none"),
            "{text}"
        );
    }

    #[test]
    fn where_telemetry_goes_and_whether_it_is_on_are_withheld() {
        let text = described(&[
            ("OTEL_SDK_DISABLED", "true"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://elsewhere:4318",
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("ADMIN_PORT", "9102"),
        ]);
        assert_eq!(
            text,
            "the services' settings from bench's environment: OTEL_EXPORTER_OTLP_COMPRESSION=gzip; \
             withheld (bench sets its own): ADMIN_PORT OTEL_EXPORTER_OTLP_PROTOCOL \
             OTEL_EXPORTER_OTLP_TRACES_ENDPOINT OTEL_SDK_DISABLED OTEL_TRACES_EXPORTER"
        );
    }
}
