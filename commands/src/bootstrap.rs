//! `flowfuse workspace create`: a new workspace and its first admin API key, appended together.

use domain::api_key::KeySecret;
use domain::validation::{KeyHash, KeyName, KeyPrefix, Slug, WorkspaceName};
use domain::{ApiKey, ApiKeyCommand, Workspace, WorkspaceCommand};
use event_schemas::Actor;
use event_schemas::types::{Plan, Role};
use sqlx::PgPool;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;
use crate::execute::{Provenance, commit, new_stream};
use crate::keys;

/// What `flowfuse workspace create` prints. The key is shown this once.
#[derive(Debug, serde::Serialize)]
pub struct CreatedWorkspace {
    pub workspace_id: Uuid,
    pub slug: String,
    pub api_key: String,
    pub api_key_id: Uuid,
}

/// Creates a workspace (the slug defaults to one made from the name) with an admin API key.
pub async fn create_workspace(
    pool: &PgPool,
    name: &str,
    slug: Option<&str>,
    plan: Plan,
) -> Result<CreatedWorkspace, ApiError> {
    let state = AppState::new(pool.clone());
    let name = WorkspaceName::parse(name)?;
    let slug = match slug {
        Some(slug) => Slug::parse(slug)?,
        None => Slug::from_name(name.as_str())?,
    };
    let (workspace_id, key_id) = (Uuid::now_v7(), Uuid::now_v7());
    let mut workspace = new_stream::<Workspace>(workspace_id, workspace_id);
    let create = WorkspaceCommand::Create { workspace_id, name, slug: slug.clone(), plan };
    let key = keys::generate();
    let secret = KeySecret {
        prefix: KeyPrefix::parse(&key.prefix).map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?,
        hash: KeyHash::parse(&key.hash).map_err(|e| ApiError::internal(anyhow::anyhow!("{e}")))?,
    };
    let mut api_key = new_stream::<ApiKey>(workspace_id, key_id);
    let issue = ApiKeyCommand::Issue {
        key_id,
        name: KeyName::parse("bootstrap admin")?,
        role: Role::Admin,
        secret,
        expires_at: None,
        user_id: None,
        issuer_role: Role::Admin,
        now: chrono::Utc::now(),
    };
    let changes = vec![workspace.decide(&create)?, api_key.decide(&issue)?];
    let request = Uuid::now_v7().to_string();
    let provenance = Provenance {
        workspace_id,
        actor: Actor::system("flowfuse workspace create"),
        correlation_id: request.clone(),
        causation_id: request,
    };
    commit(&state, &provenance, None, changes, |_| crate::response::CommandResponse::no_content(0, 0)).await?;
    Ok(CreatedWorkspace { workspace_id, slug: slug.into_inner(), api_key: key.key, api_key_id: key_id })
}
