//! The HTTP API of `pqrs serve`, built on axum.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/classify` | one comment: per-head labels, confidence, top-k, review flag, explanation, the route |
//! | `POST /v1/classify/batch` | up to `max_batch_items` comments; a bad item gets its own error |
//! | `POST /v1/classify/stream` | NDJSON in, NDJSON out, any length, with backpressure |
//! | `GET /v1/model` | model id, heads, labels, training metrics |
//! | `POST /v1/admin/reload` | hot reload (API key) |
//! | `POST /v1/feedback` | a reviewer's correction of a logged prediction (API key) |
//! | `GET /v1/review/queue` | logged predictions to review, most uncertain first (API key) |
//! | `GET /v1/review/stats` | corrections per day, agreement per head (API key) |
//! | `GET /healthz`, `GET /readyz` | liveness and readiness |
//! | `GET /metrics` | Prometheus |
//! | `GET /openapi.json` | OpenAPI 3.1 of all of it |
//! | `GET /review` | the review page for QA staff (HTML, see [`review_page`]) |
//!
//! [`app`] builds the router from an [`AppState`]; [`server::run`] binds, serves, reloads on SIGHUP and shuts down
//! gracefully. Wire types live in [`wire`] and are converted by hand from the domain types.

pub mod admin;
pub mod cascade;
pub mod classify;
pub mod config;
pub mod error;
pub mod json;
pub mod observe;
pub mod openapi;
pub mod review;
pub mod review_page;
pub mod server;
pub mod state;
pub mod wire;

use std::any::Any;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use config::{Limits, ServeConfig};
pub use error::{ApiError, ErrorCode};
pub use state::{ApiKey, AppState, ServedModel};

/// Every route of the API with its method, as served and as documented in `/openapi.json`.
pub const ROUTES: [(&str, &str); 12] = [
    ("POST", "/v1/classify"),
    ("POST", "/v1/classify/batch"),
    ("POST", "/v1/classify/stream"),
    ("GET", "/v1/model"),
    ("POST", "/v1/admin/reload"),
    ("POST", "/v1/feedback"),
    ("GET", "/v1/review/queue"),
    ("GET", "/v1/review/stats"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
];

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    // The panic message could quote a comment, so it is masked before it is logged.
    tracing::error!("handler panicked: {}", models::routing::mask(&detail).text);
    ApiError::new(ErrorCode::Internal, "internal error").into_response()
}

/// Builds the application: routes, request limits, metrics, request ids and tracing.
pub fn app(state: AppState) -> Router {
    // Only the work routes are guarded by the concurrency limit and timeout: probes and scrapes must answer even
    // when the server is saturated.
    let guarded = Router::new()
        .route("/v1/classify", post(classify::classify))
        .route("/v1/classify/batch", post(classify::classify_batch))
        .route("/v1/classify/stream", post(classify::classify_stream))
        .route("/v1/admin/reload", post(admin::reload))
        .route("/v1/feedback", post(review::feedback))
        .route("/v1/review/queue", get(review::queue))
        .route("/v1/review/stats", get(review::stats))
        .route_layer(from_fn_with_state(state.clone(), observe::guard));
    Router::new()
        .merge(guarded)
        .route("/v1/model", get(admin::model_info))
        .route("/healthz", get(admin::healthz))
        .route("/readyz", get(admin::readyz))
        .route("/metrics", get(admin::metrics))
        .route("/openapi.json", get(admin::openapi_json))
        .merge(review_page::routes())
        .fallback(admin::not_found)
        .method_not_allowed_fallback(admin::method_not_allowed)
        // Bodies are read and limited by `json`, per route, with JSON errors.
        .layer(DefaultBodyLimit::disable())
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn(observe::record))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    // The path only: a query string could carry anything.
                    tracing::info_span!(
                        "request",
                        id,
                        method = %request.method(),
                        path = request.uri().path(),
                    )
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
