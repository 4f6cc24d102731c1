//! The security index (ARCHITECTURE.md decision 7), written in the same transaction as the
//! events it follows: API keys, memberships, workspace slugs and workflow-name reservations.
//! A unique violation here is a conflict the client caused (a taken name or slug).

use event_schemas::{ApiKeyEvent, Event, StreamId, WorkflowEvent, WorkspaceEvent};
use sqlx::PgConnection;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use uuid::Uuid;

use crate::error::ApiError;

type Statement = Query<'static, sqlx::Postgres, PgArguments>;

/// The key under which workflow names are unique: names compare case-insensitively.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// Applies the effects of `events`, appended to `stream_id` of `workspace_id`, to the index.
pub async fn apply(
    conn: &mut PgConnection,
    workspace_id: Uuid,
    stream_id: &StreamId,
    events: &[Event],
) -> Result<(), ApiError> {
    let id = stream_id.id();
    for event in events {
        let statement = match event {
            Event::Workspace(event) => workspace_statement(workspace_id, event),
            Event::ApiKey(event) => api_key_statement(workspace_id, id, event),
            Event::Workflow(event) => workflow_statement(workspace_id, id, event),
        };
        if let Some(statement) = statement {
            statement.execute(&mut *conn).await.map_err(on_unique)?;
        }
    }
    Ok(())
}

fn workspace_statement(workspace_id: Uuid, event: &WorkspaceEvent) -> Option<Statement> {
    Some(match event {
        WorkspaceEvent::Created(e) => {
            sqlx::query("INSERT INTO security.workspaces (workspace_id, slug, plan) VALUES ($1, $2, $3)")
                .bind(workspace_id)
                .bind(e.slug.clone())
                .bind(e.plan.as_str())
        }
        WorkspaceEvent::PlanChanged(e) => {
            sqlx::query("UPDATE security.workspaces SET plan = $2 WHERE workspace_id = $1")
                .bind(workspace_id)
                .bind(e.to.as_str())
        }
        WorkspaceEvent::MemberAdded(e) => {
            sqlx::query("INSERT INTO security.members (workspace_id, user_id, role) VALUES ($1, $2, $3)")
                .bind(workspace_id)
                .bind(e.user_id)
                .bind(e.role.as_str())
        }
        WorkspaceEvent::MemberRoleChanged(e) => {
            sqlx::query("UPDATE security.members SET role = $3 WHERE workspace_id = $1 AND user_id = $2")
                .bind(workspace_id)
                .bind(e.user_id)
                .bind(e.to.as_str())
        }
        WorkspaceEvent::MemberRemoved(e) => {
            sqlx::query("DELETE FROM security.members WHERE workspace_id = $1 AND user_id = $2")
                .bind(workspace_id)
                .bind(e.user_id)
        }
        _ => return None,
    })
}

fn api_key_statement(workspace_id: Uuid, key_id: Uuid, event: &ApiKeyEvent) -> Option<Statement> {
    Some(match event {
        ApiKeyEvent::Issued(e) => sqlx::query(
            "INSERT INTO security.api_keys (key_id, workspace_id, prefix, key_hash, role, user_id, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key_id)
        .bind(workspace_id)
        .bind(e.prefix.clone())
        .bind(e.key_hash.clone())
        .bind(e.role.as_str())
        .bind(e.user_id)
        .bind(e.expires_at),
        ApiKeyEvent::Rotated(e) => {
            sqlx::query("UPDATE security.api_keys SET prefix = $2, key_hash = $3 WHERE key_id = $1")
                .bind(key_id)
                .bind(e.prefix.clone())
                .bind(e.key_hash.clone())
        }
        ApiKeyEvent::Revoked(_) => {
            sqlx::query("UPDATE security.api_keys SET revoked_at = now() WHERE key_id = $1").bind(key_id)
        }
    })
}

fn workflow_statement(workspace_id: Uuid, workflow_id: Uuid, event: &WorkflowEvent) -> Option<Statement> {
    Some(match event {
        WorkflowEvent::Created(e) => {
            sqlx::query("INSERT INTO security.workflow_names (workflow_id, workspace_id, name_key) VALUES ($1, $2, $3)")
                .bind(workflow_id)
                .bind(workspace_id)
                .bind(name_key(&e.name))
        }
        WorkflowEvent::DetailsChanged(e) => {
            sqlx::query("UPDATE security.workflow_names SET name_key = $2 WHERE workflow_id = $1")
                .bind(workflow_id)
                .bind(name_key(&e.name))
        }
        WorkflowEvent::Archived(_) => {
            sqlx::query("UPDATE security.workflow_names SET archived = true WHERE workflow_id = $1").bind(workflow_id)
        }
        WorkflowEvent::Restored(_) => {
            sqlx::query("UPDATE security.workflow_names SET archived = false WHERE workflow_id = $1").bind(workflow_id)
        }
        _ => return None,
    })
}

/// Unique violations become 409s that say what is taken; anything else is internal.
fn on_unique(error: sqlx::Error) -> ApiError {
    let constraint = error
        .as_database_error()
        .filter(|db| db.is_unique_violation())
        .and_then(|db| db.constraint());
    match constraint {
        Some("workspaces_slug_key") => ApiError::conflict("slug: another workspace already uses this slug"),
        Some("workflow_names_active_key") => {
            ApiError::conflict("name: another active workflow of this workspace has this name")
        }
        Some(other) => ApiError::conflict(format!("conflict on {other}")),
        None => ApiError::internal(error),
    }
}
