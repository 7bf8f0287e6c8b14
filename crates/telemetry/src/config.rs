//! Telemetry settings read from the environment, validated up front.
//!
//! The SDK reads some `OTEL_*` variables itself and ignores others (`OTEL_SDK_DISABLED`,
//! `OTEL_PROPAGATORS`, `OTEL_TRACES_EXPORTER`), and it silently ignores `OTEL_TRACES_SAMPLER`
//! once a sampler is set in code. So every variable this project documents is parsed here,
//! once, and a bad value is a [`ConfigError`] naming the variable instead of a silent default.

use std::collections::BTreeMap;

use opentelemetry_sdk::trace::Sampler;
use url::Url;

/// A setting that could not be used. Its `Display` is the one line a service prints before it
/// exits with status 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}={value:?}: {reason}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: String,
    /// The value it had.
    pub value: String,
    /// What a valid value looks like.
    pub reason: String,
}

impl ConfigError {
    /// An error for `variable` holding `value`.
    pub fn new(variable: &str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            variable: variable.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC, port 4317 by convention (the default).
    Grpc,
    /// OTLP/HTTP with protobuf bodies, port 4318 by convention.
    HttpProtobuf,
}

/// Which OTLP exporter sends spans and log records (`TELEMETRY_EXPORTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExporterKind {
    /// This crate's (`direct`, the default): each batch encoded in one pass from the SDK's
    /// records, the same bytes for a fraction of the CPU (BENCHMARKS.md).
    Direct,
    /// opentelemetry-otlp 0.33's own exporters (`opentelemetry-otlp`), for comparison.
    OpentelemetryOtlp,
}

/// What a service is, as its `main` knows it.
#[derive(Debug, Clone)]
pub struct ServiceInfo {
    /// The default `service.name`; the environment may override it.
    pub name: &'static str,
    /// `service.version`, normally `env!("CARGO_PKG_VERSION")`.
    pub version: &'static str,
}

