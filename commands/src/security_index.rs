//! The security index (ARCHITECTURE.md decision 7), written in the same transaction as the
//! events it follows: API keys, memberships, workspace slugs, workflow-name reservations and the
//! quota counters. A unique violation or an exhausted quota here is a conflict the client caused.

use domain::quotas::quotas;
use event_schemas::types::Plan;
use event_schemas::{ApiKeyEvent, Event, StreamId, WorkflowEvent, WorkspaceEvent};
use sqlx::PgConnection;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use uuid::Uuid;

use crate::error::ApiError;

type Statement = Query<'static, sqlx::Postgres, PgArguments>;

/// One write to the index; `quota` names what is exhausted when the statement matches no row.
struct Effect {
    statement: Statement,
    quota: Option<&'static str>,
    /// Whether it writes the workspace's own row (its plan, its quota counters), on which every
    /// such write of the workspace queues.
    on_workspace_row: bool,
}

impl From<Statement> for Effect {
    fn from(statement: Statement) -> Self {
        Self { statement, quota: None, on_workspace_row: false }
    }
}

impl Effect {
    /// A write of the workspace's row; with a `quota`, one that may find it exhausted.
    fn on_workspace_row(statement: Statement, quota: Option<&'static str>) -> Self {
        Self { statement, quota, on_workspace_row: true }
    }

    /// A write that counts against `quota` elsewhere than on the workspace's row.
    fn counting(statement: Statement, quota: &'static str) -> Self {
        Self { statement, quota: Some(quota), on_workspace_row: false }
    }
}

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
    for effect in events.iter().filter_map(|event| effect(workspace_id, stream_id, event)) {
        let done = effect.statement.execute(&mut *conn).await.map_err(on_unique)?;
        if let Some(quota) = effect.quota
            && done.rows_affected() == 0
        {
            return Err(ApiError::conflict(format!("the workspace's plan allows no more {quota}")));
        }
    }
    Ok(())
}

/// Advisory-lock class of a workspace's index writers (the other key is a hash of its id).
const WORKSPACE_WRITERS: i32 = 0x6666_0001;

/// Waits, before the transaction's first write, until no other transaction is writing this
/// workspace's row of the index (see [`writes_workspace_row`]). Those writes serialize on the row
/// anyway; a transaction that waits for a row lock has a transaction id already, and every reader
/// of the global log waits for the oldest running transaction id (ARCHITECTURE.md decision 3), so
/// a queue of creates on a counter row would hold back the relay, and every projection, by as
/// long as the queue takes to drain. Waiting for an advisory lock first assigns no transaction id.
pub async fn queue_for_workspace(conn: &mut PgConnection, workspace_id: Uuid) -> Result<(), ApiError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(WORKSPACE_WRITERS)
        .bind(workspace_id)
        .execute(&mut *conn)
        .await
        .map_err(ApiError::internal)?;
    Ok(())
}

/// Whether any of `events` changes the index (most workflow edits do not).
pub fn affected_by(stream_id: &StreamId, events: &[Event]) -> bool {
    events.iter().any(|event| effect(Uuid::nil(), stream_id, event).is_some())
}

/// Whether any of `events` writes the workspace's row of the index: issued and revoked keys,
/// plan changes.
pub fn writes_workspace_row(stream_id: &StreamId, events: &[Event]) -> bool {
    events.iter().any(|event| effect(Uuid::nil(), stream_id, event).is_some_and(|e| e.on_workspace_row))
}

/// What `event` changes in the index: one statement at most, so that a command's index
/// writes cost one round trip.
fn effect(workspace_id: Uuid, stream_id: &StreamId, event: &Event) -> Option<Effect> {
    match event {
        Event::Workspace(event) => workspace_effect(workspace_id, event),
        Event::ApiKey(event) => api_key_effect(workspace_id, stream_id.id(), event),
        Event::Workflow(event) => workflow_effect(workspace_id, stream_id.id(), event),
    }
}

fn plan_limits(plan: Plan) -> (i32, i32) {
    let quotas = quotas(plan);
    let clamp = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    (clamp(quotas.max_workflows), clamp(quotas.max_api_keys))
}

fn workspace_effect(workspace_id: Uuid, event: &WorkspaceEvent) -> Option<Effect> {
    let statement = match event {
        WorkspaceEvent::Created(e) => {
            let (max_workflows, max_api_keys) = plan_limits(e.plan);
            sqlx::query(CREATE_WORKSPACE)
                .bind(workspace_id)
                .bind(e.slug.clone())
                .bind(e.plan.as_str())
                .bind(max_workflows)
                .bind(max_api_keys)
        }
        WorkspaceEvent::PlanChanged(e) => {
            let (max_workflows, max_api_keys) = plan_limits(e.to);
            let statement = sqlx::query(
                "UPDATE security.workspaces SET plan = $2, max_workflows = $3, max_api_keys = $4 WHERE workspace_id = $1",
            )
            .bind(workspace_id)
            .bind(e.to.as_str())
            .bind(max_workflows)
            .bind(max_api_keys);
            return Some(Effect::on_workspace_row(statement, None));
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
    };
    Some(statement.into())
}

/// A workspace's row, with the stripes its active workflows are counted in (migration
/// `…_workflow_count_stripes.sql`).
const CREATE_WORKSPACE: &str = "WITH created AS (
        INSERT INTO security.workspaces (workspace_id, slug, plan, max_workflows, max_api_keys)
        VALUES ($1, $2, $3, $4, $5))
    INSERT INTO security.workflow_stripes (workspace_id, stripe)
    SELECT $1, s FROM generate_series(0, security.workflow_stripe_count() - 1) AS s";

