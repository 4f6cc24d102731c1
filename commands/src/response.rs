//! The success response of a command: status, `Location`, `ETag`, `X-Consistency-Token` and a
//! JSON body, in a form that can also be stored for idempotent replay (without secrets).

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use uuid::Uuid;

pub const CONSISTENCY_TOKEN: &str = "x-consistency-token";

#[derive(Debug, Clone)]
pub struct CommandResponse {
    pub status: StatusCode,
    pub location: Option<String>,
    /// The stream version the client should send back in `If-Match`.
    pub version: i64,
    /// The global position of the last event appended (or of the last event, for a no-op).
    pub position: i64,
    pub body: Option<Value>,
    /// Body fields shown once and never stored (an API key).
    pub secret_fields: &'static [&'static str],
}

impl CommandResponse {
    /// `{"id", "version", "position"}`, the body of most commands.
    pub fn standard_body(id: Uuid, version: i64, position: i64) -> Value {
        json!({ "id": id, "version": version, "position": position })
    }

    pub fn ok(id: Uuid, version: i64, position: i64) -> Self {
        Self {
            status: StatusCode::OK,
            location: None,
            version,
            position,
            body: Some(Self::standard_body(id, version, position)),
            secret_fields: &[],
        }
    }

    pub fn created(location: String, id: Uuid, version: i64, position: i64) -> Self {
        Self { status: StatusCode::CREATED, location: Some(location), ..Self::ok(id, version, position) }
    }

    pub fn no_content(version: i64, position: i64) -> Self {
        Self { status: StatusCode::NO_CONTENT, body: None, ..Self::ok(Uuid::nil(), version, position) }
    }

    pub fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let mut put = |name: HeaderName, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        put(header::ETAG, format!("\"{}\"", self.version));
        put(HeaderName::from_static(CONSISTENCY_TOKEN), self.position.to_string());
        if let Some(location) = &self.location {
            put(header::LOCATION, location.clone());
        }
        if self.body.is_some() {
            put(header::CONTENT_TYPE, "application/json".to_owned());
        }
        headers
    }

    /// The body as stored for replay: secret fields become `null`.
    pub fn stored_body(&self) -> Option<Value> {
        let mut body = self.body.clone()?;
        if let Value::Object(fields) = &mut body {
            for field in self.secret_fields {
                if let Some(value) = fields.get_mut(*field) {
                    *value = Value::Null;
                }
            }
        }
        Some(body)
    }
}

impl IntoResponse for CommandResponse {
    fn into_response(self) -> Response {
        let headers = self.headers();
        let body = self.body.map(|b| b.to_string()).unwrap_or_default();
        (self.status, headers, body).into_response()
    }
}
