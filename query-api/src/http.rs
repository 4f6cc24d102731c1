//! GraphQL over HTTP (the GraphQL-over-HTTP specification), written out here rather than taken
//! from async-graphql's axum integration, which differs from the spec: it always sends a `data`
//! key (even for request errors, which must have none), answers 200 to parse and validation
//! errors under `application/graphql-response+json`, and does not refuse mutations over GET.
//!
//! - Media types: `application/graphql-response+json` when the client accepts it, otherwise
//!   `application/json` (also when there is no `Accept`); 406 if it accepts neither.
//! - A request that is not a GraphQL request (bad JSON, no `query`, wrong content type) is 400
//!   (415 for the content type).
//! - Parse and validation errors (depth and complexity limits included) are request errors:
//!   no `data`, 400 under `graphql-response+json`, 200 under `application/json`.
//! - A mutation or subscription over GET is 405 with `Allow: POST`.
//! - Authentication (401) and read-your-writes (`X-Consistency-Token`, 400 if malformed, 503 if
//!   the read models do not catch up in time) happen before execution.

use std::time::Instant;

use async_graphql::parser::types::OperationType;
use async_graphql::{ServerError, Variables};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::authenticate;
use crate::consistency;
use crate::db::RequestDb;
use crate::error::QueryError;
use crate::schema::loaders::Loaders;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The media type of the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaType {
    GraphqlResponse,
    Json,
}

impl MediaType {
    fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return Some(MediaType::Json);
        };
        let accepted: Vec<&str> = accept
            .split(',')
            .filter(|part| !part.split(';').skip(1).any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000")))
            .map(|part| part.split(';').next().unwrap_or("").trim())
            .collect();
        if accepted.iter().any(|t| t.eq_ignore_ascii_case(GRAPHQL_RESPONSE)) {
            Some(MediaType::GraphqlResponse)
        } else if accepted.iter().any(|t| matches!(t.to_ascii_lowercase().as_str(), JSON | "application/*" | "*/*")) {
            Some(MediaType::Json)
        } else {
            None
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            MediaType::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            MediaType::Json => "application/json; charset=utf-8",
        }
    }
}

/// The parameters of a GraphQL request, from a JSON body or a query string.
#[derive(Debug, Deserialize)]
struct GraphqlParams {
    query: Option<Value>,
    #[serde(default)]
    variables: Option<Value>,
    #[serde(default, rename = "operationName")]
    operation_name: Option<Value>,
}

/// A request error: a GraphQL response with `errors` and no `data`.
fn request_error(status: StatusCode, media: MediaType, code: &str, message: &str) -> Response {
    let body = json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    respond(status, media, &body)
}

fn respond(status: StatusCode, media: MediaType, body: &Value) -> Response {
    respond_text(status, media, body.to_string())
}

fn respond_text(status: StatusCode, media: MediaType, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media.content_type()));
    response
}

/// `GET /graphql`: GraphiQL for a browser that asks for HTML without a query, else a query.
pub async fn get(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let wants_html =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"));
    let raw = raw.unwrap_or_default();
    if wants_html && !raw.split('&').any(|pair| pair.starts_with("query=")) {
        return Html(crate::graphiql::page(&state.graphiql_assets)).into_response();
    }
    let Some(media) = MediaType::negotiate(&headers) else { return not_acceptable() };
    let params = match parse_query_string(&raw) {
        Ok(params) => params,
        Err(message) => return request_error(StatusCode::BAD_REQUEST, media, "BAD_REQUEST", &message),
    };
    execute(&state, &headers, media, params, true).await
}

/// `POST /graphql` with a JSON body.
pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(media) = MediaType::negotiate(&headers) else { return not_acceptable() };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(JSON) {
        let message = "send the GraphQL request as JSON with Content-Type: application/json";
        return request_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, media, "UNSUPPORTED_MEDIA_TYPE", message);
    }
    let params: GraphqlParams = match serde_json::from_slice(&body) {
        Ok(params) => params,
        Err(error) => {
            let message = format!("the body is not a GraphQL request in JSON: {error}");
            return request_error(StatusCode::BAD_REQUEST, media, "BAD_REQUEST", &message);
        }
    };
    execute(&state, &headers, media, params, false).await
}

fn not_acceptable() -> Response {
    let message = format!("this endpoint answers with {GRAPHQL_RESPONSE} or {JSON}; the Accept header allows neither");
    request_error(StatusCode::NOT_ACCEPTABLE, MediaType::Json, "NOT_ACCEPTABLE", &message)
}

fn parse_query_string(raw: &str) -> Result<GraphqlParams, String> {
    let mut params = GraphqlParams { query: None, variables: None, operation_name: None };
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        match name.as_ref() {
            "query" => params.query = Some(Value::String(value.into_owned())),
            "operationName" => params.operation_name = Some(Value::String(value.into_owned())),
            "variables" => {
                let variables = serde_json::from_str(&value).map_err(|e| format!("`variables` is not JSON: {e}"))?;
                params.variables = Some(variables);
            }
            _ => {}
        }
    }
    Ok(params)
}