/// Every telemetry setting, resolved.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `service.name` after precedence: `OTEL_SERVICE_NAME`, then `SERVICE_NAME`, then a
    /// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, then the built-in name. (The SDK alone would
    /// let the resource attribute win over `OTEL_SERVICE_NAME`, against the specification.)
    pub service_name: String,
    /// `service.version`.
    pub service_version: String,
    /// Attributes from `OTEL_RESOURCE_ATTRIBUTES`, minus `service.name`.
    pub resource_attributes: BTreeMap<String, String>,
    /// `OTEL_TRACES_EXPORTER`: `otlp` (the default) or `none`: spans are still made (trace ids
    /// propagated, in log lines and `X-Trace-Id`) but none is exported.
    pub traces_exported: bool,
    /// `OTEL_LOGS_EXPORTER`: `otlp` (the default) or `none`.
    pub logs_exported: bool,
    /// `OTEL_BLRP_MAX_QUEUE_SIZE` (default 2048): log records waiting for export at most;
    /// beyond it they are dropped and counted.
    pub logs_max_queue_size: usize,
    /// `OTEL_BLRP_MAX_EXPORT_BATCH_SIZE` (default 512): the most records one export carries
    /// (never more than `logs_max_queue_size`).
    pub logs_max_export_batch_size: usize,
    /// `OTEL_BLRP_SCHEDULE_DELAY` in milliseconds (default 1000): how long records wait at
    /// most before a batch that is not full is sent.
    pub logs_schedule_delay: std::time::Duration,
    /// The sampler, from `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    pub sampler: Sampler,
    /// `OTEL_SDK_DISABLED=true`: spans are still created (so logs keep their trace ids and
    /// propagation still works) but nothing is exported.
    pub sdk_disabled: bool,
    /// The log filter directive from `RUST_LOG` (default `info`).
    pub log_filter: String,
    /// `TELEMETRY=off`: no OpenTelemetry at all (no layer, provider or propagator), only JSON
    /// logs. For measuring what tracing costs; `OTEL_SDK_DISABLED` keeps the layer.
    pub tracing_off: bool,
    /// `OTEL_BSP_MAX_QUEUE_SIZE` (the SDK's default, 2048): spans waiting for export at most;
    /// beyond it they are dropped and counted.
    pub max_queue_size: usize,
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (the SDK's default, 512): the most spans one export
    /// carries (never more than `max_queue_size`).
    pub max_export_batch_size: usize,
    /// `OTEL_BSP_SCHEDULE_DELAY` in milliseconds (the SDK's default, 5000): how long spans wait
    /// at most before a batch that is not full is sent.
    pub schedule_delay: std::time::Duration,
    /// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` (default [`DEFAULT_ATTRIBUTE_VALUE_LIMIT`]): string
    /// values longer than this, in bytes, are cut before export.
    pub attribute_value_limit: usize,
    /// Where and how spans are exported
    /// (`OTEL_EXPORTER_OTLP_{,TRACES_}{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT,COMPRESSION}`).
    pub traces_export: ExportSettings,
    /// Where and how log records are exported (`OTEL_EXPORTER_OTLP_{,LOGS_}…`).
    pub logs_export: ExportSettings,
    /// `TELEMETRY_EXPORTER`: `direct` (the default) or `opentelemetry-otlp`.
    pub exporter: ExporterKind,
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT`, `_PROTOCOL`, `_HEADERS`, `_TIMEOUT` and `_COMPRESSION` for
/// one signal: its own variable (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, …) wins over the generic
/// one, as the specification and opentelemetry-otlp have it.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// OTLP transport.
    pub protocol: Protocol,
    /// The full URL exports go to: the gRPC endpoint; for OTLP/HTTP the generic base with
    /// `/v1/traces` or `/v1/logs` appended, or the signal's own endpoint as it is.
    pub endpoint: Url,
    /// Sent with every export request (gRPC metadata or HTTP headers).
    pub headers: http::HeaderMap,
    /// One export's limit: no retry starts past it, and each attempt gets what is left
    /// (default [`DEFAULT_EXPORT_TIMEOUT`]).
    pub timeout: std::time::Duration,
}

impl ExportSettings {
    /// The settings of `signal` (`TRACES` or `LOGS`).
    fn read(get: &impl Fn(&str) -> Option<String>, signal: &str) -> Result<Self, ConfigError> {
        // The signal's own variable if set, else the generic one; with the name to blame.
        let pick = |setting: &str| {
            let own = format!("OTEL_EXPORTER_OTLP_{signal}_{setting}");
            match get(&own) {
                Some(value) => Some((own, value)),
                None => {
                    let generic = format!("OTEL_EXPORTER_OTLP_{setting}");
                    get(&generic).map(|value| (generic, value))
                }
            }
        };
        let protocol = match pick("PROTOCOL") {
            None => Protocol::Grpc,
            Some((_, value)) if choice(&value) == "grpc" => Protocol::Grpc,
            Some((_, value)) if choice(&value) == "http/protobuf" => Protocol::HttpProtobuf,
            Some((variable, other)) => {
                return Err(ConfigError::new(
                    &variable,
                    &other,
                    "expected grpc or http/protobuf",
                ));
            }
        };
        let endpoint = signal_endpoint(protocol, pick("ENDPOINT"), signal)?;
        let headers = match pick("HEADERS") {
            Some((variable, raw)) => parse_headers(&variable, &raw)?,
            None => http::HeaderMap::new(),
        };
        let timeout = match pick("TIMEOUT") {
            Some((variable, raw)) => positive(Some(raw), &variable)?
                .map_or(DEFAULT_EXPORT_TIMEOUT, |ms| {
                    std::time::Duration::from_millis(ms as u64)
                }),
            None => DEFAULT_EXPORT_TIMEOUT,
        };
        if let Some((variable, other)) = pick("COMPRESSION").filter(|(_, v)| choice(v) != "none") {
            return Err(ConfigError::new(
                &variable,
                &other,
                "expected none (no compression is built in: exports stay on the local network)",
            ));
        }
        Ok(Self {
            protocol,
            endpoint,
            headers,
            timeout,
        })
    }
}

/// The specification's default for `OTEL_EXPORTER_OTLP_TIMEOUT`.
pub const DEFAULT_EXPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The batch processor's queue size when `OTEL_BSP_MAX_QUEUE_SIZE` is unset (the SDK's).
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 2048;

/// The most spans in one export when `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` is unset (the SDK's).
pub const DEFAULT_MAX_EXPORT_BATCH_SIZE: usize = 512;

/// The longest wait before a batch is sent when `OTEL_BSP_SCHEDULE_DELAY` is unset (the SDK's).
pub const DEFAULT_SCHEDULE_DELAY: std::time::Duration = std::time::Duration::from_secs(5);

/// The longest wait of log records when `OTEL_BLRP_SCHEDULE_DELAY` is unset (the SDK's).
pub const DEFAULT_LOGS_SCHEDULE_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// The longest string value exported when `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` is unset. The
/// specification's default is no limit; with that, a batch of 512 spans (the SDK's batch size)
/// could pass a receiver's 4 MiB limit on a few large values each. At 1 KiB, even spans with
/// every caller-controlled value at its longest (user agent, query, exception text) stay far
/// under it.
pub const DEFAULT_ATTRIBUTE_VALUE_LIMIT: usize = 1024;

impl TelemetryConfig {
    /// Reads the process environment.
    pub fn from_env(service: &ServiceInfo) -> Result<Self, ConfigError> {
        Self::from_lookup(service, |name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can pass a map instead of the environment.
    pub fn from_lookup(
        service: &ServiceInfo,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let mut resource_attributes = match get("OTEL_RESOURCE_ATTRIBUTES") {
            Some(raw) => parse_resource_attributes(&raw)?,
            None => BTreeMap::new(),
        };
        let resource_service_name = resource_attributes.remove("service.name");
        let service_name = get("OTEL_SERVICE_NAME")
            .or_else(|| get("SERVICE_NAME"))
            .or(resource_service_name)
            .unwrap_or_else(|| service.name.to_owned());

        let traces_exported = exported(&get, "OTEL_TRACES_EXPORTER")?;
        let logs_exported = exported(&get, "OTEL_LOGS_EXPORTER")?;
        if let Some(raw) = get("OTEL_PROPAGATORS") {
            let mut named: Vec<String> = raw
                .split(',')
                .map(choice)
                .filter(|name| !name.is_empty())
                .collect();
            named.sort_unstable();
            if named != ["baggage", "tracecontext"] {
                return Err(ConfigError::new(
                    "OTEL_PROPAGATORS",
                    &raw,
                    "expected tracecontext,baggage: W3C Trace Context and Baggage are built in \
                     and always on",
                ));
            }
        }
        // The SDK reads these too, and silently ignores a bad value; here a bad value is refused.
        let (logs_max_queue_size, logs_max_export_batch_size, logs_schedule_delay) =
            batch_settings(&get, "OTEL_BLRP", DEFAULT_LOGS_SCHEDULE_DELAY)?;
        let sampler = parse_sampler(
            get("OTEL_TRACES_SAMPLER").as_deref(),
            get("OTEL_TRACES_SAMPLER_ARG").as_deref(),
        )?;
        let sdk_disabled = match get("OTEL_SDK_DISABLED") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(ConfigError::new(
                    "OTEL_SDK_DISABLED",
                    &v,
                    "expected true or false",
                ));
            }
        };
        let tracing_off = match get("TELEMETRY").as_deref() {
            None | Some("on") => false,
            Some("off") => true,
            Some(other) => return Err(ConfigError::new("TELEMETRY", other, "expected on or off")),
        };
        let (max_queue_size, max_export_batch_size, schedule_delay) =
            batch_settings(&get, "OTEL_BSP", DEFAULT_SCHEDULE_DELAY)?;
        let attribute_value_limit = positive(
            get("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"),
            "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
        )?
        .unwrap_or(DEFAULT_ATTRIBUTE_VALUE_LIMIT);
        // The generic values are checked even where both signals have their own: a bad one is
        // refused now, not on the day an override is removed.
        ExportSettings::read(
            &|name: &str| {
                (!name.starts_with("OTEL_EXPORTER_OTLP_TRACES_"))
                    .then(|| get(name))
                    .flatten()
            },
            "TRACES",
        )?;
        let traces_export = ExportSettings::read(&get, "TRACES")?;
        let logs_export = ExportSettings::read(&get, "LOGS")?;
        let exporter = match get("TELEMETRY_EXPORTER").as_deref() {
            None | Some("direct") => ExporterKind::Direct,
            Some("opentelemetry-otlp") => ExporterKind::OpentelemetryOtlp,
            Some(other) => {
                return Err(ConfigError::new(
                    "TELEMETRY_EXPORTER",
                    other,
                    "expected direct or opentelemetry-otlp",
                ));
            }
        };
        let log_filter = get("RUST_LOG").unwrap_or_else(|| "info".to_owned());
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&log_filter) {
            return Err(ConfigError::new("RUST_LOG", &log_filter, e.to_string()));
        }

        Ok(Self {
            service_name,
            service_version: service.version.to_owned(),
            resource_attributes,
            traces_exported,
            logs_exported,
            logs_max_queue_size,
            logs_max_export_batch_size,
            logs_schedule_delay,
            sampler,
            sdk_disabled,
            log_filter,
            tracing_off,
            max_queue_size,
            max_export_batch_size,
            schedule_delay,
            attribute_value_limit,
            traces_export,
            logs_export,
            exporter,
        })
    }
}

/// `OTEL_TRACES_EXPORTER` or `OTEL_LOGS_EXPORTER` (`variable`): whether the signal is exported
/// over OTLP (`otlp`, the default) or not at all (`none`); no other exporter is built in.
fn exported(get: &impl Fn(&str) -> Option<String>, variable: &str) -> Result<bool, ConfigError> {
    let raw = get(variable);
    match raw.as_deref().map(choice).as_deref() {
        None | Some("otlp") => Ok(true),
        Some("none") => Ok(false),
        Some(_) => Err(ConfigError::new(
            variable,
            raw.as_deref().unwrap_or_default(),
            "expected otlp or none",
        )),
    }
}

/// One of a variable's named choices as it is compared: trimmed, and in lowercase, as the
/// specification asks ("Enum values SHOULD be interpreted in a case-insensitive manner",
/// opentelemetry-specification, `configuration/sdk-environment-variables.md`).
fn choice(raw: &str) -> String {
    raw.trim().to_ascii_lowercase()
}

/// A whole number > 0 from `variable`'s value `raw`, if it is set.
/// `{prefix}_MAX_QUEUE_SIZE`, `{prefix}_MAX_EXPORT_BATCH_SIZE` (never more than the queue, as
/// the SDK's `BatchConfig` has it) and `{prefix}_SCHEDULE_DELAY` (milliseconds), each at the
/// SDK's default when unset.
fn batch_settings(
    get: &impl Fn(&str) -> Option<String>,
    prefix: &str,
    default_delay: std::time::Duration,
) -> Result<(usize, usize, std::time::Duration), ConfigError> {
    let setting = |name: &str| {
        let variable = format!("{prefix}_{name}");
        positive(get(&variable), &variable)
    };
    let max_queue = setting("MAX_QUEUE_SIZE")?.unwrap_or(DEFAULT_MAX_QUEUE_SIZE);
    let max_batch = setting("MAX_EXPORT_BATCH_SIZE")?
        .unwrap_or(DEFAULT_MAX_EXPORT_BATCH_SIZE)
        .min(max_queue);
    let delay = setting("SCHEDULE_DELAY")?.map_or(default_delay, |ms| {
        std::time::Duration::from_millis(ms as u64)
    });
    Ok((max_queue, max_batch, delay))
}

fn positive(raw: Option<String>, variable: &str) -> Result<Option<usize>, ConfigError> {
    raw.map(|raw| {
        raw.trim()
            .parse()
            .ok()
            .filter(|n: &usize| *n > 0)
            .ok_or_else(|| ConfigError::new(variable, &raw, "expected a whole number > 0"))
    })
    .transpose()
}

/// The `key=value` pairs of `variable`'s value `raw`, separated by commas, each value
/// percent-decoded: the format of `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS`.
fn parse_pairs(variable: &str, raw: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let bad = |reason: &str| ConfigError::new(variable, raw, reason);
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad("expected comma-separated key=value pairs"))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(bad("a pair has an empty key"));
            }
            let value = percent_encoding::percent_decode_str(value.trim())
                .decode_utf8()
                .map_err(|_| bad("a value is not UTF-8 once percent-decoded"))?;
            Ok((key.to_owned(), value.into_owned()))
        })
        .collect()
}

/// `OTEL_RESOURCE_ATTRIBUTES`: [`parse_pairs`], a later key replacing an earlier one.
fn parse_resource_attributes(raw: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    Ok(parse_pairs("OTEL_RESOURCE_ATTRIBUTES", raw)?
        .into_iter()
        .collect())
}

/// `OTEL_EXPORTER_OTLP_HEADERS` (or a signal's own): [`parse_pairs`], each a valid HTTP header.
fn parse_headers(variable: &str, raw: &str) -> Result<http::HeaderMap, ConfigError> {
    let bad = |reason: &str| ConfigError::new(variable, raw, reason);
    let mut headers = http::HeaderMap::new();
    for (name, value) in parse_pairs(variable, raw)? {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad("a name is not a valid HTTP header name"))?;
        let value = http::HeaderValue::from_str(&value)
            .map_err(|_| bad("a value holds a character an HTTP header cannot"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// The URL a signal (`TRACES`, `LOGS`) goes to, from the variable `pick` found (the signal's
/// own or the generic one) and its value. A scheme is required: opentelemetry-otlp 0.33 treats a
/// gRPC endpoint without one as https, which fails every export against a plain-text collector.
fn signal_endpoint(
    protocol: Protocol,
    picked: Option<(String, String)>,
    signal: &str,
) -> Result<Url, ConfigError> {
    const GENERIC: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    let (variable, raw) = picked.unwrap_or_else(|| {
        let local = match protocol {
            Protocol::Grpc => "http://127.0.0.1:4317",
            Protocol::HttpProtobuf => "http://127.0.0.1:4318",
        };
        (GENERIC.to_owned(), local.to_owned())
    });
    let example = match (protocol, signal) {
        (Protocol::Grpc, _) => "http://otel-collector:4317",
        (Protocol::HttpProtobuf, _) if variable == GENERIC => "http://otel-collector:4318",
        // A signal's own OTLP/HTTP endpoint is used as it is: the example has the path.
        (Protocol::HttpProtobuf, "TRACES") => "http://otel-collector:4318/v1/traces",
        (Protocol::HttpProtobuf, _) => "http://otel-collector:4318/v1/logs",
    };
    let url = parse_base_url(&variable, &raw, example)?;
    // The specification appends the signal's path to the generic endpoint for OTLP/HTTP, and
    // takes a signal's own endpoint as it is.
    if protocol == Protocol::Grpc || variable != GENERIC {
        return Ok(url);
    }
    let joined = format!(
        "{}/v1/{}",
        raw.trim().trim_end_matches('/'),
        signal.to_ascii_lowercase()
    );
    Url::parse(&joined).map_err(|e| ConfigError::new(&variable, &raw, e.to_string()))
}

/// Parses `raw`, the value of `variable`, as the base URL of an HTTP service: `http` or `https`
/// with a host, no query or fragment. `example` shows a good value in the error.
pub fn parse_base_url(variable: &str, raw: &str, example: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        ConfigError::new(
            variable,
            raw,
            format!("{e}; expected a URL such as {example}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(
            variable,
            raw,
            format!("expected an http:// URL with a host, such as {example}"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            variable,
            raw,
            "a base URL has no query or fragment",
        ));
    }
    Ok(url)
}

fn parse_sampler(name: Option<&str>, arg: Option<&str>) -> Result<Sampler, ConfigError> {
    let ratio = || -> Result<f64, ConfigError> {
        match arg {
            None => Ok(1.0),
            Some(raw) => match raw.trim().parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(ConfigError::new(
                    "OTEL_TRACES_SAMPLER_ARG",
                    raw,
                    "expected a number from 0 to 1",
                )),
            },
        }
    };
    let parent_based = |root: Sampler| Sampler::ParentBased(Box::new(root));
    Ok(match name.map(choice).as_deref() {
        None | Some("parentbased_always_on") => parent_based(Sampler::AlwaysOn),
        Some("always_on") => Sampler::AlwaysOn,
        Some("always_off") => Sampler::AlwaysOff,
        Some("traceidratio") => Sampler::TraceIdRatioBased(ratio()?),
        Some("parentbased_always_off") => parent_based(Sampler::AlwaysOff),
        Some("parentbased_traceidratio") => parent_based(Sampler::TraceIdRatioBased(ratio()?)),
        Some(_) => {
            return Err(ConfigError::new(
                "OTEL_TRACES_SAMPLER",
                name.unwrap_or_default(),
                "expected always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off or parentbased_traceidratio",
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: ServiceInfo = ServiceInfo {
        name: "order-service",
        version: "1.2.3",
    };

    fn config(vars: &[(&str, &str)]) -> Result<TelemetryConfig, ConfigError> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TelemetryConfig::from_lookup(&ORDER, |k| vars.get(k).cloned())
    }

    #[test]
    fn defaults_are_grpc_to_local_collector_with_parent_based_sampling() {
        let c = config(&[]).expect("defaults are valid");
        assert_eq!(c.service_name, "order-service");
        assert_eq!(c.traces_export.protocol, Protocol::Grpc);
        assert_eq!(c.traces_export.endpoint.as_str(), "http://127.0.0.1:4317/");
        assert_eq!(c.logs_export.endpoint.as_str(), "http://127.0.0.1:4317/");
        assert!(matches!(c.sampler, Sampler::ParentBased(_)));
        assert!(!c.sdk_disabled);
        assert_eq!(c.log_filter, "info");
    }

    #[test]
    fn batch_settings_are_the_sdks_defaults_and_a_bad_one_is_refused_in_one_line() {
        let c = config(&[]).expect("defaults are valid");
        assert_eq!(
            (c.max_queue_size, c.max_export_batch_size, c.schedule_delay),
            (2048, 512, std::time::Duration::from_secs(5))
        );
        assert_eq!(
            (
                c.logs_max_queue_size,
                c.logs_max_export_batch_size,
                c.logs_schedule_delay
            ),
            (2048, 512, std::time::Duration::from_secs(1))
        );
        let c = config(&[
            ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512"),
            ("OTEL_BSP_SCHEDULE_DELAY", "250"),
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "64"),
            ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "100"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "20"),
        ])
        .expect("valid settings");
        // A batch never holds more than the queue, as the SDK's BatchConfig has it.
        assert_eq!(c.max_export_batch_size, 100);
        assert_eq!(c.schedule_delay, std::time::Duration::from_millis(250));
        assert_eq!(
            (
                c.logs_max_queue_size,
                c.logs_max_export_batch_size,
                c.logs_schedule_delay
            ),
            (64, 64, std::time::Duration::from_millis(20))
        );
        for (variable, value) in [
            ("OTEL_BSP_SCHEDULE_DELAY", "5s"),
            ("OTEL_BSP_SCHEDULE_DELAY", "0"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "-1"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "1s"),
            ("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "0"),
        ] {
            let error = config(&[(variable, value)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains(variable) && !error.contains('\n'),
                "{variable}={value}: {error:?}"
            );
        }
    }

    #[test]
    fn otel_service_name_beats_service_name_beats_resource_attribute() {
        let attrs = (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=from-attrs,team=shop",
        );
        assert_eq!(config(&[attrs]).unwrap().service_name, "from-attrs");
        let seed = ("SERVICE_NAME", "from-seed");
        assert_eq!(config(&[attrs, seed]).unwrap().service_name, "from-seed");
        let otel = ("OTEL_SERVICE_NAME", "from-otel");
        let c = config(&[attrs, seed, otel]).unwrap();
        assert_eq!(c.service_name, "from-otel");
        // service.name is resolved once and not left in the attributes to fight it later.
        assert_eq!(
            c.resource_attributes.keys().collect::<Vec<_>>(),
            vec!["team"]
        );
    }

    #[test]
    fn http_protocol_appends_the_traces_path_to_the_base_endpoint() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
        ])
        .unwrap();
        assert_eq!(c.traces_export.protocol, Protocol::HttpProtobuf);
        assert_eq!(
            c.traces_export.endpoint.as_str(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            c.logs_export.endpoint.as_str(),
            "http://collector:4318/v1/logs"
        );
        let local = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]).unwrap();
        assert_eq!(
            local.traces_export.endpoint.as_str(),
            "http://127.0.0.1:4318/v1/traces"
        );
        let grpc = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]).unwrap();
        assert_eq!(grpc.logs_export.endpoint.as_str(), "http://collector:4317/");
        assert!(grpc.logs_exported);
        assert!(
            !config(&[("OTEL_LOGS_EXPORTER", "none")])
                .unwrap()
                .logs_exported
        );
    }

    #[test]
    fn export_headers_timeout_and_compression_are_read_and_checked() {
        let c = config(&[
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer%20abc, x-tenant=shop",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        ])
        .unwrap();
        assert_eq!(c.traces_export.headers["authorization"], "Bearer abc");
        assert_eq!(c.traces_export.headers["x-tenant"], "shop");
        assert_eq!(c.logs_export.headers["x-tenant"], "shop");
        assert_eq!(
            c.traces_export.timeout,
            std::time::Duration::from_millis(2500)
        );
        assert_eq!(
            config(&[]).unwrap().traces_export.timeout,
            DEFAULT_EXPORT_TIMEOUT
        );
        // A signal's own variable replaces the generic one, for that signal only.
        let own = config(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=shop"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-traces=1"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "700"),
        ])
        .unwrap();
        assert!(own.traces_export.headers.get("x-tenant").is_none());
        assert_eq!(own.traces_export.headers["x-traces"], "1");
        assert_eq!(own.logs_export.headers["x-tenant"], "shop");
        assert_eq!(
            own.logs_export.timeout,
            std::time::Duration::from_millis(700)
        );
        assert_eq!(own.traces_export.timeout, DEFAULT_EXPORT_TIMEOUT);
        for (variable, value) in [
            ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "bad name=x"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x=line%0Abreak"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "=x"),
        ] {
            let err = config(&[(variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable, "{value}");
        }
    }

    #[test]
    fn endpoint_without_scheme_is_rejected_instead_of_silently_becoming_https() {
        let err = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")]).unwrap_err();
        assert_eq!(err.variable, "OTEL_EXPORTER_OTLP_ENDPOINT");
    }

    #[test]
    fn sampler_from_environment_is_honoured() {
        let c = config(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ])
        .unwrap();
        assert!(matches!(c.sampler, Sampler::TraceIdRatioBased(r) if r == 0.25));
        assert!(matches!(
            config(&[("OTEL_TRACES_SAMPLER", "always_off")])
                .unwrap()
                .sampler,
            Sampler::AlwaysOff
        ));
    }

    #[test]
    fn a_signals_own_endpoint_and_protocol_win_and_its_own_http_endpoint_is_taken_as_it_is() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://tempo:4318/ingest",
            ),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "http://loki-gateway:4317",
            ),
        ])
        .unwrap();
        assert_eq!(c.traces_export.protocol, Protocol::HttpProtobuf);
        // No `/v1/traces` appended: the specification takes a signal's own URL as it is.
        assert_eq!(
            c.traces_export.endpoint.as_str(),
            "http://tempo:4318/ingest"
        );
        assert_eq!(c.logs_export.protocol, Protocol::Grpc);
        assert_eq!(c.logs_export.endpoint.as_str(), "http://loki-gateway:4317/");

        // A signal's own protocol alone: the generic endpoint, with that signal's path.
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/protobuf"),
        ])
        .unwrap();
        assert_eq!(c.traces_export.protocol, Protocol::Grpc);
        assert_eq!(
            c.logs_export.endpoint.as_str(),
            "http://collector:4318/v1/logs"
        );

        // A signal's own protocol and no endpoint anywhere: that protocol's local default.
        let c = config(&[("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", " http/protobuf ")]).unwrap();
        assert_eq!(
            c.logs_export.endpoint.as_str(),
            "http://127.0.0.1:4318/v1/logs"
        );
        assert_eq!(c.traces_export.endpoint.as_str(), "http://127.0.0.1:4317/");

        // A bad generic value is refused even where both signals have their own.
        let overridden = |generic: (&'static str, &'static str)| {
            config(&[
                generic,
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://a:4317"),
                ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://b:4317"),
            ])
        };
        for generic in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
        ] {
            assert_eq!(overridden(generic).unwrap_err().variable, generic.0);
        }
    }

    #[test]
    fn a_bad_own_http_endpoint_is_answered_with_an_example_that_has_the_path() {
        let err = config(&[
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        assert!(
            err.reason.contains("http://otel-collector:4318/v1/traces"),
            "{err}"
        );
    }

    #[test]
    fn the_built_in_propagators_and_exporters_may_be_named_and_traces_left_unexported() {
        let c = config(&[
            ("OTEL_PROPAGATORS", "baggage, tracecontext,"),
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_LOGS_EXPORTER", "otlp"),
        ])
        .unwrap();
        assert!(!c.traces_exported);
        assert!(c.logs_exported);
        assert!(config(&[]).unwrap().traces_exported);
    }

    #[test]
    fn named_choices_are_read_whatever_their_case_and_surrounding_spaces() {
        let c = config(&[
            ("OTEL_TRACES_SAMPLER", " ParentBased_TraceIdRatio "),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "HTTP/Protobuf"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "None"),
            ("OTEL_PROPAGATORS", "TraceContext, BAGGAGE"),
            ("OTEL_TRACES_EXPORTER", "NONE "),
            ("OTEL_LOGS_EXPORTER", "Otlp"),
        ])
        .expect("every value names a built-in choice");
        let sampler = format!("{:?}", c.sampler);
        assert!(
            sampler.starts_with("ParentBased(") && sampler.contains("TraceIdRatioBased(0.5)"),
            "{sampler}"
        );
        assert_eq!(c.traces_export.protocol, Protocol::HttpProtobuf);
        assert!(!c.traces_exported && c.logs_exported);
        let refused =
            config(&[("OTEL_TRACES_SAMPLER", "Always_Sometimes")]).expect_err("not a sampler");
        assert!(
            refused.to_string().contains("Always_Sometimes"),
            "{refused}"
        );
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        let cases = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
            ("OTEL_SDK_DISABLED", "yes"),
            ("OTEL_RESOURCE_ATTRIBUTES", "no-equals-sign"),
            ("RUST_LOG", "info,[[["),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317"),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "http://collector:4318/v1/logs?x=1",
            ),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "thrift"),
            ("OTEL_LOGS_EXPORTER", "console"),
            ("OTEL_TRACES_EXPORTER", "jaeger"),
            ("OTEL_PROPAGATORS", "b3"),
            ("OTEL_PROPAGATORS", "tracecontext"),
            ("OTEL_BLRP_MAX_QUEUE_SIZE", "0"),
            ("TELEMETRY_EXPORTER", "jaeger"),
        ];
        for (variable, value) in cases {
            let err = config(&[(variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable, "{value}");
            let line = err.to_string();
            assert!(line.contains(variable) && !line.contains('\n'), "{line}");
        }
        let err = config(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "OTEL_TRACES_SAMPLER_ARG");
    }

    #[test]
    fn resource_attribute_values_are_percent_decoded() {
        let c = config(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=staging%20eu, team = shop",
        )])
        .unwrap();
        assert_eq!(
            c.resource_attributes["deployment.environment.name"],
            "staging eu"
        );
        assert_eq!(c.resource_attributes["team"], "shop");
    }
}
