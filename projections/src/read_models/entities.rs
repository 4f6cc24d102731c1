//! The workspace and API-key tables: what each of their events changes, statement by statement
//! (these events are few; workflows, the many, are folded set-wise in `workflows`).

use event_schemas::{ApiKeyEvent, WorkspaceEvent};
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
