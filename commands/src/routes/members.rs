//! Members and teams, all in the workspace's stream: add, change the role of and remove members;
//! create teams and add and remove their members. `If-Match` is optional here: when given, it
//! must be the workspace's current version.

use axum::extract::State;
use domain::validation::{Email, PersonName, TeamName};
use domain::{Workspace, WorkspaceCommand};
use event_schemas::types::Role;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::location;
use crate::app::AppState;
use crate::auth::{Authorized, perm};
use crate::error::ApiError;
use crate::execute::{Provenance, load, run_change};
use crate::extract::{ApiJson, ApiPath, CommandContext, IfMatch};
use crate::response::CommandResponse;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(add_member))
        .routes(routes!(change_member_role, remove_member))
        .routes(routes!(create_team))
        .routes(routes!(add_team_member))
        .routes(routes!(remove_team_member))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    email: String,
    #[schema(value_type = String, example = "developer")]
    role: Role,
    name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    #[schema(value_type = String, example = "operator")]
    role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTeamMember {
    user_id: Uuid,
}

/// Decides `command` on the workspace (at the `If-Match` version when given) and appends.
async fn change_workspace(
    state: &AppState,
    caller_key: Uuid,
    workspace_id: Uuid,
    ctx: &CommandContext,
    if_match: IfMatch,
    command: WorkspaceCommand,
    respond: impl FnOnce(i64, i64) -> CommandResponse,
) -> Result<CommandResponse, ApiError> {
    let mut loaded = load::<Workspace>(state, workspace_id, workspace_id).await?.existing()?.matching(&if_match)?;
    let change = loaded.decide(&command)?;
    let provenance = Provenance::of_request(workspace_id, caller_key, ctx);
    run_change(state, &provenance, ctx, loaded, change, respond).await
}

fn ensure_grantable<P>(auth: &Authorized<P>, role: Role) -> Result<(), ApiError> {
    if auth.caller.can_grant(role) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!("this API key cannot grant the {} role", role.as_str())))
    }
}

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/members", tag = "members",
    params(("workspace_id" = Uuid, Path)), request_body = AddMember,
    responses((status = 201, description = "The member's id is the new user id", body = crate::openapi::CommandResult)))]
async fn add_member(
    State(state): State<AppState>,
    auth: Authorized<perm::MembersManage>,
    ctx: CommandContext,
    if_match: IfMatch,
    ApiJson(body): ApiJson<AddMember>,
) -> Result<CommandResponse, ApiError> {
    let email = Email::parse(&body.email);
    let name = body.name.as_deref().map(PersonName::parse).transpose();
    let (email, name) = match (email, name) {
        (Ok(email), Ok(name)) => (email, name),
        (email, name) => {
            return Err(ApiError::Validation([email.err(), name.err()].into_iter().flatten().collect()));
        }
    };
    ensure_grantable(&auth, body.role)?;
    let (workspace_id, user_id) = (auth.workspace_id(), Uuid::now_v7());
    let command = WorkspaceCommand::AddMember { user_id, email, name, role: body.role };
    change_workspace(&state, auth.caller.key_id, workspace_id, &ctx, if_match, command, |version, position| {
        let at = location(workspace_id, &format!("/members/{user_id}"));
        CommandResponse::created(at, user_id, version, position)
    })
    .await
}

#[utoipa::path(patch, path = "/v1/workspaces/{workspace_id}/members/{user_id}", tag = "members",
    params(("workspace_id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = ChangeRole,
    responses((status = 200, body = crate::openapi::CommandResult)))]
async fn change_member_role(
    State(state): State<AppState>,
    auth: Authorized<perm::MembersManage>,
    ctx: CommandContext,
    if_match: IfMatch,
    path: ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<ChangeRole>,
) -> Result<CommandResponse, ApiError> {
    let (workspace_id, user_id) = path.0;
    ensure_grantable(&auth, body.role)?;
    let command = WorkspaceCommand::ChangeMemberRole { user_id, role: body.role };
    change_workspace(&state, auth.caller.key_id, workspace_id, &ctx, if_match, command, |version, position| {
        CommandResponse::ok(user_id, version, position)
    })
    .await
}

#[utoipa::path(delete, path = "/v1/workspaces/{workspace_id}/members/{user_id}", tag = "members",
    params(("workspace_id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204, description = "Removed; `ETag` and `X-Consistency-Token` set")))]
async fn remove_member(
    State(state): State<AppState>,
    auth: Authorized<perm::MembersManage>,
    ctx: CommandContext,
    if_match: IfMatch,
    path: ApiPath<(Uuid, Uuid)>,
) -> Result<CommandResponse, ApiError> {
    let (workspace_id, user_id) = path.0;
    let command = WorkspaceCommand::RemoveMember { user_id };
    change_workspace(&state, auth.caller.key_id, workspace_id, &ctx, if_match, command, CommandResponse::no_content)
        .await
}

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/teams", tag = "teams",
    params(("workspace_id" = Uuid, Path)), request_body = CreateTeam,
    responses((status = 201, body = crate::openapi::CommandResult)))]
async fn create_team(
    State(state): State<AppState>,
    auth: Authorized<perm::MembersManage>,
    ctx: CommandContext,
    if_match: IfMatch,
    ApiJson(body): ApiJson<CreateTeam>,
) -> Result<CommandResponse, ApiError> {
    let name = TeamName::parse(&body.name)?;
    let (workspace_id, team_id) = (auth.workspace_id(), Uuid::now_v7());
    let command = WorkspaceCommand::CreateTeam { team_id, name };
    change_workspace(&state, auth.caller.key_id, workspace_id, &ctx, if_match, command, |version, position| {
        let at = location(workspace_id, &format!("/teams/{team_id}"));
        CommandResponse::created(at, team_id, version, position)
    })
    .await
}

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/teams/{team_id}/members", tag = "teams",
    params(("workspace_id" = Uuid, Path), ("team_id" = Uuid, Path)), request_body = AddTeamMember,
    responses((status = 200, body = crate::openapi::CommandResult)))]
async fn add_team_member(
    State(state): State<AppState>,
    auth: Authorized<perm::MembersManage>,
    ctx: CommandContext,
    if_match: IfMatch,
    path: ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<AddTeamMember>,
) -> Result<CommandResponse, ApiError> {
    let (workspace_id, team_id) = path.0;
    let command = WorkspaceCommand::AddTeamMember { team_id, user_id: body.user_id };
    change_workspace(&state, auth.caller.key_id, workspace_id, &ctx, if_match, command, |version, position| {
        CommandResponse::ok(team_id, version, position)
    })
    .await
}

#[utoipa::path(delete, path = "/v1/workspaces/{workspace_id}/teams/{team_id}/members/{user_id}", tag = "teams",
    params(("workspace_id" = Uuid, Path), ("team_id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204, description = "Removed from the team")))]
async fn remove_team_member(
    State(state): State<AppState>,
    auth: Authorized<perm::MembersManage>,
    ctx: CommandContext,
    if_match: IfMatch,
    path: ApiPath<(Uuid, Uuid, Uuid)>,
) -> Result<CommandResponse, ApiError> {
    let (workspace_id, team_id, user_id) = path.0;
    let command = WorkspaceCommand::RemoveTeamMember { team_id, user_id };
    change_workspace(&state, auth.caller.key_id, workspace_id, &ctx, if_match, command, CommandResponse::no_content)
        .await
}
