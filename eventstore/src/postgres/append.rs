//! Appending through `event_store.append_events` (migration `…_append_function.sql`): one
//! round trip locks the stream's row, checks the expected version, chains the hashes and inserts.
//! An append of one event, the common case, first tries a plain statement that does the same with
//! less work (see [`append_one`]); the function answers whatever that statement does not fit.
//!
//! The function needs the exact version the stream is at, because each event's canonical bytes
//! include its version. An append with [`ExpectedVersion::Any`] therefore first locks the row to
//! learn the version, in the same transaction.

use std::collections::HashSet;

use event_schemas::chain::{GENESIS_HASH, canonical_envelope};
use event_schemas::{NewEvent, StreamId};
use sqlx::postgres::PgDatabaseError;
use sqlx::types::Json;
use sqlx::{Acquire, PgConnection};
use uuid::Uuid;

use super::PgEventStore;
use crate::error::StoreError;
use crate::store::{AppendResult, ExpectedVersion};

/// The most events one append may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 10_000;

impl PgEventStore {
    #[tracing::instrument(name = "append_to_stream", skip_all, fields(stream_id = %stream_id, events = events.len()))]
    pub(crate) async fn append_autocommit(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let appended = match expected {
            // A single statement is its own transaction.
            ExpectedVersion::Exact(version) => append_at(&mut conn, stream_id, version, &events).await,
            ExpectedVersion::NoStream => append_at(&mut conn, stream_id, 0, &events).await,
            ExpectedVersion::Any => {
                let mut tx = conn.begin().await?;
                let appended = append_in_transaction(&mut tx, stream_id, expected, &events).await;
                if appended.is_ok() {
                    tx.commit().await?;
                }
                appended
            }
        };
        match appended {
            // Another append stored these event ids: if it was this very append, answer as
            // it was answered then.
            Err(StoreError::IdempotencyConflict(_)) => find_original(&mut conn, stream_id, &events)
                .await?
                .ok_or_else(|| StoreError::IdempotencyConflict("event ids were stored concurrently".into())),
            other => other,
        }
    }
}

/// Appends inside an open transaction. Any error aborts that transaction.
pub(super) async fn append_in_transaction(
    conn: &mut PgConnection,
    stream_id: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<AppendResult, StoreError> {
    let version = match expected {
        ExpectedVersion::Exact(version) => version,
        ExpectedVersion::NoStream => 0,
        ExpectedVersion::Any => lock_stream(conn, stream_id, check_batch(events)?).await?,
    };
    append_at(conn, stream_id, version, events).await
}

/// Checks what can be checked without the database; returns the batch's workspace.
fn check_batch(events: &[NewEvent]) -> Result<Uuid, StoreError> {
    let first = events.first().ok_or_else(|| StoreError::InvalidAppend("an append needs at least one event".into()))?;
    if events.len() > MAX_EVENTS_PER_APPEND {
        return Err(StoreError::InvalidAppend(format!("at most {MAX_EVENTS_PER_APPEND} events per append")));
    }
    if events.iter().any(|e| e.workspace_id != first.workspace_id) {
        return Err(StoreError::InvalidAppend("all events of one append belong to one workspace".into()));
    }
    if events.iter().any(|e| e.event_type.is_empty() || e.schema_version == 0) {
        return Err(StoreError::InvalidAppend("every event needs a type and a schema version >= 1".into()));
    }
    let mut ids = HashSet::new();
    if !events.iter().all(|e| ids.insert(e.event_id)) {
        return Err(StoreError::InvalidAppend("an event id appears twice in one append".into()));
    }
    Ok(first.workspace_id)
}

/// Takes the stream's row lock (creating the row at version 0 if the stream is new) and returns
/// its version.
async fn lock_stream(conn: &mut PgConnection, stream_id: &StreamId, workspace_id: Uuid) -> Result<i64, StoreError> {
    let (version,): (i64,) = sqlx::query_as(
        "INSERT INTO event_store.streams AS s (stream_id, category, workspace_id, version, last_hash)
         VALUES ($1, $2, $3, 0, $4)
         ON CONFLICT (stream_id) DO UPDATE SET version = s.version
         RETURNING s.version",
    )
    .bind(stream_id.to_string())
    .bind(stream_id.category().as_str())
    .bind(workspace_id)
    .bind(GENESIS_HASH)
    .fetch_one(&mut *conn)
    .await?;
    Ok(version)
}

/// Appends `events` to a stream that must be at exactly `version`.
async fn append_at(
    conn: &mut PgConnection,
    stream_id: &StreamId,
    version: i64,
    events: &[NewEvent],
) -> Result<AppendResult, StoreError> {
    let workspace_id = check_batch(events)?;
    let canonical: Vec<Vec<u8>> =
        (version + 1..).zip(events).map(|(v, event)| canonical_envelope(stream_id, v, event)).collect();
    if let ([event], [canonical]) = (events, canonical.as_slice()) {
        let appended = append_one(conn, stream_id, workspace_id, version, event, canonical).await;
        if let Some(position) = appended.map_err(|e| append_error(e, stream_id, version))? {
            let version = version + 1;
            return Ok(AppendResult {
                first_version: version,
                last_version: version,
                first_position: position,
                last_position: position,
            });
        }
        // Not at `version`, deleted, another workspace's or a replay: the function tells which.
    }
    let row: Result<(i64, i64, i64, i64), sqlx::Error> = sqlx::query_as(
        "SELECT * FROM event_store.append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(stream_id.to_string())
    .bind(stream_id.category().as_str())
    .bind(workspace_id)
    .bind(version)
    .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.schema_version as i32).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
    .bind(events.iter().map(|e| Json(&e.actor)).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.correlation_id.as_deref()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.causation_id.as_deref()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| Json(&e.payload)).collect::<Vec<_>>())
    .bind(events.iter().map(|e| Json(&e.metadata)).collect::<Vec<_>>())
    .bind(canonical)
    .fetch_one(&mut *conn)
    .await;
    let (first_version, last_version, first_position, last_position) =
        row.map_err(|e| append_error(e, stream_id, version))?;
    Ok(AppendResult { first_version, last_version, first_position, last_position })
}

