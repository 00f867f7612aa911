//! Metrics (Prometheus text through `metrics-exporter-prometheus`) and the middleware that counts requests, times
//! them, and bounds how many run at once and for how long.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::http::Method;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::error::{ApiError, ErrorCode};
use super::state::{AppState, ServedModel};

const REQUESTS: &str = "pqrs_http_requests_total";
const LATENCY: &str = "pqrs_http_request_duration_seconds";
const PREDICTIONS: &str = "pqrs_predictions_total";
const REVIEWS: &str = "pqrs_head_needs_review_total";
const CLASSIFIED: &str = "pqrs_classifications_total";
const CLASSIFIED_FOR_REVIEW: &str = "pqrs_classifications_needs_review_total";
const REVIEW_RATIO: &str = "pqrs_needs_review_ratio";
const MODEL_INFO: &str = "pqrs_model_info";
const RELOADS: &str = "pqrs_model_reloads_total";
const REJECTED: &str = "pqrs_http_rejected_total";
const TIERS: &str = "pqrs_cascade_answers_total";

/// Latency buckets in seconds: classification takes microseconds, so the buckets start at 50 µs.
const LATENCY_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once. Metrics are process-wide by design of the `metrics` crate,
/// so several applications in one process (tests) share it.
pub(crate) fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(LATENCY.into()), &LATENCY_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_counter!(REQUESTS, "HTTP requests by route, method and status.");
    metrics::describe_histogram!(
        LATENCY,
        metrics::Unit::Seconds,
        "HTTP request latency by route, method and status."
    );
    metrics::describe_counter!(PREDICTIONS, "Predicted labels by head and label.");
    metrics::describe_counter!(REVIEWS, "Answers a head flagged for human review, by head.");
    metrics::describe_counter!(CLASSIFIED, "Comments classified.");
    metrics::describe_counter!(
        CLASSIFIED_FOR_REVIEW,
        "Comments classified with at least one head asking for review."
    );
    metrics::describe_gauge!(
        REVIEW_RATIO,
        "Share of comments since start with at least one head asking for review."
    );
    metrics::describe_gauge!(
        MODEL_INFO,
        "1 for the served model (labels: id, pqrs_version, created_at)."
    );
    metrics::describe_counter!(RELOADS, "Model reloads by result (ok, refused).");
    metrics::describe_counter!(REJECTED, "Requests refused before running, by reason.");
    metrics::describe_counter!(
        TIERS,
        "Comments answered with a deep tier loaded, by the tier that answered (fast, deep, degraded)."
    );
}

/// The Prometheus text of every metric.
pub(crate) fn render(state: &AppState) -> String {
    let handle = install();
    if let Some(ratio) = state.needs_review_ratio() {
        metrics::gauge!(REVIEW_RATIO).set(ratio);
    }
    handle.run_upkeep();
    handle.render()
}

/// Drains histogram samples into their buckets, so memory stays bounded between scrapes.
pub(crate) fn upkeep() {
    install().run_upkeep();
}

pub(crate) fn prediction_counter(head: &str, label: &str) -> metrics::Counter {
    metrics::counter!(PREDICTIONS, "head" => head.to_string(), "label" => label.to_string())
}

pub(crate) fn review_counter(head: &str) -> metrics::Counter {
    metrics::counter!(REVIEWS, "head" => head.to_string())
}

/// The counters of every classification, registered once: looking a metric up by name on every request costs
/// more than counting it.
struct ClassifiedCounters {
    all: metrics::Counter,
    for_review: metrics::Counter,
}

static CLASSIFIED_COUNTERS: OnceLock<ClassifiedCounters> = OnceLock::new();

pub(crate) fn classified(state: &AppState, flagged_for_review: bool) {
    let counters = CLASSIFIED_COUNTERS.get_or_init(|| {
        install();
        ClassifiedCounters {
            all: metrics::counter!(CLASSIFIED),
            for_review: metrics::counter!(CLASSIFIED_FOR_REVIEW),
        }
    });
    counters.all.increment(1);
    if flagged_for_review {
        counters.for_review.increment(1);
    }
    state.count_classified(flagged_for_review);
}

