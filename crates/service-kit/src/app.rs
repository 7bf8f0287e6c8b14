//! The layers every service router gets.

use std::{any::Any, sync::Arc};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use crate::ApiError;

/// Largest request body accepted; more is a 413 with a JSON error. Every request in this
/// system is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Finishes a service's router: JSON 404/405 for unknown routes, a body limit, panics turned
/// into a JSON 500 (inside the SERVER span, so they show as ERROR in the trace), the SERVER span
/// and `X-Trace-Id` from [`telemetry::TracedLayer`], a count of requests for [`crate::memory`], and
/// untraced `GET /health`, `GET /metrics` and
/// `GET /openapi.json` (the description utoipa generates from the handlers' types).
pub fn api<S>(routes: Router<S>, openapi: utoipa::openapi::OpenApi) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let openapi = Arc::new(openapi);
    let routes = routes
        .fallback(|| async { ApiError::not_found("No such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
        })
        // One `Router::layer`, outermost first: axum boxes a route once a `layer` call and
        // clones every box for every request (BENCHMARKS.md, twelfth round).
        .layer(
            ServiceBuilder::new()
                .layer(telemetry::TracedLayer)
                .map_request(counted)
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        );
    routes
        .route("/health", get(health))
        .route("/metrics", get(telemetry::metrics_handler))
        .route("/openapi.json", get(move || describe(openapi.clone())))
}

/// `GET /openapi.json`. The document is shared, not owned by the handler: axum clones every
/// route's handler for each connection it accepts, so a handler owning the document
/// deep-copied it, in hundreds of small allocations, per connection: under load these copies
/// were most of inventory-service's heap (heaptrack), and the freed ones stayed in the
/// allocator's arenas (`system-tests/tests/connections_share_the_openapi_document.rs`).
async fn describe(openapi: Arc<utoipa::openapi::OpenApi>) -> Response {
    axum::Json(&*openapi).into_response()
}

/// Counts the request for [`crate::memory`], which gives memory back once requests stop.
fn counted<B>(request: axum::http::Request<B>) -> axum::http::Request<B> {
    crate::memory::count_request();
    request
}

async fn health() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error").into_response()
}
