//! Workflows: create, change the definition, change details, publish, promote, archive, restore
//! and roll back. Every change after creation requires `If-Match`.

use axum::extract::State;
use domain::validation::{CommitMessage, Description, Tags, ValidDefinition, WorkflowName};
use domain::{FieldError, ValidationErrors, Workflow, WorkflowCommand, Workspace};
use event_schemas::types::{Environment, WorkflowDefinition};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{double_option, location};
use crate::app::AppState;
use crate::auth::{Authorized, perm};
use crate::error::ApiError;
use crate::execute::{Provenance, load, load_expecting, new_stream, run_change};
use crate::extract::{ApiJson, ApiPath, CommandContext, IfMatch};
use crate::response::CommandResponse;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(change_definition))
        .routes(routes!(change_details))
        .routes(routes!(publish))
        .routes(routes!(promote))
        .routes(routes!(archive))
        .routes(routes!(restore))
        .routes(routes!(roll_back))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkflow {
    name: String,
    description: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    team_id: Option<Uuid>,
    /// `{"nodes": [{"id", "type", "name", "position": {"x", "y"}, "config"}], "edges": [{"id", "source", "target", "condition"?}]}`
    #[schema(value_type = Object)]
    definition: WorkflowDefinition,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeDefinition {
    #[schema(value_type = Object)]
    definition: WorkflowDefinition,
    message: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeDetails {
    name: Option<String>,
    /// `null` clears the description.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Promote {
    #[schema(value_type = String, example = "staging")]
    environment: Environment,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollBack {
    to_version: i64,
}

/// Collects the field errors of several parses, so that one response names them all.
#[derive(Default)]
struct Fields(Vec<FieldError>);

impl Fields {
    fn take<T>(&mut self, parsed: Result<T, impl Into<ValidationErrors>>) -> Option<T> {
        parsed.map_err(|e| self.0.extend(e.into().0)).ok()
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(ApiError::Validation(self.0)),
        }
    }
}

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/workflows", tag = "workflows",
    params(("workspace_id" = Uuid, Path)), request_body = CreateWorkflow,
    responses((status = 201, description = "Created; `Location`, `ETag` and `X-Consistency-Token` set", body = crate::openapi::CommandResult)))]
async fn create(
    State(state): State<AppState>,
    auth: Authorized<perm::WorkflowsCreate>,
    ctx: CommandContext,
    ApiJson(body): ApiJson<CreateWorkflow>,
) -> Result<CommandResponse, ApiError> {
    let workspace_id = auth.workspace_id();
    let mut fields = Fields::default();
    let name = fields.take(WorkflowName::parse(&body.name));
    let description = body.description.as_deref().map(|d| fields.take(Description::parse(d)));
    let tags = fields.take(Tags::parse(&body.tags));
    let definition = fields.take(ValidDefinition::parse(body.definition));
    let (name, tags, definition) = fields.finish(name.zip(tags).zip(definition).map(|((n, t), d)| (n, t, d)))?;
    if let Some(team_id) = body.team_id {
        let workspace = load::<Workspace>(&state, workspace_id, workspace_id).await?;
        if !workspace.state.teams.contains_key(&team_id) {
            return Err(ApiError::field("team_id", "unknown_team", "no team of this workspace has this id"));
        }
    }
    let workflow_id = Uuid::now_v7();
    let mut loaded = new_stream::<Workflow>(workspace_id, workflow_id);
    let command = WorkflowCommand::Create {
        workflow_id,
        name,
        description: description.flatten(),
        tags,
        team_id: body.team_id,
        definition,
    };
    let change = loaded.decide(&command)?;
    let provenance = Provenance::of_request(workspace_id, auth.caller.key_id, &ctx);
    run_change(&state, &provenance, &ctx, loaded, change, |version, position| {
        CommandResponse::created(
            location(workspace_id, &format!("/workflows/{workflow_id}")),
            workflow_id,
            version,
            position,
        )
    })
    .await
}

/// Loads the workflow at the client's `If-Match` version, decides `command`, appends.
async fn update(
    state: &AppState,
    workspace_id: Uuid,
    key_id: Uuid,
    ctx: &CommandContext,
    if_match: IfMatch,
    workflow_id: Uuid,
    command: Result<WorkflowCommand, ApiError>,
) -> Result<CommandResponse, ApiError> {
    let expected = if_match.required()?;
    let loaded = load_expecting::<Workflow>(state, workspace_id, workflow_id, expected).await?.existing()?;
    let command = command?;
    let mut loaded = loaded.at_version(expected)?;
    let change = loaded.decide(&command)?;
    let provenance = Provenance::of_request(workspace_id, key_id, ctx);
    run_change(state, &provenance, ctx, loaded, change, |version, position| {
        CommandResponse::ok(workflow_id, version, position)
    })
    .await
}

#[utoipa::path(put, path = "/v1/workspaces/{workspace_id}/workflows/{workflow_id}/definition", tag = "workflows",
    params(("workspace_id" = Uuid, Path), ("workflow_id" = Uuid, Path), ("If-Match" = String, Header)),
    request_body = ChangeDefinition, responses((status = 200, body = crate::openapi::CommandResult)))]