async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    media: MediaType,
    params: GraphqlParams,
    over_get: bool,
) -> Response {
    let started = Instant::now();
    let bad = |message: &str| request_error(StatusCode::BAD_REQUEST, media, "BAD_REQUEST", message);
    let query = match params.query {
        Some(Value::String(query)) => query,
        Some(_) => return bad("`query` must be a string"),
        None => return bad("a GraphQL request needs a `query`"),
    };
    let variables = match params.variables {
        None | Some(Value::Null) => Variables::default(),
        Some(value @ Value::Object(_)) => Variables::from_json(value),
        Some(_) => return bad("`variables` must be an object"),
    };
    let operation_name = match params.operation_name {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name),
        Some(_) => return bad("`operationName` must be a string"),
    };

    let db = RequestDb::new(state.pool.clone());
    let caller = match authenticate(&db, headers).await {
        Ok(caller) => caller,
        Err(QueryError::Unauthenticated) => {
            let mut response =
                request_error(StatusCode::UNAUTHORIZED, media, "UNAUTHENTICATED", "missing or invalid API key");
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
        Err(error) => return internal(media, error),
    };

    let parsed = match state.documents.parse(&query, operation_name.as_deref(), &variables) {
        Ok(parsed) => parsed,
        Err(error) => return graphql_request_error(media, vec![error], "GRAPHQL_PARSE_FAILED"),
    };
    let (operation, validated, rememberable) = (parsed.operation, parsed.validated, parsed.rememberable);
    let mut request = async_graphql::Request::new(query).variables(variables);
    request.set_parsed_query(parsed.document);
    if let Some(name) = &operation_name {
        request = request.operation_name(name.clone());
    }
    if over_get && matches!(operation, Some(OperationType::Mutation | OperationType::Subscription)) {
        let mut response = request_error(
            StatusCode::METHOD_NOT_ALLOWED,
            media,
            "METHOD_NOT_ALLOWED",
            "only queries may be sent with GET; send mutations with POST",
        );
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }

    if let Some(token) = headers.get("x-consistency-token") {
        let waited = match consistency::parse_token(token.to_str().unwrap_or("(not text)")) {
            Ok(position) => {
                // Polls with pauses in between: no connection is held while it waits.
                db.release().await;
                consistency::wait_for(&state.pool, caller.workspace_id, position, state.consistency_timeout).await
            }
            Err(error) => Err(error),
        };
        match waited {
            Ok(()) => {}
            Err(error @ QueryError::BadInput(_)) => return bad(&error.message()),
            Err(error @ QueryError::ConsistencyTimeout { .. }) => {
                let mut response =
                    request_error(StatusCode::SERVICE_UNAVAILABLE, media, error.code(), &error.message());
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            Err(error) => return internal(media, error),
        }
    }

    let remember = rememberable.then(|| request.query.clone());
    let request = request.data(Loaders::new(db.clone(), caller.workspace_id)).data(db).data(caller);
    let schema = if validated { &state.prevalidated_schema } else { &state.schema };
    let response = schema.execute(request).await;
    metrics::histogram!("graphql_request_duration_seconds").record(started.elapsed().as_secs_f64());
    // Execution errors always carry a path; errors without one, with no data, come from parsing
    // or validation: the request was never executed.
    let executed = !(response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty()));
    if !executed {
        return graphql_request_error(media, response.errors, "GRAPHQL_VALIDATION_FAILED");
    }
    if let Some(query) = remember {
        state.documents.passed_validation(&query, operation_name.as_deref());
    }
    // Straight to text: a `serde_json::Value` would sort the fields, and a response keeps the
    // query's field order.
    let body = serde_json::to_string(&response).expect("responses serialize");
    respond_text(StatusCode::OK, media, body)
}

/// Parse or validation errors, each with a code: the limits get their own.
fn graphql_request_error(media: MediaType, errors: Vec<ServerError>, code: &str) -> Response {
    metrics::counter!("graphql_request_errors_total", "code" => code.to_owned()).increment(1);
    let errors: Vec<Value> = errors
        .into_iter()
        .map(|error| {
            let code = if error.message.contains("nested too deep") {
                "DEPTH_LIMIT_EXCEEDED"
            } else if error.message.contains("too complex") {
                "COMPLEXITY_LIMIT_EXCEEDED"
            } else {
                code
            };
            let mut value = serde_json::to_value(&error).expect("errors serialize");
            value["extensions"]["code"] = Value::from(code);
            value
        })
        .collect();
    let status = match media {
        MediaType::GraphqlResponse => StatusCode::BAD_REQUEST,
        MediaType::Json => StatusCode::OK,
    };
    respond(status, media, &json!({ "errors": errors }))
}

fn internal(media: MediaType, error: QueryError) -> Response {
    tracing::error!(error = ?error, "query request failed");
    request_error(StatusCode::INTERNAL_SERVER_ERROR, media, "INTERNAL", "internal error")
}
