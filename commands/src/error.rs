//! The one error type of the command API, and its RFC 9457 `application/problem+json` form.
//!
//! Every failure a client can see goes through [`ApiError`]: its status and `code` come from one
//! map here, and internal errors are logged with their cause chain but never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{FieldError, ValidationErrors};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request body is not JSON of the expected shape.
    #[error("{0}")]
    MalformedBody(String),
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("a valid API key is required (Authorization: Bearer ffk_…)")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("no such resource")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("the resource is at version {current}, not the version in If-Match")]
    PreconditionFailed { current: i64 },
    #[error("this update requires an If-Match header with the resource's current ETag")]
    PreconditionRequired,
    #[error("the request body is larger than 1 MiB")]
    PayloadTooLarge,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The problem document of RFC 9457, with CONTRACT.md's `code`, `request_id` and `errors`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

impl ApiError {
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::MalformedBody(_) => (StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
            ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
            ApiError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "VALIDATION_ERROR"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "CONFLICT"),
            ApiError::PreconditionFailed { .. } => (StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED"),
            ApiError::PreconditionRequired => (StatusCode::PRECONDITION_REQUIRED, "PRECONDITION_REQUIRED"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        }
    }

    pub fn field(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, code, message)])
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::Conflict(message.into())
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(error.into())
    }

    /// The problem document; `request_id` is filled in by the response layer.
    pub fn problem(&self) -> Problem {
        let (status, code) = self.status_and_code();
        let errors = match self {
            ApiError::Validation(errors) => {
                errors.iter().map(|e| ProblemField { field: e.field.clone(), message: e.message.clone() }).collect()
            }
            _ => Vec::new(),
        };
        let detail = match self {
            ApiError::Validation(errors) => errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            other => other.to_string(),
        };
        Problem {
            problem_type: format!("https://flowfuse.dev/problems/{}", code.to_lowercase().replace('_', "-")),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            code,
            request_id: None,
            errors,
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::Validation(errors.0)
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError::Validation(vec![error])
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Internal(error.into())
    }
}

/// Marks the response so that the request-id layer can put the id into the body.
#[derive(Clone)]
pub struct ProblemBody(pub std::sync::Arc<Problem>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let (status, _) = self.status_and_code();
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let ApiError::PreconditionFailed { current } = self
            && let Ok(etag) = HeaderValue::from_str(&format!("\"{current}\""))
        {
            response.headers_mut().insert(header::ETAG, etag);
        }
        response.extensions_mut().insert(ProblemBody(std::sync::Arc::new(problem)));
        response
    }
}

impl From<domain::WorkflowError> for ApiError {
    fn from(error: domain::WorkflowError) -> Self {
        use domain::WorkflowError as E;
        match error {
            E::NotFound => ApiError::NotFound,
            E::NoSuchVersion { .. } => ApiError::field("to_version", "no_such_version", error.to_string()),
            E::AlreadyExists | E::Archived | E::NotArchived | E::NotPublished => ApiError::Conflict(error.to_string()),
        }
    }
}

impl From<domain::WorkspaceError> for ApiError {
    fn from(error: domain::WorkspaceError) -> Self {
        use domain::WorkspaceError as E;
        match error {
            E::NotFound | E::MemberNotFound(_) | E::TeamNotFound(_) => ApiError::NotFound,
            E::EmailTaken(_) => ApiError::field("email", "taken", error.to_string()),
            E::TeamNameTaken(_) => ApiError::field("name", "taken", error.to_string()),
            E::AlreadyExists
            | E::AlreadyMember(_)
            | E::LastAdmin
            | E::MemberQuotaExceeded { .. }
            | E::TeamExists(_)
            | E::AlreadyInTeam { .. }
            | E::NotInTeam { .. } => ApiError::Conflict(error.to_string()),
        }
    }
}

impl From<domain::ApiKeyError> for ApiError {
    fn from(error: domain::ApiKeyError) -> Self {
        use domain::ApiKeyError as E;
        match error {
            E::NotFound => ApiError::NotFound,
            E::RoleExceedsIssuer { .. } => ApiError::Forbidden(error.to_string()),
            E::ExpiryInPast => ApiError::field("expires_at", "in_the_past", error.to_string()),
            E::AlreadyExists | E::Revoked => ApiError::Conflict(error.to_string()),
        }
    }
}
