//! API keys: issue (with a role no greater than the issuer's, optionally acting for a member),
//! rotate and revoke. The key appears once, in the response that creates it.

use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::api_key::KeySecret;
use domain::validation::{KeyHash, KeyName, KeyPrefix};
use domain::{ApiKey, ApiKeyCommand};
use event_schemas::types::Role;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::location;
use crate::app::AppState;
use crate::auth::{Authorized, parse_role, perm};
use crate::error::ApiError;
use crate::execute::{Provenance, load, new_stream, run_change};
use crate::extract::{ApiJson, ApiPath, CommandContext, IfMatch};
use crate::keys;
use crate::response::CommandResponse;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(issue)).routes(routes!(rotate)).routes(routes!(revoke))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueKey {
    name: String,
    #[schema(value_type = String, example = "developer")]
    role: Role,
    expires_at: Option<DateTime<Utc>>,
    /// The member the key acts for: it never has more than that member and dies with the membership.
    user_id: Option<Uuid>,
}

/// A fresh key's public half, validated as the domain expects it.
fn fresh_secret() -> Result<(keys::NewKey, KeySecret), ApiError> {
    let key = keys::generate();
    let secret = KeySecret {
        prefix: KeyPrefix::parse(&key.prefix).map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?,
        hash: KeyHash::parse(&key.hash).map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?,
    };
    Ok((key, secret))
}

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/api-keys", tag = "api-keys",
    params(("workspace_id" = Uuid, Path)), request_body = IssueKey,
    responses((status = 201, description = "`key` is shown here once and never again", body = crate::openapi::IssuedKey)))]
async fn issue(
    State(state): State<AppState>,
    auth: Authorized<perm::ApiKeysManage>,
    ctx: CommandContext,
    ApiJson(body): ApiJson<IssueKey>,
) -> Result<CommandResponse, ApiError> {
    let workspace_id = auth.workspace_id();
    let name = KeyName::parse(&body.name)?;
    if !auth.caller.can_grant(body.role) {
        return Err(ApiError::Forbidden(format!(
            "this API key cannot issue a key with the {} role",
            body.role.as_str()
        )));
    }
    if let Some(user_id) = body.user_id {
        let member_role = member_role(&state, workspace_id, user_id).await?;
        if !domain::can_grant(member_role, body.role) {
            return Err(ApiError::field(
                "role",
                "exceeds_member",
                "a key cannot have more than the member it acts for",
            ));
        }
    }
    let key_id = Uuid::now_v7();
    let (new_key, secret) = fresh_secret()?;
    let mut loaded = new_stream::<ApiKey>(workspace_id, key_id);
    let command = ApiKeyCommand::Issue {
        key_id,
        name,
        role: body.role,
        secret,
        expires_at: body.expires_at,
        user_id: body.user_id,
        issuer_role: auth.caller.grant.role,
        now: Utc::now(),
    };
    let change = loaded.decide(&command)?;
    let provenance = Provenance::of_request(workspace_id, auth.caller.key_id, &ctx);
    run_change(&state, &provenance, &ctx, loaded, change, |version, position| {
        let details =
            json!({"name": body.name, "role": body.role, "expires_at": body.expires_at, "user_id": body.user_id});
        key_response(workspace_id, key_id, &new_key, version, position, details)
    })
    .await
}

/// 201 with the key, shown this once: it is never stored, not even for idempotent replay.
fn key_response(
    workspace_id: Uuid,
    key_id: Uuid,
    key: &keys::NewKey,
    version: i64,
    position: i64,
    details: serde_json::Value,
) -> CommandResponse {
    let mut body =
        json!({"id": key_id, "key": key.key, "prefix": key.prefix, "version": version, "position": position});
    if let (Some(body), serde_json::Value::Object(details)) = (body.as_object_mut(), details) {
        body.extend(details);
    }
    let at = location(workspace_id, &format!("/api-keys/{key_id}"));
    let mut response = CommandResponse::created(at, key_id, version, position).with_body(body);
    response.secret_fields = &["key"];
    response
}

async fn member_role(state: &AppState, workspace_id: Uuid, user_id: Uuid) -> Result<Role, ApiError> {
    let role: Option<(String,)> =
        sqlx::query_as("SELECT role FROM security.members WHERE workspace_id = $1 AND user_id = $2")
            .bind(workspace_id)
            .bind(user_id)
            .fetch_optional(&state.pool)
            .await?;
    let (role,) = role.ok_or_else(|| ApiError::field("user_id", "unknown_member", "no member has this id"))?;
    parse_role(&role)
}

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/api-keys/{key_id}/rotate", tag = "api-keys",
    params(("workspace_id" = Uuid, Path), ("key_id" = Uuid, Path)),
    responses((status = 201, description = "The new `key`, shown once; the old one stops working", body = crate::openapi::IssuedKey)))]
async fn rotate(
    State(state): State<AppState>,
    auth: Authorized<perm::ApiKeysManage>,
    ctx: CommandContext,
    if_match: IfMatch,
    path: ApiPath<(Uuid, Uuid)>,
) -> Result<CommandResponse, ApiError> {
    let (workspace_id, key_id) = path.0;
    let mut loaded = load::<ApiKey>(&state, workspace_id, key_id).await?.existing()?.matching(&if_match)?;
    let (new_key, secret) = fresh_secret()?;
    let change = loaded.decide(&ApiKeyCommand::Rotate { secret })?;
    let provenance = Provenance::of_request(workspace_id, auth.caller.key_id, &ctx);
    run_change(&state, &provenance, &ctx, loaded, change, |version, position| {
        key_response(workspace_id, key_id, &new_key, version, position, json!({}))
    })
    .await
}

#[utoipa::path(delete, path = "/v1/workspaces/{workspace_id}/api-keys/{key_id}", tag = "api-keys",
    params(("workspace_id" = Uuid, Path), ("key_id" = Uuid, Path)),
    responses((status = 204, description = "Revoked: the key is refused from the next request on")))]
async fn revoke(
    State(state): State<AppState>,
    auth: Authorized<perm::ApiKeysManage>,
    ctx: CommandContext,
    if_match: IfMatch,
    path: ApiPath<(Uuid, Uuid)>,
) -> Result<CommandResponse, ApiError> {
    let (workspace_id, key_id) = path.0;
    let mut loaded = load::<ApiKey>(&state, workspace_id, key_id).await?.existing()?.matching(&if_match)?;
    let change = loaded.decide(&ApiKeyCommand::Revoke)?;
    let provenance = Provenance::of_request(workspace_id, auth.caller.key_id, &ctx);
    run_change(&state, &provenance, &ctx, loaded, change, CommandResponse::no_content).await
}