fn model_labels(model: &ServedModel) -> [(&'static str, String); 3] {
    [
        ("id", model.id().to_string()),
        ("pqrs_version", model.model.info.pqrs_version.clone()),
        ("created_at", model.model.info.created_at.clone()),
    ]
}

pub(crate) fn model_loaded(previous: Option<&ServedModel>, current: &ServedModel) {
    if let Some(previous) = previous {
        metrics::gauge!(MODEL_INFO, &model_labels(previous)).set(0.0);
    }
    metrics::gauge!(MODEL_INFO, &model_labels(current)).set(1.0);
}

/// Counts which tier answered a comment when the cascade is on.
pub(crate) fn tier(tier: super::cascade::Tier) {
    let name = match tier {
        super::cascade::Tier::Fast => "fast",
        super::cascade::Tier::Deep => "deep",
        super::cascade::Tier::Degraded => "degraded",
    };
    metrics::counter!(TIERS, "tier" => name).increment(1);
}

pub(crate) fn reload_result(ok: bool) {
    metrics::counter!(RELOADS, "result" => if ok { "ok" } else { "refused" }).increment(1);
}

/// The request counter and latency histogram of one (route, method, status).
struct RequestMetrics {
    count: metrics::Counter,
    latency: metrics::Histogram,
}

impl RequestMetrics {
    fn register(route: &str, method: &Method, status: u16) -> Self {
        let labels = [
            ("route", route.to_string()),
            ("method", method.as_str().to_string()),
            ("status", status.to_string()),
        ];
        Self {
            count: metrics::counter!(REQUESTS, &labels),
            latency: metrics::histogram!(LATENCY, &labels),
        }
    }
}

/// Handles seen by one runtime thread, so that most requests neither allocate label strings nor search the
/// registry (one cache per thread: no lock shared between workers). Bounded, since a client chooses the method.
const CACHED_REQUEST_METRICS: usize = 256;

thread_local! {
    static REQUEST_METRICS: RefCell<HashMap<(usize, Method, u16), RequestMetrics>> =
        RefCell::new(HashMap::new());
}

/// Position of a route template in [`super::ROUTES`] (`ROUTES.len()` for no route), or `None` for a template
/// missing from that table, whose metrics are then registered on each request.
fn route_index(route: Option<&str>) -> Option<usize> {
    match route {
        None => Some(super::ROUTES.len()),
        Some(route) => super::ROUTES.iter().position(|(_, path)| *path == route),
    }
}

/// Counts and times every request by its route template (never its raw path, which could carry anything).
pub(crate) async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let index = route_index(route);
    // Only a template missing from ROUTES needs its own copy; the others are named by their index.
    let unlisted = index
        .is_none()
        .then(|| route.unwrap_or("unmatched").to_string());
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    let count = |handles: &RequestMetrics| {
        handles.count.increment(1);
        handles.latency.record(elapsed);
    };
    match (index, unlisted) {
        (Some(index), _) => REQUEST_METRICS.with_borrow_mut(|cache| {
            let key = (index, method, status);
            if let Some(handles) = cache.get(&key) {
                count(handles);
                return;
            }
            let route = super::ROUTES
                .get(index)
                .map_or("unmatched", |(_, path)| path);
            let handles = RequestMetrics::register(route, &key.1, status);
            count(&handles);
            if cache.len() < CACHED_REQUEST_METRICS {
                cache.insert(key, handles);
            }
        }),
        (None, unlisted) => count(&RequestMetrics::register(
            unlisted.as_deref().unwrap_or("unmatched"),
            &method,
            status,
        )),
    }
    response
}

/// Bounds the requests of the classification routes: at most `max_concurrency` at once (more get 503 with
/// `Retry-After` at once instead of queueing, so latency stays bounded), at most `request_timeout` each, and none
/// once shutdown has begun. Streams are exempt from the timeout, since they may be any length, and hold their
/// permit until their answer ends.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.is_draining() {
        metrics::counter!(REJECTED, "reason" => "shutting_down").increment(1);
        return ApiError::new(ErrorCode::ShuttingDown, "the server is shutting down")
            .into_response();
    }
    let Ok(permit) = state.concurrency().clone().try_acquire_owned() else {
        metrics::counter!(REJECTED, "reason" => "overloaded").increment(1);
        return ApiError::new(
            ErrorCode::Overloaded,
            format!(
                "more than {} requests in flight; retry shortly",
                state.limits().max_concurrency
            ),
        )
        .into_response();
    };
    let is_stream = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| p.as_str().ends_with("/stream"));
    if is_stream {
        // A stream works while its body flows, after the handler has returned: the permit goes with the body.
        return next.run(request).await.map(|body| {
            Body::from_stream(body.into_data_stream().map(move |chunk| {
                let _held = &permit;
                chunk
            }))
        });
    }
    let timeout: Duration = state.limits().request_timeout;
    let outcome = tokio::time::timeout(timeout, next.run(request)).await;
    drop(permit);
    match outcome {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!(REJECTED, "reason" => "timeout").increment(1);
            ApiError::new(
                ErrorCode::RequestTimeout,
                format!("the request took longer than {} ms", timeout.as_millis()),
            )
            .into_response()
        }
    }
}
