//! `stream(id)`: one event stream of the caller's workspace straight from the event store, its
//! envelopes and the check of its hash chain. Needs `audit.view`.

use async_graphql::connection::{Connection, OpaqueCursor};
use async_graphql::{Context, Object, SimpleObject};
use chrono::{DateTime, Utc};
use domain::Permission;
use event_schemas::{RecordedEvent, StreamId};
use eventstore::postgres::read;
use eventstore::{EventStore, PgEventStore, StreamRead};
use uuid::Uuid;

use super::page::{PageArgs, Reading, connection};
use crate::auth::caller_with;
use crate::db;
use crate::error::{QueryError, QueryResult};

/// A stream of the event store.
pub struct Stream {
    id: StreamId,
    version: i64,
    deleted: bool,
}

#[derive(SimpleObject, Clone)]
pub struct Actor {
    /// `api_key`, `user` or `system`.
    pub kind: String,
    pub id: String,
}

/// An event exactly as stored: the envelope of CONTRACT.md, hashes included.
#[derive(SimpleObject, Clone)]
pub struct EventEnvelope {
    pub global_position: i64,
    pub stream_id: String,
    pub version: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub workspace_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor: Actor,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<RecordedEvent> for EventEnvelope {
    fn from(e: RecordedEvent) -> Self {
        Self {
            global_position: e.global_position,
            stream_id: e.stream_id.to_string(),
            version: e.version,
            event_id: e.event_id,
            event_type: e.event_type,
            schema_version: e.schema_version as i32,
            workspace_id: e.workspace_id,
            occurred_at: e.occurred_at,
            actor: Actor { kind: e.actor.kind.as_str().to_owned(), id: e.actor.id },
            correlation_id: e.correlation_id,
            causation_id: e.causation_id,
            payload: e.payload,
            metadata: e.metadata,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// The result of re-computing a stream's hash chain from what is stored.
#[derive(SimpleObject)]
pub struct ChainVerification {
    pub intact: bool,
    pub events_checked: i64,
    /// The first version whose link does not hold, if any.
    pub first_broken_version: Option<i64>,
    pub reason: Option<String>,
}

#[Object]
impl Stream {
    async fn id(&self) -> String {
        self.id.to_string()
    }

    async fn category(&self) -> &'static str {
        self.id.category().as_str()
    }

    async fn version(&self) -> i64 {
        self.version
    }

    /// Soft-deleted streams keep their events (they are the audit log) but take no more.
    async fn deleted(&self) -> bool {
        self.deleted
    }

    /// The stream's events in version order; cursors are versions.
    #[graphql(complexity = "first.or(last).unwrap_or(20).max(1) as usize * child_complexity")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> QueryResult<Connection<OpaqueCursor<i64>, EventEnvelope>> {
        let args = PageArgs::new(after, before, first, last);
        let reading = args.reading()?;
        let (after, before): (Option<i64>, Option<i64>) = args.cursors()?;
        let read = StreamRead::between(after.unwrap_or(0) + 1, before.map(|v| v - 1)).limit(reading.size() as i64 + 1);
        let read = if matches!(reading, Reading::Backwards(_)) { read.backwards() } else { read };
        let events =
            read::read_stream(&mut *db::connection(ctx).await?, &self.id, read).await.map_err(QueryError::from)?;
        let envelopes = events.into_iter().map(EventEnvelope::from).collect();
        Ok(connection(envelopes, reading, after.is_some(), before.is_some(), |e| OpaqueCursor(e.version)))
    }

    /// Re-computes the hash chain from the stored events and names the first broken link.
    async fn verify(&self, ctx: &Context<'_>) -> QueryResult<ChainVerification> {
        // The store's own check, the same for every store: it reads page by page through the
        // store's pool, not on the request's connection.
        let report = ctx.data::<PgEventStore>()?.verify_stream(&self.id).await.map_err(QueryError::from)?;
        Ok(ChainVerification {
            intact: report.is_intact(),
            events_checked: report.events_checked,
            first_broken_version: report.broken.as_ref().map(|b| b.version),
            reason: report.broken.map(|b| b.reason),
        })
    }
}

#[derive(Default)]
pub struct StreamQuery;

#[Object]
impl StreamQuery {
    /// A stream of the caller's workspace by id (`workflow-<uuid>`, `workspace-<uuid>`,
    /// `apikey-<uuid>`), or null. Needs `audit.view`.
    async fn stream(&self, ctx: &Context<'_>, id: String) -> QueryResult<Option<Stream>> {
        let caller = caller_with(ctx, Permission::AuditView)?;
        let stream_id: StreamId =
            id.parse().map_err(|_| QueryError::BadInput(format!("{id:?} is not a stream id (<category>-<uuid>)")))?;
        let info = read::stream_info(&mut *db::connection(ctx).await?, &stream_id).await.map_err(QueryError::from)?;
        Ok(info.filter(|info| info.workspace_id == caller.workspace_id).map(|info| Stream {
            id: stream_id,
            version: info.version,
            deleted: info.deleted,
        }))
    }
}
