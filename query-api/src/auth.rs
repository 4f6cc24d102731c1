//! Authentication by the same bearer API keys as the command API, read from the security index on
//! every request (so a revoked key or a removed member is refused at once), and the permission
//! check resolvers make.

use async_graphql::Context;
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use domain::key_format::{self, KeyRecord};
use domain::{Grant, Permission};
use uuid::Uuid;

use crate::db::RequestDb;
use crate::error::QueryError;

/// Who is asking: an API key of one workspace, possibly acting for a member.
#[derive(Debug, Clone)]
pub struct Caller {
    pub workspace_id: Uuid,
    pub grant: Grant,
}

impl Caller {
    /// `Forbidden` naming the permission unless the caller holds it.
    pub fn require(&self, permission: Permission) -> Result<(), QueryError> {
        if self.grant.can(permission) { Ok(()) } else { Err(QueryError::Forbidden(permission.as_str())) }
    }
}

/// The caller of a resolver, after checking that it holds `permission`.
pub fn caller_with<'a>(ctx: &Context<'a>, permission: Permission) -> Result<&'a Caller, QueryError> {
    let caller = ctx.data::<Caller>().map_err(|_| QueryError::Unauthenticated)?;
    caller.require(permission)?;
    Ok(caller)
}

/// Resolves the bearer key of a request, or `Unauthenticated`.
pub async fn authenticate(db: &RequestDb, headers: &HeaderMap) -> Result<Caller, QueryError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(key_format::bearer_token)
        .ok_or(QueryError::Unauthenticated)?;
    let prefix = key_format::prefix_of(token).ok_or(QueryError::Unauthenticated)?;
    let record = find_key(db, prefix).await?.ok_or(QueryError::Unauthenticated)?;
    if !record.admits(token, Utc::now()) {
        return Err(QueryError::Unauthenticated);
    }
    Ok(Caller { workspace_id: record.workspace_id, grant: record.grant() })
}

type KeyRow = (Uuid, Uuid, String, String, Option<Uuid>, Option<DateTime<Utc>>, Option<DateTime<Utc>>, Option<String>);

async fn find_key(db: &RequestDb, prefix: &str) -> Result<Option<KeyRecord>, QueryError> {
    let row: Option<KeyRow> = sqlx::query_as("SELECT * FROM security.api_key_by_prefix($1)")
        .bind(prefix)
        .fetch_optional(&mut *db.connection().await?)
        .await?;
    let Some((key_id, workspace_id, key_hash, role, user_id, expires_at, revoked_at, member_role)) = row else {
        return Ok(None);
    };
    let parse =
        |raw: &str| raw.parse().map_err(|e: String| QueryError::internal(anyhow::anyhow!("{e} in the security index")));
    let (role, member_role) = (parse(&role)?, member_role.as_deref().map(parse).transpose()?);
    Ok(Some(KeyRecord { key_id, workspace_id, key_hash, role, user_id, expires_at, revoked_at, member_role }))
}
