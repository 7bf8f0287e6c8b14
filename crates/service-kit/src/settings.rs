//! Where a service listens and whom it calls, from the environment.
//!
//! A bad value is a [`ConfigError`] naming the variable; `main` prints it as one line and exits
//! with status 2. Nothing falls back silently to a default.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use url::Url;

pub use telemetry::ConfigError;

/// The exit status for a bad setting, as for a usage error.
pub const CONFIG_ERROR_EXIT: u8 = 2;

/// `HOST`, `PORT` and `HTTP_IDLE_TIMEOUT_MS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenSettings {
    /// The socket address to bind.
    pub addr: SocketAddr,
    /// How long a connection may wait for its next request head before it is closed, and a
    /// request body for its next bytes before the request is answered 408
    /// (`serve::IDLE_CONNECTION_TIMEOUT` unless told).
    pub idle_timeout: Duration,
}

/// The shortest `HTTP_IDLE_TIMEOUT_MS`: a connection of the services' own client pools may be
/// idle for [`telemetry::POOL_IDLE_TIMEOUT`] (4 s); a server closing sooner would race it, so
/// a request could go out on a connection the server is closing.
const MIN_IDLE_TIMEOUT_MS: u64 = 5_000;

const _: () = assert!(
    telemetry::POOL_IDLE_TIMEOUT.as_millis() + 500 < MIN_IDLE_TIMEOUT_MS as u128
        && MIN_IDLE_TIMEOUT_MS as u128 <= crate::serve::IDLE_CONNECTION_TIMEOUT.as_millis()
);

impl ListenSettings {
    /// Reads `HOST` (default 127.0.0.1, as uvicorn; compose sets 0.0.0.0), `PORT` (default
    /// `default_port`) and `HTTP_IDLE_TIMEOUT_MS` (default 5000, at least 5000: behind a proxy
    /// that keeps idle upstream connections longer, set it above the proxy's keep-alive).
    pub fn from_env(default_port: u16) -> Result<Self, ConfigError> {
        Self::from_lookup(default_port, |name| std::env::var(name).ok())
    }

    /// As [`ListenSettings::from_env`], reading through `lookup`.
    pub fn from_lookup(
        default_port: u16,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let host = match lookup("HOST") {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(raw) => raw.trim().parse().map_err(|_| {
                ConfigError::new("HOST", &raw, "expected an IP address such as 0.0.0.0")
            })?,
        };
        let port = match lookup("PORT") {
            None => default_port,
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|_| ConfigError::new("PORT", &raw, "expected a port number 0-65535"))?,
        };
        let idle_timeout = crate::faults::env_value(
            &lookup,
            "HTTP_IDLE_TIMEOUT_MS",
            "milliseconds, 5000 to 3600000",
            |v| {
                v.parse()
                    .ok()
                    .filter(|ms| (MIN_IDLE_TIMEOUT_MS..=3_600_000).contains(ms))
            },
        )?
        .map_or(crate::serve::IDLE_CONNECTION_TIMEOUT, Duration::from_millis);
        Ok(Self {
            addr: SocketAddr::new(host, port),
            idle_timeout,
        })
    }
}

/// Reads the base URL of a service this one calls: `variable`, or `default` when unset.
pub fn service_url(
    lookup: impl Fn(&str) -> Option<String>,
    variable: &str,
    default: &str,
) -> Result<Url, ConfigError> {
    let raw = lookup(variable).unwrap_or_else(|| default.to_owned());
    telemetry::config::parse_base_url(variable, &raw, default)
}

/// `ADMIN_PORT`: where the 127.0.0.1-only admin endpoint listens; unset, there is none.
pub fn admin_port() -> Result<Option<u16>, ConfigError> {
    match std::env::var("ADMIN_PORT") {
        Err(_) => Ok(None),
        Ok(raw) => raw
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::new("ADMIN_PORT", &raw, "expected a port number 0-65535")),
    }
}

/// Prints a bad setting as one line on stderr and gives exit status 2.
pub fn config_error(
    service: &telemetry::ServiceInfo,
    error: &ConfigError,
) -> std::process::ExitCode {
    eprintln!("{}: {error}", service.name);
    std::process::ExitCode::from(CONFIG_ERROR_EXIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        let vars = vars.to_vec();
        move |k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn listens_on_loopback_and_the_default_port_unless_told() {
        let s = ListenSettings::from_lookup(8002, lookup(&[])).unwrap();
        assert_eq!(s.addr.to_string(), "127.0.0.1:8002");
        let s = ListenSettings::from_lookup(8002, lookup(&[("HOST", "0.0.0.0"), ("PORT", "9")]))
            .unwrap();
        assert_eq!(s.addr.to_string(), "0.0.0.0:9");
    }

    #[test]
    fn idle_connections_close_after_five_seconds_unless_told_and_never_sooner() {
        let s = ListenSettings::from_lookup(1, lookup(&[])).unwrap();
        assert_eq!(s.idle_timeout, Duration::from_secs(5));
        let s =
            ListenSettings::from_lookup(1, lookup(&[("HTTP_IDLE_TIMEOUT_MS", "75000")])).unwrap();
        assert_eq!(s.idle_timeout, Duration::from_secs(75));
        for bad in ["4999", "0", "-1", "5s", "3600001", ""] {
            let vars: &'static [(&'static str, &'static str)] =
                Box::leak(vec![("HTTP_IDLE_TIMEOUT_MS", bad)].into_boxed_slice());
            let e = ListenSettings::from_lookup(1, lookup(vars)).unwrap_err();
            assert_eq!(e.variable, "HTTP_IDLE_TIMEOUT_MS", "{bad}");
        }
    }

    #[test]
    fn bad_port_or_host_names_the_variable() {
        let e = ListenSettings::from_lookup(1, lookup(&[("PORT", "abc")])).unwrap_err();
        assert_eq!(e.variable, "PORT");
        let e = ListenSettings::from_lookup(1, lookup(&[("PORT", "70000")])).unwrap_err();
        assert_eq!(e.variable, "PORT");
        let e = ListenSettings::from_lookup(1, lookup(&[("HOST", "localhost:1")])).unwrap_err();
        assert_eq!(e.variable, "HOST");
    }

    #[test]
    fn service_urls_must_be_http_with_a_host() {
        let ok = service_url(lookup(&[]), "X_URL", "http://127.0.0.1:8002").unwrap();
        assert_eq!(ok.as_str(), "http://127.0.0.1:8002/");
        for bad in ["not a url", "ftp://host", "inventory:8002", "http://h/?q=1"] {
            let vars: &'static [(&'static str, &'static str)] =
                Box::leak(vec![("X_URL", bad)].into_boxed_slice());
            let e = service_url(lookup(vars), "X_URL", "http://127.0.0.1:8002").unwrap_err();
            assert_eq!(e.variable, "X_URL", "{bad}");
        }
    }
}