async fn change_definition(
    State(state): State<AppState>,
    auth: Authorized<perm::WorkflowsEdit>,
    ctx: CommandContext,
    if_match: IfMatch,
    path: ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<ChangeDefinition>,
) -> Result<CommandResponse, ApiError> {
    let (_, workflow_id) = path.0;
    let mut fields = Fields::default();
    let definition = fields.take(ValidDefinition::parse(body.definition));
    let message = fields.take(CommitMessage::parse(&body.message));
    let command = fields
        .finish(definition.zip(message))
        .map(|(definition, message)| WorkflowCommand::ChangeDefinition { definition, message });
    update(&state, auth.workspace_id(), auth.caller.key_id, &ctx, if_match, workflow_id, command).await
}

#[utoipa::path(patch, path = "/v1/workspaces/{workspace_id}/workflows/{workflow_id}", tag = "workflows",
    params(("workspace_id" = Uuid, Path), ("workflow_id" = Uuid, Path), ("If-Match" = String, Header)),
    request_body = ChangeDetails, responses((status = 200, body = crate::openapi::CommandResult)))]
async fn change_details(
    State(state): State<AppState>,
    auth: Authorized<perm::WorkflowsEdit>,
    ctx: CommandContext,
    if_match: IfMatch,
    path: ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<ChangeDetails>,
) -> Result<CommandResponse, ApiError> {
    let (_, workflow_id) = path.0;
    let mut fields = Fields::default();
    let name = body.name.as_deref().map(|n| fields.take(WorkflowName::parse(n)));
    let description = body.description.map(|d| d.map(|d| fields.take(Description::parse(&d))));
    let tags = body.tags.as_deref().map(|t| fields.take(Tags::parse(t)));
    let command = fields.finish(Some(())).map(|()| WorkflowCommand::ChangeDetails {
        name: name.flatten(),
        description: description.map(Option::flatten),
        tags: tags.flatten(),
    });
    update(&state, auth.workspace_id(), auth.caller.key_id, &ctx, if_match, workflow_id, command).await
}

macro_rules! lifecycle_route {
    ($name:ident, $suffix:literal, $permission:ty, $command:expr) => {
        #[utoipa::path(post, path = concat!("/v1/workspaces/{workspace_id}/workflows/{workflow_id}/", $suffix), tag = "workflows",
            params(("workspace_id" = Uuid, Path), ("workflow_id" = Uuid, Path), ("If-Match" = String, Header)),
            responses((status = 200, body = crate::openapi::CommandResult)))]
        async fn $name(
            State(state): State<AppState>,
            auth: Authorized<$permission>,
            ctx: CommandContext,
            if_match: IfMatch,
            path: ApiPath<(Uuid, Uuid)>,
        ) -> Result<CommandResponse, ApiError> {
            let (_, workflow_id) = path.0;
            update(&state, auth.workspace_id(), auth.caller.key_id, &ctx, if_match, workflow_id, Ok($command)).await
        }
    };
}

lifecycle_route!(publish, "publish", perm::WorkflowsEdit, WorkflowCommand::Publish);
lifecycle_route!(archive, "archive", perm::WorkflowsDelete, WorkflowCommand::Archive);
lifecycle_route!(restore, "restore", perm::WorkflowsDelete, WorkflowCommand::Restore);

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/workflows/{workflow_id}/promote", tag = "workflows",
    params(("workspace_id" = Uuid, Path), ("workflow_id" = Uuid, Path), ("If-Match" = String, Header)),
    request_body = Promote, responses((status = 200, body = crate::openapi::CommandResult)))]
async fn promote(
    State(state): State<AppState>,
    auth: Authorized<perm::WorkflowsEdit>,
    ctx: CommandContext,
    if_match: IfMatch,
    path: ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<Promote>,
) -> Result<CommandResponse, ApiError> {
    let (_, workflow_id) = path.0;
    let command = WorkflowCommand::Promote { environment: body.environment };
    update(&state, auth.workspace_id(), auth.caller.key_id, &ctx, if_match, workflow_id, Ok(command)).await
}

#[utoipa::path(post, path = "/v1/workspaces/{workspace_id}/workflows/{workflow_id}/rollback", tag = "workflows",
    params(("workspace_id" = Uuid, Path), ("workflow_id" = Uuid, Path), ("If-Match" = String, Header)),
    request_body = RollBack, responses((status = 200, body = crate::openapi::CommandResult)))]
async fn roll_back(
    State(state): State<AppState>,
    auth: Authorized<perm::WorkflowsEdit>,
    ctx: CommandContext,
    if_match: IfMatch,
    path: ApiPath<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<RollBack>,
) -> Result<CommandResponse, ApiError> {
    let (_, workflow_id) = path.0;
    let command = WorkflowCommand::RollBack { to_version: body.to_version };
    update(&state, auth.workspace_id(), auth.caller.key_id, &ctx, if_match, workflow_id, Ok(command)).await
}
