//! `auditTrail`: every event of the caller's workspace, newest first, from the audit-log read
//! model. Needs `audit.view`.

use async_graphql::connection::{Connection, OpaqueCursor};
use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::Permission;
use sqlx::{Postgres, QueryBuilder};

use super::page::{PageArgs, connection};
use crate::auth::caller_with;
use crate::db;
use crate::error::{QueryError, QueryResult};

#[derive(SimpleObject, sqlx::FromRow, Clone)]
pub struct AuditEntry {
    /// The event's global position: also the entry's stable identity.
    pub position: i64,
    pub occurred_at: DateTime<Utc>,
    /// `api_key`, `user` or `system`.
    pub actor_kind: String,
    pub actor_id: String,
    pub event_type: String,
    pub stream_id: String,
    pub version: i64,
    pub correlation_id: Option<String>,
    /// A readable line about what happened.
    pub summary: String,
}

/// Every condition given must hold.
#[derive(InputObject, Default)]
pub struct AuditFilter {
    /// The actor id (an API key id, a user id or a system name).
    pub actor: Option<String>,
    /// Event types, e.g. `WorkflowPublished`; any of them.
    pub event_types: Option<Vec<String>>,
    pub stream_id: Option<String>,
    /// At or after this moment.
    pub from: Option<DateTime<Utc>>,
    /// Before this moment.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The workspace's audit trail, newest first. Needs `audit.view`.
    #[graphql(complexity = "first.unwrap_or(20).max(1) as usize * child_complexity")]
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditFilter>,
    ) -> QueryResult<Connection<OpaqueCursor<i64>, AuditEntry>> {
        let caller = caller_with(ctx, Permission::AuditView)?;
        let args = PageArgs::new(after, None, first, None);
        let reading = args.reading()?;
        let (after, _): (Option<i64>, Option<i64>) = args.cursors()?;
        let filter = filter.unwrap_or_default();
        let mut sql = QueryBuilder::<Postgres>::new(
            "SELECT position, occurred_at, actor_kind, actor_id, event_type, stream_id, version, correlation_id, summary
             FROM read_model.audit_log WHERE workspace_id = ",
        );
        sql.push_bind(caller.workspace_id);
        if let Some(position) = after {
            sql.push(" AND position < ").push_bind(position);
        }
        if let Some(actor) = filter.actor {
            sql.push(" AND actor_id = ").push_bind(actor);
        }
        if let Some(types) = filter.event_types {
            sql.push(" AND event_type = ANY(").push_bind(types).push(")");
        }
        if let Some(stream) = filter.stream_id {
            sql.push(" AND stream_id = ").push_bind(stream);
        }
        if let Some(from) = filter.from {
            sql.push(" AND occurred_at >= ").push_bind(from);
        }
        if let Some(to) = filter.to {
            sql.push(" AND occurred_at < ").push_bind(to);
        }
        sql.push(" ORDER BY position DESC LIMIT ").push_bind(reading.size() as i64 + 1);
        let rows: Vec<AuditEntry> =
            sql.build_query_as().fetch_all(&mut *db::connection(ctx).await?).await.map_err(QueryError::from)?;
        Ok(connection(rows, reading, after.is_some(), false, |e| OpaqueCursor(e.position)))
    }
}
