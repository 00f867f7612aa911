//! The classification endpoints: one comment, a batch, and an NDJSON stream. A comment takes microseconds to
//! score, so single requests run inline on the runtime; batches and large stream chunks run on the blocking pool
//! so that they never hold a runtime worker for milliseconds.

use std::cell::RefCell;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, FixedOffset, Utc};
use futures_util::StreamExt;
use models::routing::{RouteInput, mask, route};
use models::{PredictOptions, Scratch};
use serde::Serialize;

use super::cascade::{DeepTier, Tier};
use super::error::{ApiError, ErrorCode};
use super::json::{json_error, not_an_object, parse, read_json_body};
use super::observe;
use super::state::{AppState, ServedModel};
use super::wire::{
    BatchRequest, BatchResponse, ClassifyRequest, ClassifyResponse, Heads, ItemAnswer, RouteAnswer,
    timestamp,
};

/// Labels in each head's top-k when the request does not say.
pub const DEFAULT_TOP_K: u32 = 3;
/// Most labels a request may ask for per head.
pub const MAX_TOP_K: u32 = 20;
/// Most n-grams an explanation may be configured to hold.
pub const MAX_EXPLAIN: usize = 20;
/// Longest `id`, `channel` or `client_type`, in characters.
pub const MAX_TAG_CHARS: usize = 256;
/// Items above which a batch or stream chunk is scored on the blocking pool instead of inline.
const INLINE_ITEMS: usize = 16;

thread_local! {
    // One set of scoring buffers per thread: scoring then allocates nothing once they have grown.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Colombia's offset, in which received and answer times are given.
pub fn colombia() -> FixedOffset {
    FixedOffset::west_opt(5 * 3600).expect("five hours is a valid offset")
}

/// The server time in Colombia.
pub fn now() -> DateTime<FixedOffset> {
    Utc::now().with_timezone(&colombia())
}

fn check_tag(name: &str, value: &Option<String>) -> Result<(), ApiError> {
    match value {
        Some(value) if value.chars().count() > MAX_TAG_CHARS => Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("{name} is longer than {MAX_TAG_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

/// What a valid request asks for, once checked.
struct Checked {
    options: PredictOptions,
    received_at: DateTime<FixedOffset>,
}

/// Checks a request against the limits. Never panics on any input.
fn check(
    state: &AppState,
    request: &ClassifyRequest,
    server_time: DateTime<FixedOffset>,
) -> Result<Checked, ApiError> {
    let max_chars = state.limits().max_text_chars;
    if request.text.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::EmptyText, "text is empty"));
    }
    // A byte count within the limit is a char count within it too; count chars only when it might matter.
    if request.text.len() > max_chars && request.text.chars().count() > max_chars {
        return Err(ApiError::new(
            ErrorCode::TextTooLong,
            format!("text is longer than {max_chars} characters"),
        ));
    }
    let top_k = request.top_k.unwrap_or(DEFAULT_TOP_K);
    if !(1..=MAX_TOP_K).contains(&top_k) {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("top_k must be between 1 and {MAX_TOP_K}, got {top_k}"),
        ));
    }
    check_tag("id", &request.id)?;
    check_tag("channel", &request.channel)?;
    check_tag("client_type", &request.client_type)?;
    let received_at = match &request.received_at {
        None => server_time,
        Some(value) => DateTime::parse_from_rfc3339(value).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidValue,
                format!("received_at must be RFC 3339 like 2026-03-02T09:30:00-05:00: {e}"),
            )
        })?,
    };
    Ok(Checked {
        options: PredictOptions {
            top_k: top_k as usize,
            explain: state.limits().explain_ngrams,
        },
        received_at,
    })
}

/// Checks and classifies one comment with the fast model of `served`. Never panics on any input.
pub fn classify_one(
    state: &AppState,
    served: &ServedModel,
    request: ClassifyRequest,
    server_time: DateTime<FixedOffset>,
) -> Result<ClassifyResponse, ApiError> {
    let checked = check(state, &request, server_time)?;
    let prediction = SCRATCH.with_borrow_mut(|scratch| {
        served
            .model
            .linear
            .predict(&request.text, checked.options, scratch)
    });
    Ok(respond(
        state,
        served,
        request,
        &checked,
        server_time,
        prediction,
        Tier::Fast,
    ))
}

