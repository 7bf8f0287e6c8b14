//! [`TempoClient`]: reads traces and search results from any Tempo-compatible API, this
//! store's or a real Tempo's.

use std::time::Duration;

use url::Url;

use crate::{
    StoredLog, StoredSpan,
    tempo::{SearchHit, SearchResponse, TempoJsonError, TraceJson, from_tempo_json},
};

/// Why a call to the Tempo API failed.
#[derive(Debug, thiserror::Error)]
pub enum TempoError {
    /// The base URL is not an http(s) URL.
    #[error("invalid Tempo URL {0:?}")]
    BadUrl(String),
    /// No answer.
    #[error("Tempo at {url} unreachable: {source}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// An answer other than 200 (or 404 for a trace).
    #[error("Tempo answered {status}: {body}")]
    Status {
        /// Its status.
        status: reqwest::StatusCode,
        /// The start of its body.
        body: String,
    },
    /// A body that is not Tempo's JSON.
    #[error("unreadable answer from Tempo: {0}")]
    Json(String),
}

impl From<TempoJsonError> for TempoError {
    fn from(e: TempoJsonError) -> Self {
        Self::Json(e.to_string())
    }
}

/// The filters of a search. `Default` is every trace, up to Tempo's default limit.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// `key=value` tags, all of which must match.
    pub tags: Vec<(String, String)>,
    /// Only traces at least this long.
    pub min_duration: Option<Duration>,
    /// At most this many hits.
    pub limit: Option<usize>,
    /// Only traces that started at or after this Unix second.
    pub start: Option<u64>,
    /// Only traces that started at or before this Unix second.
    pub end: Option<u64>,
}

/// A client for Tempo's HTTP API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TempoClient {
    base: Url,
    http: reqwest::Client,
}

impl TempoClient {
    /// A client for the API at `base` (e.g. `http://localhost:3200`), every call timing out
    /// after 10 s.
    pub fn new(base: &str) -> Result<Self, TempoError> {
        let base = Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| TempoError::BadUrl(base.to_owned()))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| TempoError::Json(e.to_string()))?;
        Ok(Self { base, http })
    }

    /// The base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The spans of trace `id` (hex), or `None` if the API does not know it.
    pub async fn trace(&self, id: &str) -> Result<Option<Vec<StoredSpan>>, TempoError> {
        let url = self.url(&["api", "traces", id]);
        let response = self.get(url, &[]).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let trace: TraceJson = read_json(response).await?;
        Ok(Some(from_tempo_json(trace)?))
    }

    /// The log lines of trace `id`, from this store's `/api/logs/{id}`; `None` from an API that
    /// has no such route (a real Tempo: there the lines are in Loki).
    pub async fn logs(&self, id: &str) -> Result<Option<Vec<StoredLog>>, TempoError> {
        #[derive(serde::Deserialize)]
        struct Logs {
            logs: Vec<StoredLog>,
        }
        let url = self.url(&["api", "logs", id]);
        let response = self.get(url, &[]).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let logs: Logs = read_json(response).await?;
        Ok(Some(logs.logs))
    }

    /// Polls until trace `id` holds at least `count` spans or `timeout` passes; returns what
    /// it has then. A backend takes a moment to make spans queryable.
    pub async fn wait_for_trace(
        &self,
        id: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<StoredSpan>, TempoError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let spans = self.trace(id).await?.unwrap_or_default();
            if spans.len() >= count || tokio::time::Instant::now() >= deadline {
                return Ok(spans);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Traces matching `search`, most recent first.
    pub async fn search(&self, search: &Search) -> Result<Vec<SearchHit>, TempoError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if !search.tags.is_empty() {
            let tags = search
                .tags
                .iter()
                .map(|(k, v)| {
                    if v.contains(' ') {
                        format!("{k}=\"{v}\"")
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            query.push(("tags", tags));
        }
        if let Some(min) = search.min_duration {
            query.push(("minDuration", format!("{}ms", min.as_millis())));
        }
        if let Some(limit) = search.limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(start) = search.start {
            query.push(("start", start.to_string()));
        }
        if let Some(end) = search.end {
            query.push(("end", end.to_string()));
        }
        let response = self.get(self.url(&["api", "search"]), &query).await?;
        let found: SearchResponse = read_json(response).await?;
        Ok(found.traces)
    }

    /// Whether `GET /ready` answers 200.
    pub async fn ready(&self) -> bool {
        let url = self.url(&["ready"]);
        self.get(url, &[])
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn get(
        &self,
        mut url: Url,
        query: &[(&str, String)],
    ) -> Result<reqwest::Response, TempoError> {
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.http
            .get(url.clone())
            .send()
            .await
            .map_err(|source| TempoError::Unreachable {
                url: url.to_string(),
                source,
            })
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, TempoError> {
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| TempoError::Json(e.to_string()))?;
    if !status.is_success() {
        return Err(TempoError::Status {
            status,
            body: body.chars().take(300).collect(),
        });
    }
    serde_json::from_str(&body).map_err(|e| TempoError::Json(e.to_string()))
}
