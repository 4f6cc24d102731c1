//! What each event does to the read models. Entity tables change event by event, in order; the
//! audit log and the daily activity counts are collected and written once per batch.
//!
//! Table names are unqualified: the projector's transactions set `search_path` to `read_model`,
//! and a rebuild's to its shadow schema, so the same statements build both.

use std::collections::HashMap;

use chrono::NaiveDate;
use event_schemas::{ApiKeyEvent, Event, WorkflowEvent, WorkspaceEvent};
use sqlx::PgConnection;

use crate::cloudevents::ProjectedEvent;

/// The projections, each a group of read-model tables with its own position.
pub const PROJECTIONS: [&str; 5] = ["workspaces", "api_keys", "workflows", "audit_log", "activity"];

/// The tables of a projection.
pub fn tables_of(projection: &str) -> &'static [&'static str] {
    match projection {
        "workspaces" => &["workspaces", "members", "teams", "team_members"],
        "api_keys" => &["api_keys"],
        "workflows" => &["workflows", "workflow_versions"],
        "audit_log" => &["audit_log"],
        "activity" => &["activity_daily"],
        _ => &[],
    }
}

/// Which projections a transaction writes: all of them (the projector) or some (a rebuild).
#[derive(Debug, Clone, Copy)]
pub struct Selection(u8);

impl Selection {
    pub const ALL: Selection = Selection(0b11111);

    pub fn of(names: &[&str]) -> Selection {
        Selection(names.iter().filter_map(|n| PROJECTIONS.iter().position(|p| p == n)).fold(0, |bits, i| bits | 1 << i))
    }

    pub fn contains(self, projection: &str) -> bool {
        PROJECTIONS.iter().position(|p| *p == projection).is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

/// Rows collected over a batch, written by [`Pending::flush`].
#[derive(Default)]
pub struct Pending {
    audit: Vec<AuditRow>,
    activity: HashMap<(uuid::Uuid, NaiveDate), i64>,
    positions: HashMap<&'static str, i64>,
}

struct AuditRow {
    workspace_id: uuid::Uuid,
    position: i64,
    event: ProjectedEvent,
    summary: String,
}

impl Pending {
    fn reached(&mut self, projection: &'static str, position: i64) {
        let entry = self.positions.entry(projection).or_insert(position);
        *entry = (*entry).max(position);
    }

    /// Writes the audit rows and activity counts, and returns the positions reached, without
    /// recording them (a rebuild records them when it swaps).
    pub async fn flush_into(mut self, conn: &mut PgConnection) -> Result<HashMap<&'static str, i64>, sqlx::Error> {
        let positions = std::mem::take(&mut self.positions);
        self.flush(conn).await?;
        Ok(positions)
    }

    /// Writes the audit rows, activity counts and positions collected so far.
    pub async fn flush(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if !self.audit.is_empty() {
            let rows = &self.audit;
            sqlx::query(
                "INSERT INTO audit_log (workspace_id, position, occurred_at, actor_kind, actor_id,
                     event_type, stream_id, version, correlation_id, summary)
                 SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[],
                     $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[])
                 ON CONFLICT (workspace_id, position) DO NOTHING",
            )
            .bind(rows.iter().map(|r| r.workspace_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.event.occurred_at).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| actor_kind(&r.event)).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.event.actor.id.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.event.event_type.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.event.stream_id.to_string()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.event.version).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.event.correlation_id.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.summary.as_str()).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        if !self.activity.is_empty() {
            let (keys, counts): (Vec<_>, Vec<i64>) = self.activity.into_iter().unzip();
            sqlx::query(
                "INSERT INTO activity_daily (workspace_id, day, events)
                 SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::bigint[])
                 ON CONFLICT (workspace_id, day) DO UPDATE SET events = activity_daily.events + EXCLUDED.events",
            )
            .bind(keys.iter().map(|(ws, _)| *ws).collect::<Vec<_>>())
            .bind(keys.iter().map(|(_, day)| *day).collect::<Vec<_>>())
            .bind(counts)
            .execute(&mut *conn)
            .await?;
        }
        if !self.positions.is_empty() {
            let (names, positions): (Vec<&str>, Vec<i64>) = self.positions.into_iter().unzip();
            sqlx::query(
                "INSERT INTO projections.positions (projection, position)
                 SELECT * FROM UNNEST($1::text[], $2::bigint[])
                 ON CONFLICT (projection) DO UPDATE
                 SET position = GREATEST(positions.position, EXCLUDED.position), updated_at = now()",
            )
            .bind(names)
            .bind(positions)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

fn actor_kind(event: &ProjectedEvent) -> &'static str {
    match event.actor.kind {
        event_schemas::ActorKind::ApiKey => "api_key",
        event_schemas::ActorKind::User => "user",
        event_schemas::ActorKind::System => "system",
    }
}

