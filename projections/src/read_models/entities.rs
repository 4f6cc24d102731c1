//! The entity tables: what each workspace, API-key and workflow event changes.

use event_schemas::{ApiKeyEvent, WorkflowEvent, WorkspaceEvent};
use sqlx::PgConnection;

use crate::cloudevents::ProjectedEvent;

pub(super) async fn workspace(
    conn: &mut PgConnection,
    event: &ProjectedEvent,
    e: &WorkspaceEvent,
) -> Result<(), sqlx::Error> {
    let ws = event.workspace_id;
    match e {
        WorkspaceEvent::Created(c) => {
            sqlx::query(
                "INSERT INTO workspaces (workspace_id, name, slug, plan, version, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(ws)
            .bind(&c.name)
            .bind(&c.slug)
            .bind(c.plan.as_str())
            .bind(event.version)
            .bind(event.occurred_at)
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        WorkspaceEvent::Renamed(r) => {
            sqlx::query("UPDATE workspaces SET name = $2 WHERE workspace_id = $1")
                .bind(ws)
                .bind(&r.name)
                .execute(&mut *conn)
                .await?;
        }
        WorkspaceEvent::PlanChanged(p) => {
            sqlx::query("UPDATE workspaces SET plan = $2 WHERE workspace_id = $1")
                .bind(ws)
                .bind(p.to.as_str())
                .execute(&mut *conn)
                .await?;
        }
        WorkspaceEvent::SettingsChanged(s) => {
            sqlx::query("UPDATE workspaces SET settings = $2 WHERE workspace_id = $1")
                .bind(ws)
                .bind(serde_json::Value::Object(s.settings.clone()))
                .execute(&mut *conn)
                .await?;
        }
        WorkspaceEvent::MemberAdded(m) => {
            sqlx::query(
                "INSERT INTO members (workspace_id, user_id, email, name, role, added_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(ws)
            .bind(m.user_id)
            .bind(&m.email)
            .bind(&m.name)
            .bind(m.role.as_str())
            .bind(event.occurred_at)
            .execute(&mut *conn)
            .await?;
        }
        WorkspaceEvent::MemberRoleChanged(m) => {
            sqlx::query("UPDATE members SET role = $3 WHERE workspace_id = $1 AND user_id = $2")
                .bind(ws)
                .bind(m.user_id)
                .bind(m.to.as_str())
                .execute(&mut *conn)
                .await?;
        }
        WorkspaceEvent::MemberRemoved(m) => {
            sqlx::query(
                "WITH gone AS (DELETE FROM members WHERE workspace_id = $1 AND user_id = $2)
                 DELETE FROM team_members WHERE workspace_id = $1 AND user_id = $2",
            )
            .bind(ws)
            .bind(m.user_id)
            .execute(&mut *conn)
            .await?;
        }
        WorkspaceEvent::TeamCreated(t) => {
            sqlx::query("INSERT INTO teams (workspace_id, team_id, name, created_at) VALUES ($1, $2, $3, $4)")
                .bind(ws)
                .bind(t.team_id)
                .bind(&t.name)
                .bind(event.occurred_at)
                .execute(&mut *conn)
                .await?;
        }
        WorkspaceEvent::TeamMemberAdded(t) => {
            sqlx::query("INSERT INTO team_members (workspace_id, team_id, user_id) VALUES ($1, $2, $3)")
                .bind(ws)
                .bind(t.team_id)
                .bind(t.user_id)
                .execute(&mut *conn)
                .await?;
        }
        WorkspaceEvent::TeamMemberRemoved(t) => {
            sqlx::query("DELETE FROM team_members WHERE workspace_id = $1 AND team_id = $2 AND user_id = $3")
                .bind(ws)
                .bind(t.team_id)
                .bind(t.user_id)
                .execute(&mut *conn)
                .await?;
        }
    }
    sqlx::query("UPDATE workspaces SET version = $2, updated_at = $3 WHERE workspace_id = $1")
        .bind(ws)
        .bind(event.version)
        .bind(event.occurred_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn api_key(
    conn: &mut PgConnection,
    event: &ProjectedEvent,
    e: &ApiKeyEvent,
) -> Result<(), sqlx::Error> {
    let (ws, key_id) = (event.workspace_id, event.stream_id.id());
    let query = match e {
        ApiKeyEvent::Issued(i) => sqlx::query(
            "INSERT INTO api_keys (workspace_id, key_id, name, role, prefix, user_id, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(ws)
        .bind(key_id)
        .bind(&i.name)
        .bind(i.role.as_str())
        .bind(&i.prefix)
        .bind(i.user_id)
        .bind(i.expires_at)
        .bind(event.occurred_at),
        ApiKeyEvent::Rotated(r) => {
            sqlx::query("UPDATE api_keys SET prefix = $3, rotated_at = $4 WHERE workspace_id = $1 AND key_id = $2")
                .bind(ws)
                .bind(key_id)
                .bind(&r.prefix)
                .bind(event.occurred_at)
        }
        ApiKeyEvent::Revoked(_) => {
            sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE workspace_id = $1 AND key_id = $2")
                .bind(ws)
                .bind(key_id)
                .bind(event.occurred_at)
        }
    };
    query.execute(&mut *conn).await?;
    Ok(())
}

pub(super) async fn workflow(
    conn: &mut PgConnection,
    event: &ProjectedEvent,
    e: &WorkflowEvent,
) -> Result<(), sqlx::Error> {
    let (ws, id) = (event.workspace_id, event.stream_id.id());
    let json = |v| serde_json::to_value(v).unwrap_or_default();
    let message = match e {
        WorkflowEvent::Created(c) => {
            sqlx::query(
                "INSERT INTO workflows (workspace_id, workflow_id, name, description, tags, team_id, status,
                     definition, version, created_by, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'draft', $7, $8, $9, $10, $10)",
            )
            .bind(ws)
            .bind(id)
            .bind(&c.name)
            .bind(&c.description)
            .bind(&c.tags)
            .bind(c.team_id)
            .bind(json(&c.definition))
            .bind(event.version)
            .bind(&event.actor.id)
            .bind(event.occurred_at)
            .execute(&mut *conn)
            .await?;
            None
        }
        WorkflowEvent::DefinitionChanged(d) => {
            set_definition(conn, event, json(&d.definition)).await?;
            Some(d.message.clone())
        }
        WorkflowEvent::RolledBack(r) => {
            set_definition(conn, event, json(&r.definition)).await?;
            Some(format!("rolled back to version {}", r.to_version))
        }
        WorkflowEvent::DetailsChanged(d) => {
            sqlx::query(
                "UPDATE workflows SET name = $3, description = $4, tags = $5
                 WHERE workspace_id = $1 AND workflow_id = $2",
            )
            .bind(ws)
            .bind(id)
            .bind(&d.name)
            .bind(&d.description)
            .bind(&d.tags)
            .execute(&mut *conn)
            .await?;
            None
        }
        WorkflowEvent::Published(p) => {
            sqlx::query(
                "UPDATE workflows SET status = 'published', published_version = $3
                 WHERE workspace_id = $1 AND workflow_id = $2",
            )
            .bind(ws)
            .bind(id)
            .bind(p.version)
            .execute(&mut *conn)
            .await?;
            None
        }
        WorkflowEvent::Promoted(p) => {
            let name = serde_json::to_value(p.environment).unwrap_or_default();
            let environment = serde_json::json!({ (name.as_str().unwrap_or_default()): p.version });
            sqlx::query(
                "UPDATE workflows SET environments = environments || $3
                 WHERE workspace_id = $1 AND workflow_id = $2",
            )
            .bind(ws)
            .bind(id)
            .bind(environment)
            .execute(&mut *conn)
            .await?;
            None
        }
        WorkflowEvent::Archived(_) => {
            sqlx::query(
                "UPDATE workflows SET status_before_archive = status, status = 'archived'
                 WHERE workspace_id = $1 AND workflow_id = $2",
            )
            .bind(ws)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            None
        }
        WorkflowEvent::Restored(_) => {
            sqlx::query(
                "UPDATE workflows SET status = status_before_archive WHERE workspace_id = $1 AND workflow_id = $2",
            )
            .bind(ws)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            None
        }
    };
    // Every event is a version: record it with the definition then in force.
    sqlx::query(
        "WITH current AS (
             UPDATE workflows SET version = $3, updated_at = $4
             WHERE workspace_id = $1 AND workflow_id = $2
             RETURNING definition
         )
         INSERT INTO workflow_versions (workspace_id, workflow_id, version, event_type, author, message,
             occurred_at, position, definition)
         SELECT $1, $2, $3, $5, $6, $7, $4, $8, definition FROM current",
    )
    .bind(ws)
    .bind(id)
    .bind(event.version)
    .bind(event.occurred_at)
    .bind(&event.event_type)
    .bind(&event.actor.id)
    .bind(message)
    .bind(event.global_position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A new definition; a published workflow becomes a draft again.
async fn set_definition(
    conn: &mut PgConnection,
    event: &ProjectedEvent,
    definition: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE workflows
         SET definition = $3, status = CASE WHEN status = 'published' THEN 'draft' ELSE status END
         WHERE workspace_id = $1 AND workflow_id = $2",
    )
    .bind(event.workspace_id)
    .bind(event.stream_id.id())
    .bind(definition)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
