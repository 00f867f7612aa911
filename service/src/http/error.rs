//! The one error type of the HTTP API: a stable machine-readable code, a status derived from the code alone, and
//! a message for people. Every error leaves the service as `{"error": {"code", "message"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What went wrong, as a stable code clients can branch on. The HTTP status follows from the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The body is not syntactically valid JSON (or a stream line is not).
    InvalidJson,
    /// The body is not valid UTF-8.
    InvalidUtf8,
    /// The body could not be read (the client went away or sent a broken body).
    InvalidBody,
    /// A JSON endpoint was called without `Content-Type: application/json`.
    UnsupportedMediaType,
    /// The body is larger than the endpoint accepts.
    PayloadTooLarge,
    /// A required field is absent.
    MissingField,
    /// A field the endpoint does not know was sent (wire types deny unknown fields).
    UnknownField,
    /// A field has the wrong JSON type.
    WrongType,
    /// A field has the right type but a value out of range or in the wrong format.
    InvalidValue,
    /// `text` is empty or only white space.
    EmptyText,
    /// `text` is longer than the configured limit.
    TextTooLong,
    /// A batch has no items.
    EmptyBatch,
    /// A batch has more items than the configured limit.
    BatchTooLarge,
    /// No or a wrong API key on an endpoint that needs one.
    Unauthorized,
    /// The endpoint needs an API key and the server has none configured.
    AdminDisabled,
    /// No such route.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The request took longer than the configured timeout (usually a slow body upload).
    RequestTimeout,
    /// A model given to reload is unreadable, corrupt or incompatible with the served one; the old model keeps serving.
    ModelRejected,
    /// Too many requests in flight; retry after the `Retry-After` seconds.
    Overloaded,
    /// The server is shutting down; retry on another instance.
    ShuttingDown,
    /// A bug; the cause is logged, not sent.
    Internal,
    /// Feedback names a prediction id the log does not hold.
    UnknownId,
    /// Feedback names a head the model (or the logged prediction) does not have.
    UnknownHead,
    /// Feedback gives a label that is not one of the head's labels.
    UnknownLabel,
    /// The server keeps no prediction log (`--db none`), so there is nothing to review or correct.
    StoreDisabled,
}

impl ErrorCode {
    /// Every code, for the OpenAPI document and the tests.
    pub const ALL: [ErrorCode; 26] = [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidUtf8,
        ErrorCode::InvalidBody,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::MissingField,
        ErrorCode::UnknownField,
        ErrorCode::WrongType,
        ErrorCode::InvalidValue,
        ErrorCode::EmptyText,
        ErrorCode::TextTooLong,
        ErrorCode::EmptyBatch,
        ErrorCode::BatchTooLarge,
        ErrorCode::Unauthorized,
        ErrorCode::AdminDisabled,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::RequestTimeout,
        ErrorCode::ModelRejected,
        ErrorCode::Overloaded,
        ErrorCode::ShuttingDown,
        ErrorCode::Internal,
        ErrorCode::UnknownId,
        ErrorCode::UnknownHead,
        ErrorCode::UnknownLabel,
        ErrorCode::StoreDisabled,
    ];