/// Applies one event (already decoded) to the selected read models.
pub async fn apply(
    conn: &mut PgConnection,
    event: &ProjectedEvent,
    decoded: &Event,
    pending: &mut Pending,
    selection: Selection,
) -> Result<(), sqlx::Error> {
    let projection = match decoded {
        Event::Workspace(_) => "workspaces",
        Event::ApiKey(_) => "api_keys",
        Event::Workflow(_) => "workflows",
    };
    if selection.contains(projection) {
        match decoded {
            Event::Workspace(e) => workspace(conn, event, e).await?,
            Event::ApiKey(e) => api_key(conn, event, e).await?,
            Event::Workflow(e) => workflow(conn, event, e).await?,
        }
        pending.reached(projection, event.global_position);
    }
    if selection.contains("audit_log") {
        pending.reached("audit_log", event.global_position);
        pending.audit.push(AuditRow {
            workspace_id: event.workspace_id,
            position: event.global_position,
            summary: summary(decoded),
            event: event.clone(),
        });
    }
    if selection.contains("activity") {
        pending.reached("activity", event.global_position);
        *pending.activity.entry((event.workspace_id, event.occurred_at.date_naive())).or_default() += 1;
    }
    Ok(())
}

async fn workspace(conn: &mut PgConnection, event: &ProjectedEvent, e: &WorkspaceEvent) -> Result<(), sqlx::Error> {
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

async fn api_key(conn: &mut PgConnection, event: &ProjectedEvent, e: &ApiKeyEvent) -> Result<(), sqlx::Error> {
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

async fn workflow(conn: &mut PgConnection, event: &ProjectedEvent, e: &WorkflowEvent) -> Result<(), sqlx::Error> {
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

/// A sentence for people reading the audit log.
fn summary(event: &Event) -> String {
    match event {
        Event::Workspace(e) => match e {
            WorkspaceEvent::Created(c) => format!("workspace {:?} created on the {} plan", c.name, c.plan.as_str()),
            WorkspaceEvent::Renamed(r) => format!("workspace renamed to {:?}", r.name),
            WorkspaceEvent::PlanChanged(p) => format!("plan changed from {} to {}", p.from.as_str(), p.to.as_str()),
            WorkspaceEvent::SettingsChanged(_) => "workspace settings changed".into(),
            WorkspaceEvent::MemberAdded(m) => format!("member {} added as {}", m.email, m.role.as_str()),
            WorkspaceEvent::MemberRoleChanged(m) => {
                format!("member {} changed from {} to {}", m.user_id, m.from.as_str(), m.to.as_str())
            }
            WorkspaceEvent::MemberRemoved(m) => format!("member {} removed", m.user_id),
            WorkspaceEvent::TeamCreated(t) => format!("team {:?} created", t.name),
            WorkspaceEvent::TeamMemberAdded(t) => format!("member {} joined team {}", t.user_id, t.team_id),
            WorkspaceEvent::TeamMemberRemoved(t) => format!("member {} left team {}", t.user_id, t.team_id),
        },
        Event::ApiKey(e) => match e {
            ApiKeyEvent::Issued(i) => {
                format!("API key {:?} ({}) issued with role {}", i.name, i.prefix, i.role.as_str())
            }
            ApiKeyEvent::Rotated(r) => format!("API key rotated; new prefix {}", r.prefix),
            ApiKeyEvent::Revoked(_) => "API key revoked".into(),
        },
        Event::Workflow(e) => match e {
            WorkflowEvent::Created(c) => format!("workflow {:?} created", c.name),
            WorkflowEvent::DefinitionChanged(d) => format!("definition changed: {}", d.message),
            WorkflowEvent::DetailsChanged(d) => format!("details changed; name {:?}", d.name),
            WorkflowEvent::Published(p) => format!("version {} published", p.version),
            WorkflowEvent::Promoted(p) => format!("version {} promoted to {:?}", p.version, p.environment),
            WorkflowEvent::Archived(_) => "workflow archived".into(),
            WorkflowEvent::Restored(_) => "workflow restored".into(),
            WorkflowEvent::RolledBack(r) => format!("rolled back to version {}", r.to_version),
        },
    }
}
