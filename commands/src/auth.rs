//! Authentication by bearer API key and authorization by the permission matrix.
//!
//! Every request reads the key from the security index, so revocation, expiry, a member's removal
//! or a lower role apply to the very next request. Errors are ordered so that nothing leaks:
//! 401 for any problem with the key, then 404 when the path names another workspace (whether or
//! not it exists), then 403 for a missing permission.

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::header;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use domain::key_format::{self, KeyRecord};
use domain::{Grant, Permission};
use event_schemas::types::Role;
use sqlx::PgPool;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;

/// Who is calling: an API key of one workspace, possibly acting for a member.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: Uuid,
    pub workspace_id: Uuid,
    pub grant: Grant,
}

impl Caller {
    pub fn can(&self, permission: Permission) -> bool {
        self.grant.can(permission)
    }

    /// Whether this caller may hand out `role` (to a key or a member).
    pub fn can_grant(&self, role: Role) -> bool {
        self.grant.can_grant(role)
    }
}

/// Resolves the bearer key of a request, or `Unauthorized`.
pub async fn authenticate(pool: &PgPool, headers: &axum::http::HeaderMap) -> Result<Caller, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(key_format::bearer_token)
        .ok_or(ApiError::Unauthorized)?;
    let prefix = key_format::prefix_of(token).ok_or(ApiError::Unauthorized)?;
    let record = find_key(pool, prefix).await?.ok_or(ApiError::Unauthorized)?;
    if !record.admits(token, Utc::now()) {
        return Err(ApiError::Unauthorized);
    }
    Ok(Caller { key_id: record.key_id, workspace_id: record.workspace_id, grant: record.grant() })
}

type KeyRow = (Uuid, Uuid, String, String, Option<Uuid>, Option<DateTime<Utc>>, Option<DateTime<Utc>>, Option<String>);

async fn find_key(pool: &PgPool, prefix: &str) -> Result<Option<KeyRecord>, ApiError> {
    let row: Option<KeyRow> =
        sqlx::query_as("SELECT * FROM security.api_key_by_prefix($1)").bind(prefix).fetch_optional(pool).await?;
    let Some((key_id, workspace_id, key_hash, role, user_id, expires_at, revoked_at, member_role)) = row else {
        return Ok(None);
    };
    let (role, member_role) = (parse_role(&role)?, member_role.as_deref().map(parse_role).transpose()?);
    Ok(Some(KeyRecord { key_id, workspace_id, key_hash, role, user_id, expires_at, revoked_at, member_role }))
}

pub fn parse_role(raw: &str) -> Result<Role, ApiError> {
    raw.parse().map_err(|e: String| ApiError::internal(anyhow::anyhow!("{e} in the security index")))
}

/// A permission that a route requires, as a type, so that the check runs as an extractor before
/// the body is read.
pub trait RequiredPermission: Send + Sync {
    const PERMISSION: Permission;
}

macro_rules! permission_markers {
    ($($name:ident),* $(,)?) => {$(
        #[doc = concat!("Requires [`Permission::", stringify!($name), "`].")]
        pub struct $name;
        impl RequiredPermission for $name {
            const PERMISSION: Permission = Permission::$name;
        }
    )*};
}

pub mod perm {
    use super::{Permission, RequiredPermission};
    permission_markers!(WorkflowsCreate, WorkflowsEdit, WorkflowsDelete, MembersManage, ApiKeysManage, SettingsManage);
}

/// An authenticated caller of the path's workspace holding permission `P`.
pub struct Authorized<P> {
    pub caller: Caller,
    _permission: PhantomData<P>,
}

impl<P> Authorized<P> {
    pub fn workspace_id(&self) -> Uuid {
        self.caller.workspace_id
    }
}

impl<P: RequiredPermission> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = authenticate(&state.pool, &parts.headers).await?;
        let params = RawPathParams::from_request_parts(parts, state).await.map_err(|_| ApiError::NotFound)?;
        let workspace =
            params.iter().find(|(name, _)| *name == "workspace_id").and_then(|(_, value)| Uuid::try_parse(value).ok());
        if workspace != Some(caller.workspace_id) {
            return Err(ApiError::NotFound);
        }
        if !caller.can(P::PERMISSION) {
            return Err(ApiError::Forbidden(format!("this API key lacks the permission {}", P::PERMISSION.as_str())));
        }
        Ok(Authorized { caller, _permission: PhantomData })
    }
}