/// The cascade for one comment: the fast answer when the fast model is sure of every head, else the deep tier's
/// (waiting for it on its own threads), or the fast answer marked degraded when the deep tier is busy.
async fn classify_cascade(
    state: &AppState,
    served: &ServedModel,
    deep: &DeepTier,
    request: ClassifyRequest,
    server_time: DateTime<FixedOffset>,
) -> Result<ClassifyResponse, ApiError> {
    let checked = check(state, &request, server_time)?;
    let (prediction, unsure) = SCRATCH.with_borrow_mut(|scratch| {
        let prediction = served
            .model
            .linear
            .predict(&request.text, checked.options, scratch);
        // `predict` leaves its probabilities and decoded labels in the scratch.
        let unsure = deep
            .wants(&scratch.probabilities, &scratch.chosen)
            .then(|| (scratch.probabilities.clone(), scratch.chosen.clone()));
        (prediction, unsure)
    });
    let (prediction, tier) = match unsure {
        None => (prediction, Tier::Fast),
        Some((fast_probabilities, fast_chosen)) => {
            match deep.answer(&request.text, &fast_probabilities).await {
                Some(deep_probabilities) => {
                    let mut answer = Vec::new();
                    deep.heads().cascade_probabilities(
                        &fast_probabilities,
                        &fast_chosen,
                        &deep_probabilities,
                        &mut answer,
                    );
                    (
                        deep_prediction(served, prediction, &answer, checked.options.top_k),
                        Tier::Deep,
                    )
                }
                None => (prediction, Tier::Degraded),
            }
        }
    };
    observe::tier(tier);
    Ok(respond(
        state,
        served,
        request,
        &checked,
        server_time,
        prediction,
        tier,
    ))
}

/// The fast prediction re-decided on the cascade's probabilities (the fused heads' on the heads the fast model
/// hesitated on, its own on the others): labels, confidences, top-k and review flags come from them, decoded with
/// the fast model's parent links so that theme stays inside area. The explanation stays the fast model's n-gram
/// evidence while the label is the same; for a label the deep tier changed, the n-grams did not support it, so
/// none is quoted.
fn deep_prediction(
    served: &ServedModel,
    fast: models::Prediction,
    probabilities: &[f32],
    top_k: usize,
) -> models::Prediction {
    let linear = &served.model.linear;
    let mut chosen = Vec::new();
    linear.decode(probabilities, &mut chosen);
    let mut at = 0;
    let heads = linear
        .heads
        .iter()
        .zip(fast.heads)
        .enumerate()
        .map(|(h, (head, fast))| {
            let probs = &probabilities[at..at + head.labels.len()];
            at += head.labels.len();
            let best = chosen[h];
            let mut order: Vec<usize> = (0..probs.len()).collect();
            order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
            let label = head.labels[best].clone();
            models::HeadPrediction {
                explanation: if label == fast.label {
                    fast.explanation
                } else {
                    Vec::new()
                },
                head: fast.head,
                confidence: probs[best],
                needs_review: probs[best] < head.thresholds[best],
                top_k: order
                    .iter()
                    .take(top_k.max(1))
                    .map(|&i| models::Scored {
                        label: head.labels[i].clone(),
                        probability: probs[i],
                    })
                    .collect(),
                label,
            }
        })
        .collect();
    models::Prediction { heads }
}

/// Routes, counts and logs a classified comment and builds its answer.
fn respond(
    state: &AppState,
    served: &ServedModel,
    mut request: ClassifyRequest,
    checked: &Checked,
    server_time: DateTime<FixedOffset>,
    prediction: models::Prediction,
    tier: Tier,
) -> ClassifyResponse {
    let received_at = checked.received_at;
    let needs_review = prediction.needs_review();
    count(state, served, &prediction);

    let route = match (&served.rules, &served.model.info.taxonomy) {
        (Some(rules), Some(taxonomy)) => {
            let mut input = RouteInput::new(&request.text, received_at, &prediction);
            input.client_type = request.client_type.as_deref();
            Some(RouteAnswer::from(route(taxonomy, rules, &input)))
        }
        _ => None,
    };
    if tracing::enabled!(tracing::Level::DEBUG) {
        // The comment may name people, documents and phones: only its masked form is ever logged.
        tracing::debug!(
            text = %mask(&request.text).text,
            channel = request.channel.as_deref().unwrap_or(""),
            needs_review,
            "classified"
        );
    }
    // Logged for QA review off the request path; a comment without an id gets one, so feedback can name it.
    let id = super::review::log_classified(
        state,
        served,
        &mut request,
        received_at,
        &prediction,
        route.as_ref(),
    );
    ClassifyResponse {
        id,
        channel: request.channel,
        model: served.id().to_string(),
        server_time: timestamp(server_time),
        received_at: timestamp(received_at),
        needs_review,
        tier,
        heads: Heads::from(prediction),
        route,
    }
}

