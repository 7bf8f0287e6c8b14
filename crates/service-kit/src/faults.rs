//! Fault injection for the incident walkthrough: a service's faults are read from the
//! environment at start and can be changed while it runs through `GET`/`PUT /faults` on an admin
//! listener bound to 127.0.0.1 only (`ADMIN_PORT`), never to `HOST`.

use std::sync::{Arc, RwLock};

use axum::{Json, Router, extract::State, routing::get};
use serde::{Serialize, de::DeserializeOwned};

use crate::{ApiError, ApiJson, ConfigError};

/// A service's fault settings.
pub trait FaultSettings:
    Clone + Default + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Reads them from the environment (through `lookup`); all off when unset.
    fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError>;
    /// Refuses impossible values (a rate above 1, say), with a message for the 400.
    fn validate(&self) -> Result<(), String>;
}

/// The current faults, shared by the handlers and the admin endpoint. Cloning shares them.
#[derive(Clone, Default)]
pub struct Faults<T>(Arc<RwLock<T>>);

impl<T: FaultSettings> Faults<T> {
    /// Faults starting as `initial`.
    pub fn new(initial: T) -> Self {
        Self(Arc::new(RwLock::new(initial)))
    }

    /// Reads the faults from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        T::from_lookup(&|name| std::env::var(name).ok()).map(Self::new)
    }

    /// The faults now.
    pub fn current(&self) -> T {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, faults: T) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = faults;
    }

    /// `GET /faults` and `PUT /faults`, for the admin listener.
    pub fn admin_router(&self) -> Router {
        Router::new()
            .route("/faults", get(read::<T>).put(write::<T>))
            .with_state(self.clone())
    }
}

async fn read<T: FaultSettings>(State(faults): State<Faults<T>>) -> Json<T> {
    Json(faults.current())
}

async fn write<T: FaultSettings>(
    State(faults): State<Faults<T>>,
    ApiJson(new): ApiJson<T>,
) -> Result<Json<T>, ApiError> {
    new.validate().map_err(ApiError::bad_request)?;
    tracing::warn!(faults = %serde_json::to_string(&new).unwrap_or_default(), "faults changed");
    faults.set(new.clone());
    Ok(Json(new))
}

/// Parses an optional variable with `parse`, naming it in the error.
pub fn env_value<V>(
    lookup: &dyn Fn(&str) -> Option<String>,
    variable: &str,
    expected: &str,
    parse: impl Fn(&str) -> Option<V>,
) -> Result<Option<V>, ConfigError> {
    match lookup(variable) {
        None => Ok(None),
        Some(raw) => parse(raw.trim())
            .map(Some)
            .ok_or_else(|| ConfigError::new(variable, &raw, format!("expected {expected}"))),
    }
}

/// `true`/`false`.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}
