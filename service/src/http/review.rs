//! The QA loop over HTTP: every classified comment is handed to the prediction log ([`log_classified`], called by
//! the classify paths), reviewers correct predictions (`POST /v1/feedback`), and the review page reads the queue
//! of uncertain predictions (`GET /v1/review/queue`) and the dashboard figures (`GET /v1/review/stats`). All three
//! endpoints need the API key; without a prediction log (`--db none`) they answer `store_disabled`.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, FixedOffset, NaiveDate};
use models::Prediction;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::admin::authorize;
use super::classify::{MAX_TAG_CHARS, json_response};
use super::error::{ApiError, ErrorCode};
use super::json::{parse, read_json_body};
use super::state::{AppState, ServedModel};
use super::wire::{ClassifyRequest, RouteAnswer, timestamp};
use crate::store::{
    Correction, LoggedPrediction, LoggedRoute, NewCorrection, PredictionLog, QueueFilter,
    StoreError, StoredHead,
};

/// Items in a queue page when the request does not say.
pub const DEFAULT_QUEUE_LIMIT: u32 = 50;
/// Most items in a queue page.
pub const MAX_QUEUE_LIMIT: u32 = 500;
/// Longest reviewer's note, in characters.
pub const MAX_NOTE_CHARS: usize = 2_000;

/// Hands a classified comment to the prediction log, when the server keeps one, and returns the id the answer
/// carries: the request's, or a new one when it sent none (so that feedback can name it). Takes the text out of
/// the request: nothing after this needs it. Costs a copy of the prediction; the writing happens on the log's
/// own thread.
pub fn log_classified(
    state: &AppState,
    served: &ServedModel,
    request: &mut ClassifyRequest,
    received_at: DateTime<FixedOffset>,
    prediction: &Prediction,
    route: Option<&RouteAnswer>,
) -> Option<String> {
    let Some(log) = state.prediction_log() else {
        return request.id.take();
    };
    let id = request.id.take().unwrap_or_else(|| log.new_id());
    log.record(LoggedPrediction {
        id: id.clone(),
        received_at: timestamp(received_at),
        channel: request.channel.clone(),
        client_type: request.client_type.take(),
        text: std::mem::take(&mut request.text),
        model: served.id().to_string(),
        heads: prediction.heads.clone(),
        route: route.map(|route| LoggedRoute {
            area: route.area.clone(),
            delegate_queue: route.delegate_queue.clone(),
            due_at: route.due_at.clone(),
            priority: route.priority.to_string(),
            escalate: route.escalate,
            human_review: route.human_review,
        }),
    });
    Some(id)
}

fn prediction_log(state: &AppState) -> Result<&PredictionLog, ApiError> {
    state.prediction_log().ok_or_else(|| {
        ApiError::new(
            ErrorCode::StoreDisabled,
            "the server keeps no prediction log: start it with --db PATH (or without --db none)",
        )
    })
}

fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::UnknownId(_) => ApiError::new(ErrorCode::UnknownId, error.to_string()),
        StoreError::UnknownHead { .. } => ApiError::new(ErrorCode::UnknownHead, error.to_string()),
        StoreError::WriterStopped => {
            ApiError::new(ErrorCode::ShuttingDown, "the server is shutting down")
        }
        other => {
            tracing::error!("the QA store failed: {other}");
            ApiError::new(
                ErrorCode::Internal,
                "the QA store failed; the cause is logged",
            )
        }
    }
}

/// `POST /v1/feedback`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    /// Id of the classified comment (as answered by the classify endpoints).
    pub id: String,
    /// Head corrected.
    pub head: String,
    /// The right label for that head.
    pub correct_label: String,
    /// Who reviewed.
    pub reviewer: String,
    /// Why, optionally.
    #[serde(default)]
    pub note: Option<String>,
}

/// The answer of `POST /v1/feedback` (status 201).
#[derive(Debug, Serialize)]
pub struct FeedbackResponse<'a> {
    /// Number of the stored correction.
    pub feedback_id: i64,
    /// Prediction id.
    pub id: &'a str,
    /// Head corrected.
    pub head: &'a str,
    /// The head's label in the logged prediction.
    pub predicted_label: &'a str,
    /// The label given.
    pub correct_label: &'a str,
    /// The reviewer confirmed the prediction.
    pub agrees: bool,
    /// Who reviewed.
    pub reviewer: &'a str,
    /// The note, masked.
    pub note: Option<&'a str>,
    /// When it was stored, RFC 3339.
    pub created_at: &'a str,
}

fn check_length(name: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("{name} is longer than {max} characters"),
        ));
    }
    Ok(())
}