    /// The code as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidUtf8 => "invalid_utf8",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::WrongType => "wrong_type",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::EmptyText => "empty_text",
            ErrorCode::TextTooLong => "text_too_long",
            ErrorCode::EmptyBatch => "empty_batch",
            ErrorCode::BatchTooLarge => "batch_too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::AdminDisabled => "admin_disabled",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::ModelRejected => "model_rejected",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Internal => "internal",
            ErrorCode::UnknownId => "unknown_id",
            ErrorCode::UnknownHead => "unknown_head",
            ErrorCode::UnknownLabel => "unknown_label",
            ErrorCode::StoreDisabled => "store_disabled",
        }
    }

    /// The HTTP status of the code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidJson | ErrorCode::InvalidUtf8 | ErrorCode::InvalidBody => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::MissingField
            | ErrorCode::UnknownField
            | ErrorCode::WrongType
            | ErrorCode::InvalidValue
            | ErrorCode::EmptyText
            | ErrorCode::TextTooLong
            | ErrorCode::EmptyBatch
            | ErrorCode::BatchTooLarge
            | ErrorCode::ModelRejected
            | ErrorCode::UnknownHead
            | ErrorCode::UnknownLabel => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::AdminDisabled => StatusCode::FORBIDDEN,
            ErrorCode::NotFound | ErrorCode::UnknownId => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Overloaded | ErrorCode::ShuttingDown | ErrorCode::StoreDisabled => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Seconds a client should wait before retrying, for the codes that ask for a retry.
    pub fn retry_after(self) -> Option<u32> {
        match self {
            ErrorCode::Overloaded | ErrorCode::ShuttingDown | ErrorCode::RequestTimeout => Some(1),
            _ => None,
        }
    }

    /// One sentence on when the code is sent, for the OpenAPI document.
    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "The body (or a stream line) is not valid JSON.",
            ErrorCode::InvalidUtf8 => "The body is not valid UTF-8.",
            ErrorCode::InvalidBody => "The body could not be read.",
            ErrorCode::UnsupportedMediaType => {
                "A JSON endpoint was called without Content-Type: application/json."
            }
            ErrorCode::PayloadTooLarge => "The body is larger than the endpoint accepts.",
            ErrorCode::MissingField => "A required field is absent.",
            ErrorCode::UnknownField => "A field the endpoint does not know was sent.",
            ErrorCode::WrongType => "A field (or the whole body) has the wrong JSON type.",
            ErrorCode::InvalidValue => {
                "A field is out of range or badly formatted (top_k, received_at, lengths)."
            }
            ErrorCode::EmptyText => "text is empty or only white space.",
            ErrorCode::TextTooLong => "text is longer than the server's limit.",
            ErrorCode::EmptyBatch => "A batch has no items.",
            ErrorCode::BatchTooLarge => "A batch has more items than the server's limit.",
            ErrorCode::Unauthorized => "No API key, or a wrong one, in Authorization: Bearer.",
            ErrorCode::AdminDisabled => {
                "The endpoint needs an API key and the server has none configured."
            }
            ErrorCode::NotFound => "No such route.",
            ErrorCode::MethodNotAllowed => "The route does not accept this method.",
            ErrorCode::RequestTimeout => "The request took longer than the server's timeout.",
            ErrorCode::ModelRejected => {
                "The model file is unreadable, corrupt or incompatible; the old model keeps serving."
            }
            ErrorCode::Overloaded => {
                "Too many requests in flight; retry after Retry-After seconds."
            }
            ErrorCode::ShuttingDown => "The server is shutting down.",
            ErrorCode::Internal => "A bug in the server; the cause is logged, not sent.",
            ErrorCode::UnknownId => "No logged prediction has this id.",
            ErrorCode::UnknownHead => "The model, or the logged prediction, has no such head.",
            ErrorCode::UnknownLabel => {
                "The label is not one of the head's labels (see GET /v1/model)."
            }
            ErrorCode::StoreDisabled => {
                "The server keeps no prediction log (started with --db none)."
            }
        }
    }
}

/// An error answer: a code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What went wrong.
    pub code: ErrorCode,
    /// Why, in words; never contains unmasked comment text.
    pub message: String,
}

impl ApiError {
    /// An error with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The body of the error, shared by full responses and by batch and stream items.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            code: self.code.as_str(),
            message: &self.message,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

/// The inner object of an error, `{"code", "message"}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// The stable code.
    pub code: &'static str,
    /// The message.
    pub message: &'a str,
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorEnvelope { error: self.body() })
            .expect("an error body has only strings");
        let mut response = (
            self.code.status(),
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(seconds) = self.code.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.code == ErrorCode::Unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_client_errors_are_4xx() {
        let names: std::collections::HashSet<_> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for code in ErrorCode::ALL {
            let status = code.status();
            let server_side = matches!(
                code,
                ErrorCode::Overloaded
                    | ErrorCode::ShuttingDown
                    | ErrorCode::Internal
                    | ErrorCode::StoreDisabled
            );
            assert_eq!(status.is_server_error(), server_side, "{code:?}");
            assert!(status.is_client_error() || server_side, "{code:?}");
        }
    }
}