fn count(state: &AppState, served: &ServedModel, prediction: &models::Prediction) {
    for (index, (head, answer)) in served
        .model
        .linear
        .heads
        .iter()
        .zip(&prediction.heads)
        .enumerate()
    {
        if let Some(label) = head.labels.iter().position(|l| *l == answer.label) {
            served.label_counters[index][label].increment(1);
        }
        if answer.needs_review {
            served.review_counters[index].increment(1);
        }
    }
    observe::classified(state, prediction.needs_review());
}

/// A JSON response with status 200.
pub fn json_response<T: Serialize>(value: &T) -> Response {
    // An answer with explanations is about 2 KiB: start there rather than grow from serde_json's default.
    let mut body = Vec::with_capacity(4096);
    serde_json::to_writer(&mut body, value).expect("wire types serialise to JSON without failing");
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// `POST /v1/classify`.
pub async fn classify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_json_body(&headers, body, state.limits().max_body_bytes).await?;
    let request: ClassifyRequest = parse(&bytes)?;
    let served = state.model();
    let answer = match state.deep_tier_for(&served) {
        Some(deep) => classify_cascade(&state, &served, deep, request, now()).await?,
        None => classify_one(&state, &served, request, now())?,
    };
    Ok(json_response(&answer))
}

fn classify_item(
    state: &AppState,
    served: &ServedModel,
    item: serde_json::Value,
    server_time: DateTime<FixedOffset>,
) -> Result<ClassifyResponse, ApiError> {
    if let serde_json::Value::Array(_) = item {
        return Err(not_an_object("an array"));
    }
    let request: ClassifyRequest = serde_json::from_value(item).map_err(|e| json_error(&e))?;
    classify_one(state, served, request, server_time)
}

/// `POST /v1/classify/batch`: every item is answered on its own; a bad item gets its error in place.
pub async fn classify_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limits = *state.limits();
    let bytes = read_json_body(&headers, body, limits.max_batch_body_bytes).await?;
    let batch: BatchRequest = parse(&bytes)?;
    drop(bytes);
    if batch.items.is_empty() {
        return Err(ApiError::new(ErrorCode::EmptyBatch, "items is empty"));
    }
    if batch.items.len() > limits.max_batch_items {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!(
                "the batch has {} items, at most {} are accepted",
                batch.items.len(),
                limits.max_batch_items
            ),
        ));
    }
    let served = state.model();
    let server_time = now();
    let score = move |state: AppState, served: Arc<ServedModel>, items: Vec<serde_json::Value>| {
        let outcomes = items
            .into_iter()
            .map(|item| classify_item(&state, &served, item, server_time))
            .collect();
        BatchResponse {
            model: served.id().to_string(),
            server_time: timestamp(server_time),
            outcomes,
        }
    };
    let answer = if batch.items.len() <= INLINE_ITEMS {
        score(state, served, batch.items)
    } else {
        tokio::task::spawn_blocking(move || score(state, served, batch.items))
            .await
            .map_err(|e| {
                tracing::error!("batch scoring failed: {e}");
                ApiError::new(ErrorCode::Internal, "the batch could not be scored")
            })?
    };
    Ok(json_response(&answer))
}

/// A line of a stream: its 0-based number and its bytes, or the fact that it was too long to keep.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Text { index: usize, bytes: Vec<u8> },
    TooLong { index: usize },
}

/// Splits a byte stream into lines of at most `max` bytes without holding more than one line; a longer line is
/// dropped as it arrives and reported once. Blank lines are counted but not reported.
#[derive(Debug)]
struct LineSplitter {
    partial: Vec<u8>,
    overflow: bool,
    next_index: usize,
    max: usize,
}

impl LineSplitter {
    fn new(max: usize) -> Self {
        Self {
            partial: Vec::new(),
            overflow: false,
            next_index: 0,
            max,
        }
    }

    fn push(&mut self, mut chunk: &[u8], lines: &mut Vec<Line>) {
        while let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            self.extend(&chunk[..end]);
            self.complete(lines);
            chunk = &chunk[end + 1..];
        }
        self.extend(chunk);
    }

    fn finish(&mut self, lines: &mut Vec<Line>) {
        if self.overflow || !self.partial.is_empty() {
            self.complete(lines);
        }
    }

    fn extend(&mut self, piece: &[u8]) {
        if self.overflow {
            return;
        }
        if self.partial.len() + piece.len() > self.max {
            self.overflow = true;
            self.partial = Vec::new();
        } else {
            self.partial.extend_from_slice(piece);
        }
    }

    fn complete(&mut self, lines: &mut Vec<Line>) {
        let index = self.next_index;
        self.next_index += 1;
        if std::mem::take(&mut self.overflow) {
            lines.push(Line::TooLong { index });
        } else if !self.partial.iter().all(u8::is_ascii_whitespace) {
            lines.push(Line::Text {
                index,
                bytes: self.partial.clone(),
            });
        }
        self.partial.clear();
    }
}

