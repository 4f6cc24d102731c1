//! Authentication by the same bearer API keys as the command API, read from the security index on
//! every request (so a revoked key or a removed member is refused at once), and the permission
//! check resolvers make.

use async_graphql::Context;
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Utc};
use domain::{Permission, key_format, permits};
use event_schemas::types::Role;
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::QueryError;

/// Who is asking: an API key of one workspace, possibly acting for a member.
#[derive(Debug, Clone)]
pub struct Caller {
    pub workspace_id: Uuid,
    pub role: Role,
    /// The role of the member the key acts for; the key never has more than that member.
    pub member_role: Option<Role>,
}

impl Caller {
    pub fn can(&self, permission: Permission) -> bool {
        permits(self.role, permission) && self.member_role.is_none_or(|role| permits(role, permission))
    }

    /// `Forbidden` naming the permission unless the caller holds it.
    pub fn require(&self, permission: Permission) -> Result<(), QueryError> {
        if self.can(permission) { Ok(()) } else { Err(QueryError::Forbidden(permission.as_str())) }
    }
}

/// The caller of a resolver, after checking that it holds `permission`.
pub fn caller_with<'a>(ctx: &Context<'a>, permission: Permission) -> Result<&'a Caller, QueryError> {
    let caller = ctx.data::<Caller>().map_err(|_| QueryError::Unauthenticated)?;
    caller.require(permission)?;
    Ok(caller)
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    workspace_id: Uuid,
    key_hash: String,
    role: String,
    user_id: Option<Uuid>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    member_role: Option<String>,
}

/// Resolves the bearer key of a request, or `Unauthenticated`.
pub async fn authenticate(pool: &PgPool, headers: &HeaderMap) -> Result<Caller, QueryError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or(QueryError::Unauthenticated)?;
    let prefix = key_format::prefix_of(token).ok_or(QueryError::Unauthenticated)?;
    let row: Option<KeyRow> = sqlx::query_as(
        "SELECT k.workspace_id, k.key_hash, k.role, k.user_id, k.expires_at, k.revoked_at,
                m.role AS member_role
         FROM security.api_keys k
         LEFT JOIN security.members m ON m.workspace_id = k.workspace_id AND m.user_id = k.user_id
         WHERE k.prefix = $1",
    )
    .bind(prefix)
    .fetch_optional(pool)
    .await?;
    let row = row.ok_or(QueryError::Unauthenticated)?;
    let presented = key_format::hash(token);
    let matches: bool = presented.as_bytes().ct_eq(row.key_hash.as_bytes()).into();
    let live = row.revoked_at.is_none() && row.expires_at.is_none_or(|at| at > Utc::now());
    // A key acting for a member dies with the membership.
    let member_ok = row.user_id.is_none() || row.member_role.is_some();
    if !(matches && live && member_ok) {
        return Err(QueryError::Unauthenticated);
    }
    Ok(Caller {
        workspace_id: row.workspace_id,
        role: parse_role(&row.role)?,
        member_role: row.member_role.as_deref().map(parse_role).transpose()?,
    })
}

fn parse_role(raw: &str) -> Result<Role, QueryError> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned()))
        .map_err(|_| QueryError::internal(anyhow::anyhow!("unknown role {raw:?} in the security index")))
}
