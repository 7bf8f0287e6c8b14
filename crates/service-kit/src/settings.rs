//! Where a service listens and whom it calls, from the environment.
//!
//! A bad value is a [`ConfigError`] naming the variable; `main` prints it as one line and exits
//! with status 2. Nothing falls back silently to a default.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use url::Url;

pub use telemetry::ConfigError;

/// The exit status for a bad setting, as for a usage error.
pub const CONFIG_ERROR_EXIT: u8 = 2;

/// `HOST` and `PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenSettings {
    /// The socket address to bind.
    pub addr: SocketAddr,
}

impl ListenSettings {
    /// Reads `HOST` (default 127.0.0.1, as uvicorn; compose sets 0.0.0.0) and `PORT` (default
    /// `default_port`).
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
        Ok(Self {
            addr: SocketAddr::new(host, port),
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