fn answer_lines(state: &AppState, served: &ServedModel, lines: Vec<Line>) -> Bytes {
    let server_time = now();
    let max_line_bytes = state.limits().max_line_bytes;
    let mut out = Vec::with_capacity(lines.len() * 512);
    for line in lines {
        let (index, outcome) = match line {
            Line::Text { index, bytes } => (
                index,
                parse::<ClassifyRequest>(&bytes)
                    .and_then(|request| classify_one(state, served, request, server_time)),
            ),
            Line::TooLong { index } => (
                index,
                Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the line is longer than {max_line_bytes} bytes"),
                )),
            ),
        };
        serde_json::to_writer(
            &mut out,
            &ItemAnswer {
                index,
                outcome: &outcome,
            },
        )
        .expect("writing JSON to a Vec cannot fail");
        out.push(b'\n');
    }
    Bytes::from(out)
}

struct StreamState {
    input: axum::body::BodyDataStream,
    splitter: LineSplitter,
    state: AppState,
    served: Arc<ServedModel>,
    finished: bool,
}

/// Answers the lines of one input chunk, on the blocking pool when there are many.
async fn answer_chunk(
    state: AppState,
    served: Arc<ServedModel>,
    next_index: usize,
    lines: Vec<Line>,
) -> Bytes {
    if lines.len() <= INLINE_ITEMS {
        return answer_lines(&state, &served, lines);
    }
    match tokio::task::spawn_blocking(move || answer_lines(&state, &served, lines)).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!("stream scoring failed: {e}");
            error_line(
                next_index,
                ApiError::new(
                    ErrorCode::Internal,
                    "a chunk of the stream could not be scored",
                ),
            )
        }
    }
}

fn error_line(index: usize, error: ApiError) -> Bytes {
    let outcome = Err(error);
    let mut out = serde_json::to_vec(&ItemAnswer {
        index,
        outcome: &outcome,
    })
    .expect("an error item serialises");
    out.push(b'\n');
    Bytes::from(out)
}

/// `POST /v1/classify/stream`: NDJSON in, NDJSON out, one answer per non-blank line, in order. The request body is
/// read only as fast as the client reads answers (each output chunk is produced when the response is polled), so
/// a slow reader slows the writer instead of filling memory. The whole stream is answered by one model.
pub async fn classify_stream(State(state): State<AppState>, body: Body) -> Response {
    let splitter = LineSplitter::new(state.limits().max_line_bytes);
    let stream_state = StreamState {
        input: body.into_data_stream(),
        splitter,
        served: state.model(),
        state,
        finished: false,
    };
    let output = futures_util::stream::unfold(stream_state, |mut st| async move {
        if st.finished {
            return None;
        }
        loop {
            let mut lines = Vec::new();
            match st.input.next().await {
                Some(Ok(chunk)) => st.splitter.push(&chunk, &mut lines),
                Some(Err(e)) => {
                    st.finished = true;
                    let error = ApiError::new(
                        ErrorCode::InvalidBody,
                        format!("the stream could not be read: {e}"),
                    );
                    return Some((
                        Ok::<_, Infallible>(error_line(st.splitter.next_index, error)),
                        st,
                    ));
                }
                None => {
                    st.finished = true;
                    st.splitter.finish(&mut lines);
                    if lines.is_empty() {
                        return None;
                    }
                }
            }
            if !lines.is_empty() {
                let (state, served) = (st.state.clone(), st.served.clone());
                let bytes = answer_chunk(state, served, st.splitter.next_index, lines).await;
                return Some((Ok(bytes), st));
            }
        }
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        Body::from_stream(output),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<Line> {
        let mut splitter = LineSplitter::new(max);
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, &mut lines);
        }
        splitter.finish(&mut lines);
        lines
    }

    fn text(index: usize, bytes: &[u8]) -> Line {
        Line::Text {
            index,
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn lines_across_chunks_blank_lines_and_a_last_line_without_newline() {
        assert_eq!(
            split(100, &[b"ab", b"c\n\n  \r\nde", b"f\ngh"]),
            vec![text(0, b"abc"), text(3, b"def"), text(4, b"gh")]
        );
        assert_eq!(split(100, &[b""]), vec![]);
        assert_eq!(split(100, &[b"x\n"]), vec![text(0, b"x")]);
    }

    #[test]
    fn an_overlong_line_is_reported_once_and_the_next_line_is_kept() {
        assert_eq!(
            split(4, &[b"12", b"345", b"67\nok\n1234\n12345"]),
            vec![
                Line::TooLong { index: 0 },
                text(1, b"ok"),
                text(2, b"1234"),
                Line::TooLong { index: 3 }
            ]
        );
    }
}
