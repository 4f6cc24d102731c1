//! Extractors that turn every malformed input into an [`ApiError`], so that clients always get
//! the same problem+json shape (STYLE.md 6).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;
use crate::idempotency::IdempotencyClaim;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body: requires `Content-Type: application/json`, at most 1 MiB; syntax errors are 400,
/// shape errors (unknown or missing fields, wrong types) are 422 naming the field.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = axum::body::Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::MalformedBody(format!("cannot read the request body: {rejection}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let inner = error.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::MalformedBody(format!("the body is not valid JSON: {inner}"));
        }
        let path = error.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        let message = inner.to_string();
        // serde appends " at line L column C", which says nothing useful about a field.
        let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
        ApiError::field(&field, "invalid", message)
    })?;
    deserializer.end().map_err(|e| ApiError::MalformedBody(format!("the body is not valid JSON: {e}")))?;
    Ok(parsed)
}

/// A path parameter that is a UUID; anything else is simply not found.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await.map_err(|_| ApiError::NotFound)?;
        Ok(ApiPath(value))
    }
}

/// `If-Match: "<version>"`, the ETag a previous response gave. `None` when absent.
pub struct IfMatch(pub Option<i64>);

impl IfMatch {
    /// The version the client expects; 428 when it gave none.
    pub fn required(&self) -> Result<i64, ApiError> {
        self.0.ok_or(ApiError::PreconditionRequired)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(raw) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let invalid = || ApiError::field("If-Match", "invalid", "must be an ETag such as \"3\"");
        let text = raw.to_str().map_err(|_| invalid())?.trim();
        let text = text.strip_prefix("W/").unwrap_or(text);
        let version = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .and_then(|t| t.parse::<i64>().ok())
            .filter(|v| *v >= 1)
            .ok_or_else(invalid)?;
        Ok(IfMatch(Some(version)))
    }
}

/// Provenance of a command: the request id, the correlation id (the client's `X-Request-Id`, else
/// the trace id of `traceparent`, else the request id) and the idempotency claim, if any.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub request_id: String,
    pub correlation_id: String,
    pub idempotency: Option<IdempotencyClaim>,
}

/// The header the request-id layer sets on every request (and echoes on the response).
pub const REQUEST_ID: &str = "x-request-id";
/// The client's own `X-Request-Id`, if it sent a usable one (recorded before the request-id
/// layer fills in a generated one).
#[derive(Debug, Clone)]
pub struct ClientRequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for CommandContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let header_text = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let request_id = header_text(REQUEST_ID).unwrap_or_else(|| Uuid::now_v7().to_string());
        let client_id = parts.extensions.get::<ClientRequestId>().and_then(|c| c.0.clone());
        let trace_id = header_text("traceparent").and_then(|t| trace_id_of(&t));
        Ok(CommandContext {
            correlation_id: client_id.or(trace_id).unwrap_or_else(|| request_id.clone()),
            request_id,
            idempotency: parts.extensions.get::<IdempotencyClaim>().cloned(),
        })
    }
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`).
fn trace_id_of(traceparent: &str) -> Option<String> {
    let parts: Vec<&str> = traceparent.trim().split('-').collect();
    let valid = parts.len() == 4
        && parts[1].len() == 32
        && parts[1].bytes().all(|b| b.is_ascii_hexdigit())
        && parts[1].bytes().any(|b| b != b'0');
    valid.then(|| parts[1].to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[test]
    fn json_errors_name_their_field() {
        assert!(matches!(parse_json::<Body>(b"{"), Err(ApiError::MalformedBody(_))));
        assert!(matches!(parse_json::<Body>(br#"{"name":"a"} x"#), Err(ApiError::MalformedBody(_))));
        let Err(ApiError::Validation(errors)) = parse_json::<Body>(br#"{"name":"a","inner":{"count":"x"}}"#) else {
            panic!("expected a validation error");
        };
        assert_eq!(errors[0].field, "inner.count");
        let Err(ApiError::Validation(errors)) = parse_json::<Body>(br#"{"name":"a","extra":1}"#) else {
            panic!("expected a validation error");
        };
        assert!(errors[0].message.contains("unknown field `extra`"), "{errors:?}");
    }

    #[test]
    fn trace_ids_come_from_traceparent() {
        assert_eq!(
            trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(trace_id_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), None);
        assert_eq!(trace_id_of("garbage"), None);
    }
}
