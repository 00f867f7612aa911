//! Reading JSON bodies ourselves instead of axum's `Json` extractor, whose rejections are plain text: every way a
//! body can be wrong (type, size, encoding, syntax, shape) becomes an [`ApiError`] with its own code.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use super::error::{ApiError, ErrorCode};

/// True when `Content-Type` is JSON (`application/json`, or any `application/*+json`), parameters aside.
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().as_bytes();
    essence.eq_ignore_ascii_case(b"application/json")
        || (essence.len() > b"application/+json".len()
            && essence[..12].eq_ignore_ascii_case(b"application/")
            && essence[essence.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

/// Reads a whole JSON body of at most `limit` bytes.
pub async fn read_json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    check_declared_length(headers, limit)?;
    if !is_json_content_type(headers) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    read_limited(body, limit).await
}

/// Reads an optional JSON body: an empty body (with any or no content type) is `None`.
pub async fn read_optional_json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Option<Bytes>, ApiError> {
    check_declared_length(headers, limit)?;
    let bytes = read_limited(body, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !is_json_content_type(headers) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    Ok(Some(bytes))
}

/// Refuses at once a body whose declared length is over the limit, before reading any of it.
fn check_declared_length(headers: &HeaderMap, limit: usize) -> Result<(), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => Err(too_large(limit)),
        _ => Ok(()),
    }
}

/// Collects a body, refusing more than `limit` bytes.
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large(limit)),
        Err(error) => Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("the body could not be read: {error}"),
        )),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the body is larger than {limit} bytes"),
    )
}

/// Parses JSON bytes into a wire type, naming the kind of mistake. Messages are masked: serde quotes the values it
/// rejects, and those may be a comment with personal data.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Err(error) = std::str::from_utf8(bytes) {
        return Err(ApiError::new(
            ErrorCode::InvalidUtf8,
            format!("the body is not valid UTF-8: {error}"),
        ));
    }
    // serde's derived structs also accept a JSON array of their fields in order; the API takes objects only.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => Err(not_an_object("an array")),
            Err(error) => Err(json_error(&error)),
        };
    }
    serde_json::from_slice(bytes).map_err(|error| json_error(&error))
}

/// The error for JSON that is valid but not an object where an object is expected.
pub fn not_an_object(found: &str) -> ApiError {
    ApiError::new(
        ErrorCode::WrongType,
        format!("invalid type: {found}, expected a JSON object"),
    )
}

/// Maps a serde_json error to the API's codes.
pub fn json_error(error: &serde_json::Error) -> ApiError {
    let message = models::routing::mask(&error.to_string()).text;
    let code = match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => ErrorCode::InvalidJson,
        Category::Data => {
            let text = message.as_str();
            if text.starts_with("unknown field") {
                ErrorCode::UnknownField
            } else if text.starts_with("missing field") {
                ErrorCode::MissingField
            } else if text.starts_with("invalid type") {
                ErrorCode::WrongType
            } else {
                ErrorCode::InvalidValue
            }
        }
    };
    let message = match code {
        ErrorCode::InvalidJson => format!("the body is not valid JSON: {message}"),
        _ => message,
    };
    ApiError::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn json_content_types() {
        for yes in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/problem+json",
        ] {
            assert!(is_json_content_type(&with_type(yes)), "{yes}");
        }
        for no in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "json",
            "application/+json",
            "",
        ] {
            assert!(!is_json_content_type(&with_type(no)), "{no}");
        }
        assert!(!is_json_content_type(&HeaderMap::new()));
    }
}
