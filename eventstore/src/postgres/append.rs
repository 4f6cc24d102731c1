//! Appending: lock the stream's row, check the expected version, chain the hashes, insert.
//!
//! The stream row is locked by an upsert that changes nothing (`ON CONFLICT … DO UPDATE`), which
//! both creates a new stream and takes the row lock of an existing one in a single round trip;
//! concurrent appenders to one stream queue on that lock, and each sees the version its
//! predecessor committed.

use std::collections::HashSet;

use event_schemas::chain::{GENESIS_HASH, hash_new_event};
use event_schemas::{NewEvent, StreamId};
use sqlx::types::Json;
use sqlx::{Acquire, PgConnection};
use uuid::Uuid;

use super::PgEventStore;
use crate::error::StoreError;
use crate::store::{AppendResult, ExpectedVersion};

/// The most events one append may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 10_000;

struct StreamHead {
    version: i64,
    last_hash: String,
    deleted: bool,
    workspace_id: Uuid,
}

impl PgEventStore {
    #[tracing::instrument(name = "append_to_stream", skip_all, fields(stream_id = %stream_id, events = events.len()))]
    pub(crate) async fn append_autocommit(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        match append_in_transaction(&mut tx, stream_id, expected, &events).await {
            Ok(result) => {
                tx.commit().await?;
                Ok(result)
            }
            Err(StoreError::IdempotencyConflict(_)) => {
                // Another transaction stored these event ids first: if it was this very append,
                // answer as it was answered then.
                tx.rollback().await?;
                find_original(&mut conn, stream_id, &events)
                    .await?
                    .ok_or_else(|| StoreError::IdempotencyConflict("event ids were stored concurrently".into()))
            }
            Err(other) => Err(other),
        }
    }
}

