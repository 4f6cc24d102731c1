//! `Idempotency-Key` on POST (CONTRACT.md): a retry with the same key and body replays the stored
//! response; the same key with another request is 422; while the first is in flight, 409.
//!
//! Keys are scoped to the calling API key. A successful command stores its response in the same
//! transaction as its events ([`store_response`]), so a crash can never leave a command applied
//! but unrecorded. Client errors are recorded after the fact; server errors release the key so
//! that the retry runs again. A key stays in flight for at most a minute (a crashed server's
//! claim), and is forgotten after a day.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth;
use crate::error::ApiError;
use crate::extract::MAX_BODY_BYTES;
use crate::response::{CONSISTENCY_TOKEN, CommandResponse};

const HEADER: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";
/// Response headers kept for replay.
const KEPT_HEADERS: [&str; 4] = ["content-type", "location", "etag", CONSISTENCY_TOKEN];

/// The claim a request holds on its idempotency key while it runs.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub key_id: Uuid,
    pub key: String,
}

#[derive(sqlx::FromRow)]
struct StoredRecord {
    fingerprint: String,
    status: Option<i32>,
    headers: Option<serde_json::Value>,
    body: Option<Vec<u8>>,
}

enum Claimed {
    Fresh,
    Replay(Response),
}

pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !request.headers().contains_key(HEADER) {
        return next.run(request).await;
    }
    let key = match parse_key(request.headers()) {
        Ok(key) => key,
        Err(error) => return error.into_response(),
    };
    // Without a valid caller there is nothing to scope the key to; the route answers 401.
    let Ok(caller) = auth::authenticate(&state.pool, request.headers()).await else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::PayloadTooLarge.into_response();
    };
    let fingerprint = hex::encode(
        Sha256::new()
            .chain_update(parts.method.as_str())
            .chain_update(b"\n")
            .chain_update(parts.uri.path())
            .chain_update(b"\n")
            .chain_update(&bytes)
            .finalize(),
    );
    let claim = IdempotencyClaim { key_id: caller.key_id, key };
    match take(&state.pool, &claim, &fingerprint).await {
        Ok(Claimed::Fresh) => {}
        Ok(Claimed::Replay(response)) => return response,
        Err(error) => return error.into_response(),
    }
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(claim.clone());
    let response = next.run(request).await;
    match settle(&state.pool, &claim, response).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn parse_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers.get(HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if value.is_empty() || value.len() > 255 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::field("Idempotency-Key", "invalid", "must be 1-255 visible ASCII characters"));
    }
    Ok(value.to_owned())
}

async fn take(pool: &PgPool, claim: &IdempotencyClaim, fingerprint: &str) -> Result<Claimed, ApiError> {
    let inserted = sqlx::query(
        "INSERT INTO commands.idempotency_keys (key_id, idempotency_key, fingerprint) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(claim.key_id)
    .bind(&claim.key)
    .bind(fingerprint)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claimed::Fresh);
    }
    // Abandoned claims (over a minute in flight) and day-old records are taken over.
    let taken_over = sqlx::query(
        "UPDATE commands.idempotency_keys
         SET fingerprint = $3, status = NULL, headers = NULL, body = NULL, created_at = now()
         WHERE key_id = $1 AND idempotency_key = $2
           AND ((status IS NULL AND created_at < now() - interval '1 minute') OR created_at < now() - interval '1 day')",
    )
    .bind(claim.key_id)
    .bind(&claim.key)
    .bind(fingerprint)
    .execute(pool)
    .await?;
    if taken_over.rows_affected() == 1 {
        return Ok(Claimed::Fresh);
    }
    let stored: Option<StoredRecord> = sqlx::query_as(
        "SELECT fingerprint, status, headers, body FROM commands.idempotency_keys
         WHERE key_id = $1 AND idempotency_key = $2",
    )
    .bind(claim.key_id)
    .bind(&claim.key)
    .fetch_optional(pool)
    .await?;
    let Some(StoredRecord { fingerprint: stored_fingerprint, status, headers, body }) = stored else {
        return Err(ApiError::conflict("the request with this Idempotency-Key was just released; retry"));
    };
    match status {
        None => Err(ApiError::conflict("a request with this Idempotency-Key is still in progress")),
        Some(_) if stored_fingerprint != fingerprint => {
            Err(ApiError::field("Idempotency-Key", "reused", "this Idempotency-Key was used with a different request"))
        }
        Some(status) => Ok(Claimed::Replay(replay(status, headers, body))),
    }
}

fn replay(status: i32, headers: Option<serde_json::Value>, body: Option<Vec<u8>>) -> Response {
    let status = u16::try_from(status).ok().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
    let mut response = (status, body.unwrap_or_default()).into_response();
    if let Some(serde_json::Value::Object(stored)) = headers {
        for (name, value) in stored {
            if let (Ok(name), Some(Ok(value))) = (HeaderName::try_from(name), value.as_str().map(HeaderValue::from_str))
            {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// Records a successful command's response inside its transaction.
pub async fn store_response(
    conn: &mut PgConnection,
    claim: &IdempotencyClaim,
    response: &CommandResponse,
) -> Result<(), ApiError> {
    let body = response.stored_body().map(|b| b.to_string().into_bytes());
    record(&mut *conn, claim, response.status, &response.headers(), body).await
}

async fn record<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    claim: &IdempotencyClaim,
    status: StatusCode,
    headers: &HeaderMap,
    body: Option<Vec<u8>>,
) -> Result<(), ApiError> {
    let kept: serde_json::Map<String, serde_json::Value> = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), serde_json::Value::String(value.to_owned())))
        })
        .collect();
    sqlx::query(
        "UPDATE commands.idempotency_keys SET status = $3, headers = $4, body = $5
         WHERE key_id = $1 AND idempotency_key = $2 AND status IS NULL",
    )
    .bind(claim.key_id)
    .bind(&claim.key)
    .bind(i32::from(status.as_u16()))
    .bind(serde_json::Value::Object(kept))
    .bind(body)
    .execute(executor)
    .await?;
    Ok(())
}

/// After the route: server errors release the key; other responses not yet recorded (client
/// errors, no-op commands) are recorded now.
async fn settle(pool: &PgPool, claim: &IdempotencyClaim, response: Response) -> Result<Response, ApiError> {
    if response.status().is_server_error() {
        sqlx::query(
            "DELETE FROM commands.idempotency_keys WHERE key_id = $1 AND idempotency_key = $2 AND status IS NULL",
        )
        .bind(claim.key_id)
        .bind(&claim.key)
        .execute(pool)
        .await?;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.map_err(ApiError::internal)?;
    // A response that shows a secret (an API key) was recorded without it by its command; one
    // that was not recorded there carries no secret.
    record(pool, claim, parts.status, &parts.headers, Some(bytes.to_vec())).await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