fn model_head<'a>(
    served: &'a ServedModel,
    head: &str,
) -> Result<&'a models::classifier::Head, ApiError> {
    served
        .model
        .linear
        .heads
        .iter()
        .find(|h| h.name == head)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::UnknownHead,
                format!(
                    "unknown head {head:?}; the model's heads are {}",
                    served.head_names().join(", ")
                ),
            )
        })
}

/// `POST /v1/feedback`: stores a correction; answers 201 once it is committed.
pub async fn feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let log = prediction_log(&state)?;
    let bytes = read_json_body(&headers, body, state.limits().max_body_bytes).await?;
    let request: FeedbackRequest = parse(&bytes)?;
    let id = request.id.trim();
    if id.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidValue, "id is empty"));
    }
    check_length("id", id, MAX_TAG_CHARS)?;
    let reviewer = request.reviewer.trim();
    if reviewer.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidValue, "reviewer is empty"));
    }
    check_length("reviewer", reviewer, MAX_TAG_CHARS)?;
    let note = request
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if let Some(note) = note {
        check_length("note", note, MAX_NOTE_CHARS)?;
    }
    let served = state.model();
    let head = model_head(&served, &request.head)?;
    // Labels are ids; spelling variants (case, accents, spaces) of one are accepted as that id.
    let wanted = datasets::normalize_label(&request.correct_label);
    let Some(label) = head
        .labels
        .iter()
        .find(|l| **l == request.correct_label || datasets::normalize_label(l) == wanted)
    else {
        return Err(ApiError::new(
            ErrorCode::UnknownLabel,
            format!(
                "{:?} is not a label of head {}: {}",
                request.correct_label,
                head.name,
                head.labels.join(", ")
            ),
        ));
    };
    let stored = log
        .add_correction(NewCorrection {
            id: id.to_string(),
            head: head.name.clone(),
            correct_label: label.clone(),
            reviewer: reviewer.to_string(),
            note: note.map(str::to_string),
        })
        .await
        .map_err(store_error)?;
    let mut response = json_response(&FeedbackResponse {
        feedback_id: stored.feedback_id,
        id: &stored.id,
        head: &stored.head,
        predicted_label: &stored.predicted_label,
        correct_label: &stored.correct_label,
        agrees: stored.agrees,
        reviewer: &stored.reviewer,
        note: stored.note.as_deref(),
        created_at: &stored.created_at,
    });
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// The query of `GET /v1/review/queue`; empty values count as absent (an HTML form sends them).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    /// Only this head (ordered by its margin; left out once corrected).
    #[serde(default)]
    pub head: Option<String>,
    /// Only this label (on `head`, or on any head).
    #[serde(default)]
    pub label: Option<String>,
    /// Only this area.
    #[serde(default)]
    pub area: Option<String>,
    /// Received on or after, YYYY-MM-DD.
    #[serde(default)]
    pub from: Option<String>,
    /// Received on or before, YYYY-MM-DD.
    #[serde(default)]
    pub to: Option<String>,
    /// Items per page (1 to 500, default 50).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Items skipped.
    #[serde(default)]
    pub offset: Option<u64>,
}

fn present(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn date(name: &str, value: Option<String>) -> Result<Option<NaiveDate>, ApiError> {
    present(value)
        .map(|v| {
            NaiveDate::parse_from_str(&v, "%Y-%m-%d").map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidValue,
                    format!("{name} must be a date like 2026-03-02"),
                )
            })
        })
        .transpose()
}

fn query_error(rejection: QueryRejection) -> ApiError {
    let text = rejection.body_text();
    let code = if text.contains("unknown field") {
        ErrorCode::UnknownField
    } else {
        ErrorCode::InvalidValue
    };
    ApiError::new(code, models::routing::mask(&text).text)
}

/// A head's answer in the queue, as the classify endpoints give it.
#[derive(Debug, Serialize)]
struct QueueHead<'a> {
    label: &'a str,
    confidence: f32,
    top_k: Vec<LabelProbability<'a>>,
    needs_review: bool,
    explanation: Vec<NgramWeight<'a>>,
}

#[derive(Debug, Serialize)]
struct LabelProbability<'a> {
    label: &'a str,
    probability: f32,
}

#[derive(Debug, Serialize)]
struct NgramWeight<'a> {
    ngram: &'a str,
    weight: f32,
}

/// Heads by name, in model order.
struct QueueHeads<'a>(&'a [StoredHead]);