// A change that also moves a quota counter is one statement: the change runs as a CTE of the
// counter's update, one round trip instead of two. A counter that would pass the plan's limit
// makes the statement match no row: the quota is exhausted, and the caller's transaction, CTE
// included, is rolled back.
//
// API keys are counted on the workspace's row, which stays locked until commit (issues in one
// workspace queue on it: they are rare), which is why `execute::commit` writes the index after
// the append. Workflows are counted in stripes, by `security.count_workflow`, so that creates in
// one workspace do not queue.

const ISSUE_API_KEY: &str = "WITH issued AS (
        INSERT INTO security.api_keys (key_id, workspace_id, prefix, key_hash, role, user_id, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7))
    UPDATE security.workspaces SET active_api_keys = active_api_keys + 1
    WHERE workspace_id = $2 AND active_api_keys < max_api_keys";

const REVOKE_API_KEY: &str = "WITH revoked AS (UPDATE security.api_keys SET revoked_at = now() WHERE key_id = $1)
    UPDATE security.workspaces SET active_api_keys = active_api_keys - 1 WHERE workspace_id = $2";

const CREATE_WORKFLOW: &str = "WITH reserved AS (
        INSERT INTO security.workflow_names (workflow_id, workspace_id, name_key) VALUES ($1, $2, $3))
    SELECT WHERE security.count_workflow($2, $1, 1)";

const ARCHIVE_WORKFLOW: &str =
    "WITH archived AS (UPDATE security.workflow_names SET archived = true WHERE workflow_id = $1)
    SELECT security.count_workflow($2, $1, -1)";

const RESTORE_WORKFLOW: &str =
    "WITH restored AS (UPDATE security.workflow_names SET archived = false WHERE workflow_id = $1)
    SELECT WHERE security.count_workflow($2, $1, 1)";

fn api_key_effect(workspace_id: Uuid, key_id: Uuid, event: &ApiKeyEvent) -> Option<Effect> {
    let effect = match event {
        ApiKeyEvent::Issued(e) => Effect::on_workspace_row(
            sqlx::query(ISSUE_API_KEY)
                .bind(key_id)
                .bind(workspace_id)
                .bind(e.prefix.clone())
                .bind(e.key_hash.clone())
                .bind(e.role.as_str())
                .bind(e.user_id)
                .bind(e.expires_at),
            Some("active API keys"),
        ),
        ApiKeyEvent::Rotated(e) => {
            sqlx::query("UPDATE security.api_keys SET prefix = $2, key_hash = $3 WHERE key_id = $1")
                .bind(key_id)
                .bind(e.prefix.clone())
                .bind(e.key_hash.clone())
                .into()
        }
        ApiKeyEvent::Revoked(_) => {
            Effect::on_workspace_row(sqlx::query(REVOKE_API_KEY).bind(key_id).bind(workspace_id), None)
        }
    };
    Some(effect)
}

fn workflow_effect(workspace_id: Uuid, workflow_id: Uuid, event: &WorkflowEvent) -> Option<Effect> {
    let effect = match event {
        WorkflowEvent::Created(e) => Effect::counting(
            sqlx::query(CREATE_WORKFLOW).bind(workflow_id).bind(workspace_id).bind(name_key(&e.name)),
            "active workflows",
        ),
        WorkflowEvent::DetailsChanged(e) => {
            sqlx::query("UPDATE security.workflow_names SET name_key = $2 WHERE workflow_id = $1")
                .bind(workflow_id)
                .bind(name_key(&e.name))
                .into()
        }
        WorkflowEvent::Archived(_) => sqlx::query(ARCHIVE_WORKFLOW).bind(workflow_id).bind(workspace_id).into(),
        WorkflowEvent::Restored(_) => {
            Effect::counting(sqlx::query(RESTORE_WORKFLOW).bind(workflow_id).bind(workspace_id), "active workflows")
        }
        _ => return None,
    };
    Some(effect)
}

/// Unique violations become 409s that say what is taken; anything else is internal.
fn on_unique(error: sqlx::Error) -> ApiError {
    let constraint = error.as_database_error().filter(|db| db.is_unique_violation()).and_then(|db| db.constraint());
    match constraint {
        Some("workspaces_slug_key") => ApiError::conflict("slug: another workspace already uses this slug"),
        Some("workflow_names_active_key") => {
            ApiError::conflict("name: another active workflow of this workspace has this name")
        }
        Some(other) => ApiError::conflict(format!("conflict on {other}")),
        None => ApiError::internal(error),
    }
}