/// Appends one event in one plain statement, the common case of a command: it moves the stream's
/// head from `version` (or creates the stream, for 0) and inserts the event chained to the
/// head's hash. It does what `event_store.append_events` does for a stream in order, without the
/// function's row lock and second write of the stream's row (measured with pgbench: about a third
/// more appends per second, docs/benchmarks.md). `None` when the stream is not at `version`, is
/// deleted or belongs to another workspace: nothing was written, not even inside a transaction,
/// and the function, asked next, reports which (or answers a replay).
///
/// The previous hash is read through a second reference to the row (`old`) because PostgreSQL 15
/// cannot return a column's old value from an UPDATE. It is the locked row's: if another append
/// moved the row after this statement's snapshot, the re-check of `version` skips it, and every
/// change of `last_hash` moves `version`.
async fn append_one(
    conn: &mut PgConnection,
    stream_id: &StreamId,
    workspace_id: Uuid,
    version: i64,
    event: &NewEvent,
    canonical: &[u8],
) -> Result<Option<i64>, sqlx::Error> {
    const INSERT_EVENT: &str = "INSERT INTO event_store.events (stream_id, version, event_id, event_type,
            schema_version, workspace_id, occurred_at, actor, correlation_id, causation_id, payload, metadata,
            prev_hash, hash)
         SELECT $1, $3 + 1, $4, $5, $6, $2, $7, $8, $9, $10, $11, $12, head.prev_hash, head.hash FROM head
         RETURNING global_position";
    const NEW_STREAM: &str = "WITH head AS (
            INSERT INTO event_store.streams (stream_id, workspace_id, version, category, last_hash)
            VALUES ($1, $2, $3 + 1, $14, encode(sha256(convert_to($15, 'UTF8') || $13), 'hex'))
            ON CONFLICT (stream_id) DO NOTHING
            RETURNING $15 AS prev_hash, last_hash AS hash
        )";
    const EXISTING_STREAM: &str = "WITH head AS (
            UPDATE event_store.streams s
            SET version = s.version + 1, last_hash = encode(sha256(convert_to(s.last_hash, 'UTF8') || $13), 'hex')
            FROM event_store.streams old
            WHERE s.stream_id = $1 AND old.stream_id = $1 AND s.version = $3 AND s.workspace_id = $2
              AND s.deleted_at IS NULL
            RETURNING old.last_hash AS prev_hash, s.last_hash AS hash
        )";
    static SQL: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    let [new_stream, existing_stream] =
        SQL.get_or_init(|| [format!("{NEW_STREAM} {INSERT_EVENT}"), format!("{EXISTING_STREAM} {INSERT_EVENT}")]);
    let query = sqlx::query_scalar(if version == 0 { new_stream } else { existing_stream })
        .bind(stream_id.to_string())
        .bind(workspace_id)
        .bind(version)
        .bind(event.event_id)
        .bind(event.event_type.as_str())
        .bind(event.schema_version as i32)
        .bind(event.occurred_at)
        .bind(Json(&event.actor))
        .bind(event.correlation_id.as_deref())
        .bind(event.causation_id.as_deref())
        .bind(Json(&event.payload))
        .bind(Json(&event.metadata))
        .bind(canonical);
    let query = if version == 0 { query.bind(stream_id.category().as_str()).bind(GENESIS_HASH) } else { query };
    query.fetch_optional(&mut *conn).await
}

/// Maps the errors `event_store.append_events` raises (see its migration) to [`StoreError`].
fn append_error(error: sqlx::Error, stream_id: &StreamId, expected: i64) -> StoreError {
    let Some(db) = error.as_database_error() else {
        return error.into();
    };
    let code = db.code().unwrap_or_default();
    match code.as_ref() {
        "FF001" => {
            let detail = db.try_downcast_ref::<PgDatabaseError>().and_then(|e| e.detail());
            let actual = detail.and_then(|d| d.parse::<i64>().ok()).filter(|v| *v > 0);
            let expected = if expected == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(expected) };
            StoreError::WrongExpectedVersion { stream_id: *stream_id, expected: expected.to_string(), actual }
        }
        "FF002" => StoreError::StreamDeleted(*stream_id),
        "FF003" => StoreError::InvalidAppend(format!("stream {stream_id} belongs to another workspace")),
        "FF004" => StoreError::IdempotencyConflict(db.message().to_owned()),
        _ if db.constraint() == Some("events_event_id_key") => {
            StoreError::IdempotencyConflict("event ids are already stored".into())
        }
        _ => error.into(),
    }
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
        && stored.iter().zip(&ids).all(|((id, s, _, _), expected)| id == expected && *s == stream)
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
