//! The workspace itself: rename, change settings, change plan.

use axum::extract::State;
use domain::validation::{Settings, WorkspaceName};
use domain::{Workspace, WorkspaceCommand};
use event_schemas::types::Plan;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::auth::{Authorized, perm};
use crate::error::ApiError;
use crate::execute::{Provenance, load, run_change};
use crate::extract::{ApiJson, CommandContext, IfMatch};
use crate::response::CommandResponse;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(change_workspace)).routes(routes!(change_plan))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeWorkspace {
    name: Option<String>,
    /// The whole settings object (replaces the current one).
    #[schema(value_type = Option<Object>)]
    settings: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlan {
    #[schema(value_type = String, example = "pro")]
    plan: Plan,
}

#[utoipa::path(patch, path = "/v1/workspaces/{workspace_id}", tag = "workspace",
    params(("workspace_id" = uuid::Uuid, Path), ("If-Match" = String, Header)),
    request_body = ChangeWorkspace, responses((status = 200, body = crate::openapi::CommandResult)))]
async fn change_workspace(
    State(state): State<AppState>,
    auth: Authorized<perm::SettingsManage>,
    ctx: CommandContext,
    if_match: IfMatch,
    ApiJson(body): ApiJson<ChangeWorkspace>,
) -> Result<CommandResponse, ApiError> {
    let mut errors = Vec::new();
    let mut commands = Vec::new();
    if let Some(name) = body.name.as_deref() {
        match WorkspaceName::parse(name) {
            Ok(name) => commands.push(WorkspaceCommand::Rename { name }),
            Err(error) => errors.push(error),
        }
    }
    if let Some(settings) = &body.settings {
        match Settings::parse(settings) {
            Ok(settings) => commands.push(WorkspaceCommand::ChangeSettings { settings }),
            Err(error) => errors.push(error),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    change(&state, &auth, &ctx, if_match.required()?, commands).await
}

#[utoipa::path(put, path = "/v1/workspaces/{workspace_id}/plan", tag = "workspace",
    params(("workspace_id" = uuid::Uuid, Path), ("If-Match" = String, Header)),
    request_body = ChangePlan, responses((status = 200, body = crate::openapi::CommandResult)))]
async fn change_plan(
    State(state): State<AppState>,
    auth: Authorized<perm::SettingsManage>,
    ctx: CommandContext,
    if_match: IfMatch,
    ApiJson(body): ApiJson<ChangePlan>,
) -> Result<CommandResponse, ApiError> {
    let commands = vec![WorkspaceCommand::ChangePlan { plan: body.plan }];
    change(&state, &auth, &ctx, if_match.required()?, commands).await
}

async fn change<P>(
    state: &AppState,
    auth: &Authorized<P>,
    ctx: &CommandContext,
    expected: i64,
    commands: Vec<WorkspaceCommand>,
) -> Result<CommandResponse, ApiError> {
    let workspace_id = auth.workspace_id();
    let mut loaded = load::<Workspace>(state, workspace_id, workspace_id).await?.existing()?.at_version(expected)?;
    let provenance = Provenance::of_request(workspace_id, auth.caller.key_id, ctx);
    let change = loaded.decide_all(&commands)?;
    run_change(state, &provenance, ctx, loaded, change, |version, position| {
        CommandResponse::ok(workspace_id, version, position)
    })
    .await
}