/// Appends inside an open transaction. A duplicate event id aborts that transaction and is
/// reported as [`StoreError::IdempotencyConflict`].
pub(super) async fn append_in_transaction(
    conn: &mut PgConnection,
    stream_id: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<AppendResult, StoreError> {
    let workspace_id = check_batch(events)?;
    let head = lock_stream(conn, stream_id, workspace_id).await?;
    if head.deleted {
        return Err(StoreError::StreamDeleted(*stream_id));
    }
    if head.workspace_id != workspace_id {
        return Err(StoreError::InvalidAppend(format!(
            "stream {stream_id} belongs to workspace {}, not {workspace_id}",
            head.workspace_id
        )));
    }
    if !expected.admits(head.version) {
        if let Some(original) = find_original(conn, stream_id, events).await? {
            return Ok(original);
        }
        return Err(StoreError::WrongExpectedVersion {
            stream_id: *stream_id,
            expected: expected.to_string(),
            actual: (head.version > 0).then_some(head.version),
        });
    }
    insert_events(conn, stream_id, &head, events).await.map_err(|e| {
        let duplicate = e.as_database_error().and_then(|d| d.constraint()) == Some("events_event_id_key");
        if duplicate {
            StoreError::IdempotencyConflict("event ids are already stored".into())
        } else {
            e.into()
        }
    })
}

/// Checks what can be checked without the database; returns the batch's workspace.
fn check_batch(events: &[NewEvent]) -> Result<Uuid, StoreError> {
    let first = events
        .first()
        .ok_or_else(|| StoreError::InvalidAppend("an append needs at least one event".into()))?;
    if events.len() > MAX_EVENTS_PER_APPEND {
        return Err(StoreError::InvalidAppend(format!(
            "at most {MAX_EVENTS_PER_APPEND} events per append"
        )));
    }
    if events.iter().any(|e| e.workspace_id != first.workspace_id) {
        return Err(StoreError::InvalidAppend(
            "all events of one append belong to one workspace".into(),
        ));
    }
    if events.iter().any(|e| e.event_type.is_empty() || e.schema_version == 0) {
        return Err(StoreError::InvalidAppend(
            "every event needs a type and a schema version >= 1".into(),
        ));
    }
    let mut ids = HashSet::new();
    if !events.iter().all(|e| ids.insert(e.event_id)) {
        return Err(StoreError::InvalidAppend(
            "an event id appears twice in one append".into(),
        ));
    }
    Ok(first.workspace_id)
}

async fn lock_stream(
    conn: &mut PgConnection,
    stream_id: &StreamId,
    workspace_id: Uuid,
) -> Result<StreamHead, StoreError> {
    let (version, last_hash, deleted, workspace_id): (i64, String, bool, Uuid) = sqlx::query_as(
        "INSERT INTO event_store.streams AS s (stream_id, category, workspace_id, version, last_hash)
         VALUES ($1, $2, $3, 0, $4)
         ON CONFLICT (stream_id) DO UPDATE SET version = s.version
         RETURNING s.version, s.last_hash, s.deleted_at IS NOT NULL, s.workspace_id",
    )
    .bind(stream_id.to_string())
    .bind(stream_id.category().as_str())
    .bind(workspace_id)
    .bind(GENESIS_HASH)
    .fetch_one(&mut *conn)
    .await?;
    Ok(StreamHead {
        version,
        last_hash,
        deleted,
        workspace_id,
    })
}

async fn insert_events(
    conn: &mut PgConnection,
    stream_id: &StreamId,
    head: &StreamHead,
    events: &[NewEvent],
) -> Result<AppendResult, sqlx::Error> {
    let mut versions = Vec::with_capacity(events.len());
    let mut prev_hashes = Vec::with_capacity(events.len());
    let mut hashes = Vec::with_capacity(events.len());
    let mut prev_hash = head.last_hash.clone();
    for (offset, event) in (1..).zip(events) {
        let version = head.version + offset;
        let hash = hash_new_event(stream_id, version, &prev_hash, event);
        versions.push(version);
        prev_hashes.push(std::mem::replace(&mut prev_hash, hash.clone()));
        hashes.push(hash);
    }
    let last_version = head.version + events.len() as i64;
    let (first_position, last_position): (i64, i64) = sqlx::query_as(
        "WITH appended AS (
             INSERT INTO event_store.events (stream_id, version, event_id, event_type, schema_version, workspace_id,
                 occurred_at, actor, correlation_id, causation_id, payload, metadata, prev_hash, hash)
             SELECT $1, e.* FROM UNNEST($2::bigint[], $3::uuid[], $4::text[], $5::int[], $6::uuid[],
                 $7::timestamptz[], $8::jsonb[], $9::text[], $10::text[], $11::jsonb[], $12::jsonb[], $13::text[],
                 $14::text[]) AS e
             RETURNING global_position
         ), head AS (
             UPDATE event_store.streams SET version = $15, last_hash = $16 WHERE stream_id = $1
         )
         SELECT min(global_position), max(global_position) FROM appended",
    )
    .bind(stream_id.to_string())
    .bind(&versions)
    .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.schema_version as i32).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.workspace_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
    .bind(events.iter().map(|e| Json(&e.actor)).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.correlation_id.as_deref()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.causation_id.as_deref()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| Json(&e.payload)).collect::<Vec<_>>())
    .bind(events.iter().map(|e| Json(&e.metadata)).collect::<Vec<_>>())
    .bind(&prev_hashes)
    .bind(&hashes)
    .bind(last_version)
    .bind(hashes.last())
    .fetch_one(&mut *conn)
    .await?;
    Ok(AppendResult {
        first_version: head.version + 1,
        last_version,
        first_position,
        last_position,
    })
}

/// The result of an earlier append of exactly these events to this stream, if there was one.
/// Event ids stored elsewhere, or only some of them, are an [`StoreError::IdempotencyConflict`].
async fn find_original(
    conn: &mut PgConnection,
    stream_id: &StreamId,
    events: &[NewEvent],
) -> Result<Option<AppendResult>, StoreError> {
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let stored: Vec<(Uuid, String, i64, i64)> = sqlx::query_as(
        "SELECT event_id, stream_id, version, global_position FROM event_store.events
         WHERE event_id = ANY($1) ORDER BY version",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    if stored.is_empty() {
        return Ok(None);
    }
    let stream = stream_id.to_string();
    let same_append = stored.len() == ids.len()
        && stored
            .iter()
            .zip(&ids)
            .all(|((id, s, _, _), expected)| id == expected && *s == stream)
        && stored.windows(2).all(|w| w[1].2 == w[0].2 + 1);
    if !same_append {
        return Err(StoreError::IdempotencyConflict(format!(
            "{} of {} event ids are already stored, but not as this append to {stream_id}",
            stored.len(),
            ids.len()
        )));
    }
    let (first, last) = (&stored[0], &stored[stored.len() - 1]);
    Ok(Some(AppendResult {
        first_version: first.2,
        last_version: last.2,
        first_position: first.3,
        last_position: last.3,
    }))
}
