//! The endpoints around classification: model facts, health, readiness, metrics, the OpenAPI document, the
//! API-key check and hot reload, and the JSON answers for unknown routes and methods.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::classify::json_response;
use super::error::{ApiError, ErrorCode};
use super::json::{parse, read_optional_json_body};
use super::observe;
use super::openapi;
use super::state::AppState;
use super::wire::{
    HeadInfo, LineageInfo, ModelResponse, ReloadRequest, ReloadResponse, StatusResponse,
    TaxonomyInfo, TrainingInfo,
};

/// Checks `Authorization: Bearer KEY` against the configured key. Without a configured key the admin endpoints are
/// disabled (403), so that a server started without thinking about keys cannot be reconfigured by anyone.
pub fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = state.api_key() else {
        return Err(ApiError::new(
            ErrorCode::AdminDisabled,
            "admin endpoints are disabled: start the server with --api-key or PQRS_API_KEY",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match presented {
        Some(token) if key.verify(token) => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the API key is wrong",
        )),
        None => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "send the API key as Authorization: Bearer KEY",
        )),
    }
}

/// `POST /v1/admin/reload`: body empty or `{"path": "..."}`.
pub async fn reload(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let request =
        match read_optional_json_body(&headers, body, state.limits().max_body_bytes).await? {
            Some(bytes) => parse::<ReloadRequest>(&bytes)?,
            None => ReloadRequest::default(),
        };
    let path = match request.path {
        Some(path) if path.trim().is_empty() => {
            return Err(ApiError::new(ErrorCode::InvalidValue, "path is empty"));
        }
        Some(path) => Some(PathBuf::from(path)),
        None => None,
    };
    let reloaded = state.reload(path).await?;
    Ok(json_response(&ReloadResponse {
        previous: reloaded.previous,
        model: reloaded.current,
        path: reloaded.path.display().to_string(),
    }))
}

fn count(value: &serde_json::Value, key: &str) -> Option<u64> {
    value.get(key).and_then(serde_json::Value::as_u64)
}

/// `GET /v1/model`.
pub async fn model_info(State(state): State<AppState>) -> Response {
    let served = state.model();
    let linear = &served.model.linear;
    let info = &served.model.info;
    let heads = linear
        .heads
        .iter()
        .map(|head| HeadInfo {
            name: head.name.clone(),
            labels: head.labels.clone(),
            parent: head
                .parent
                .as_ref()
                .map(|link| linear.heads[link.head].name.clone()),
        })
        .collect();
    json_response(&ModelResponse {
        id: served.id().to_string(),
        pqrs_version: info.pqrs_version.clone(),
        created_at: info.created_at.clone(),
        heads,
        taxonomy: info.taxonomy.as_ref().map(|t| TaxonomyInfo {
            id: t.id.clone(),
            name: t.name.clone(),
            version: t.version,
        }),
        routing: served.rules.is_some(),
        metrics: info
            .training
            .get("validation")
            .cloned()
            .unwrap_or(serde_json::Value::Null),
        training: TrainingInfo {
            n_comments: count(&info.training, "n_comments"),
            n_fit: count(&info.training, "n_fit"),
            n_validation: count(&info.training, "n_validation"),
        },
        lineage: info.lineage.as_ref().map(|l| LineageInfo {
            parent: l.parent.clone(),
            feedback: l.feedback,
            promoted: l.promoted,
            forced: l.forced,
            reason: l.reason.clone(),
            comparison: l.comparison.clone(),
        }),
    })
}

/// `GET /healthz`: the process answers.
pub async fn healthz(State(state): State<AppState>) -> Response {
    json_response(&StatusResponse {
        status: "ok",
        model: state.model().id().to_string(),
    })
}

/// `GET /readyz`: a model is loaded and the server is not shutting down.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let model = state.model().id().to_string();
    if state.is_draining() {
        let mut response = json_response(&StatusResponse {
            status: "shutting_down",
            model,
        });
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        return response;
    }
    json_response(&StatusResponse {
        status: "ready",
        model,
    })
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        observe::render(&state),
    )
        .into_response()
}

/// `GET /openapi.json`.
pub async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        openapi::bytes(),
    )
        .into_response()
}

/// Any unknown route.
pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route; see /openapi.json")
}

/// A known route with a method it does not accept.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not accept this method; see /openapi.json",
    )
}