impl Serialize for QueueHeads<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for head in self.0 {
            // Stored as f64 from f32: back to f32 so that 0.91 reads 0.91.
            map.serialize_entry(
                &head.head,
                &QueueHead {
                    label: &head.label,
                    confidence: head.confidence as f32,
                    top_k: head
                        .top_k
                        .iter()
                        .map(|s| LabelProbability {
                            label: &s.label,
                            probability: s.probability as f32,
                        })
                        .collect(),
                    needs_review: head.needs_review,
                    explanation: head
                        .explanation
                        .iter()
                        .map(|e| NgramWeight {
                            ngram: &e.ngram,
                            weight: e.weight as f32,
                        })
                        .collect(),
                },
            )?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct CorrectionAnswer<'a> {
    feedback_id: i64,
    head: &'a str,
    predicted_label: &'a str,
    correct_label: &'a str,
    agrees: bool,
    reviewer: &'a str,
    note: Option<&'a str>,
    created_at: &'a str,
}

impl<'a> From<&'a Correction> for CorrectionAnswer<'a> {
    fn from(c: &'a Correction) -> Self {
        Self {
            feedback_id: c.feedback_id,
            head: &c.head,
            predicted_label: &c.predicted_label,
            correct_label: &c.correct_label,
            agrees: c.agrees,
            reviewer: &c.reviewer,
            note: c.note.as_deref(),
            created_at: &c.created_at,
        }
    }
}

#[derive(Serialize)]
struct QueueItemAnswer<'a> {
    id: &'a str,
    received_at: &'a str,
    channel: Option<&'a str>,
    text: &'a str,
    model: &'a str,
    uncertainty: f32,
    heads: QueueHeads<'a>,
    route: &'a Option<serde_json::Value>,
    corrections: Vec<CorrectionAnswer<'a>>,
}

#[derive(Serialize)]
struct QueueAnswer<'a> {
    items: Vec<QueueItemAnswer<'a>>,
    total: u64,
}

/// `GET /v1/review/queue`: predictions not yet corrected on every head (or on `head`), most uncertain first.
pub async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let log = prediction_log(&state)?;
    let Query(query) = query.map_err(query_error)?;
    let limit = query.limit.unwrap_or(DEFAULT_QUEUE_LIMIT);
    if !(1..=MAX_QUEUE_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("limit must be between 1 and {MAX_QUEUE_LIMIT}, got {limit}"),
        ));
    }
    let head = present(query.head);
    if let Some(head) = &head {
        model_head(&state.model(), head)?;
    }
    let filter = QueueFilter {
        head,
        label: present(query.label),
        area: present(query.area),
        from: date("from", query.from)?,
        to: date("to", query.to)?,
        limit,
        offset: query.offset.unwrap_or(0),
    };
    let page = log.queue(filter).await.map_err(store_error)?;
    Ok(json_response(&QueueAnswer {
        items: page
            .items
            .iter()
            .map(|item| QueueItemAnswer {
                id: &item.id,
                received_at: &item.received_at,
                channel: item.channel.as_deref(),
                text: &item.text,
                model: &item.model,
                uncertainty: item.uncertainty as f32,
                heads: QueueHeads(&item.heads),
                route: &item.route,
                corrections: item
                    .corrections
                    .iter()
                    .map(CorrectionAnswer::from)
                    .collect(),
            })
            .collect(),
        total: page.total,
    }))
}

#[derive(Serialize)]
struct DayCount<'a> {
    day: &'a str,
    count: u64,
}

#[derive(Serialize)]
struct Agreement {
    reviewed: u64,
    agreed: u64,
    /// `agreed / reviewed`, or null before the first review.
    rate: Option<f64>,
}

#[derive(Serialize)]
struct StatsAnswer<'a> {
    corrections_per_day: Vec<DayCount<'a>>,
    agreement: serde_json::Map<String, serde_json::Value>,
    predictions_logged: u64,
    pending_review: u64,
}

/// `GET /v1/review/stats`: corrections per day, agreement per head, predictions logged and pending review.
pub async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let log = prediction_log(&state)?;
    let stats = log.stats().await.map_err(store_error)?;
    // Every head of the served model is listed, reviewed or not, so the dashboard has a row for each.
    let mut agreement = serde_json::Map::new();
    for head in state.model().head_names() {
        agreement.insert(head.to_string(), agreement_json(0, 0));
    }
    for head in &stats.agreement {
        agreement.insert(
            head.head.clone(),
            agreement_json(head.reviewed, head.agreed),
        );
    }
    Ok(json_response(&StatsAnswer {
        corrections_per_day: stats
            .corrections_per_day
            .iter()
            .map(|(day, count)| DayCount { day, count: *count })
            .collect(),
        agreement,
        predictions_logged: stats.predictions_logged,
        pending_review: stats.pending_review,
    }))
}

fn agreement_json(reviewed: u64, agreed: u64) -> serde_json::Value {
    serde_json::to_value(Agreement {
        reviewed,
        agreed,
        rate: (reviewed > 0).then(|| agreed as f64 / reviewed as f64),
    })
    .expect("numbers serialise")
}
