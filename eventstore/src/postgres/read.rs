//! Reads: streams by version, the global log behind the visibility fence, stream headers.
//!
//! The stream reads are also functions of any PostgreSQL executor, for a caller that holds a
//! connection of its own (the query API runs all the statements of a request on one) and so
//! shares it with the store instead of taking another from the pool.

use event_schemas::{NewEvent, RecordedEvent, StreamId};
use sqlx::PgExecutor;

use super::PgEventStore;
use super::row::{EVENT_COLUMNS, EventRow, GlobalRow, PAYLOAD_COLUMNS, PayloadRow, StreamRow};
use crate::error::StoreError;
use crate::store::{
    AppendResult, Direction, EventStore, ExpectedVersion, GlobalEvent, LogCheckpoint, StoredPayload, StreamInfo,
    StreamRead,
};

const STREAM_COLUMNS: &str = "stream_id, workspace_id, version, last_hash, deleted_at IS NOT NULL AS deleted";

impl EventStore for PgEventStore {
    async fn append_to_stream(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.append_autocommit(stream_id, expected, events).await
    }

    async fn read_stream(&self, stream_id: &StreamId, read: StreamRead) -> Result<Vec<RecordedEvent>, StoreError> {
        read_stream(&self.pool, stream_id, read).await
    }

    async fn read_payloads(&self, stream_id: &StreamId, read: StreamRead) -> Result<Vec<StoredPayload>, StoreError> {
        read_payloads(&self.pool, stream_id, read).await
    }

    /// Only events of transactions below the oldest one still running are read: every such
    /// transaction has finished, so no event can later appear before the returned ones.
    #[tracing::instrument(skip_all, fields(after = %after, limit))]
    async fn read_all(&self, after: LogCheckpoint, limit: i64) -> Result<Vec<GlobalEvent>, StoreError> {
        // ORDER BY names the table's columns: a bare `tx_id` would be the text output column,
        // which sorts "1000" before "999" (pages could then skip events) and cannot use the
        // (tx_id, global_position) index (every page would sort the rest of the log).
        let sql = format!(
            "SELECT tx_id::text AS tx_id, {EVENT_COLUMNS} FROM event_store.events
             WHERE (tx_id, global_position) > ($1::text::xid8, $2)
               AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
             ORDER BY events.tx_id, events.global_position
             LIMIT $3"
        );
        let rows: Vec<GlobalRow> = sqlx::query_as(&sql)
            .bind(after.tx_id.to_string())
            .bind(after.position)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(GlobalEvent::try_from).collect()
    }

    async fn stream_info(&self, stream_id: &StreamId) -> Result<Option<StreamInfo>, StoreError> {
        stream_info(&self.pool, stream_id).await
    }

    async fn list_streams(&self, after: Option<String>, limit: i64) -> Result<Vec<StreamInfo>, StoreError> {
        let sql = format!(
            "SELECT {STREAM_COLUMNS} FROM event_store.streams
             WHERE stream_id > $1 AND version > 0 ORDER BY stream_id LIMIT $2"
        );
        let rows: Vec<StreamRow> =
            sqlx::query_as(&sql).bind(after.unwrap_or_default()).bind(limit).fetch_all(&self.pool).await?;
        rows.into_iter().map(StreamInfo::try_from).collect()
    }

    async fn version_at(&self, stream_id: &StreamId, at: chrono::DateTime<chrono::Utc>) -> Result<i64, StoreError> {
        version_at(&self.pool, stream_id, at).await
    }

    #[tracing::instrument(skip_all, fields(stream_id = %stream_id))]
    async fn delete_stream(&self, stream_id: &StreamId, expected: ExpectedVersion) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let head: Option<(i64, bool)> = sqlx::query_as(
            "SELECT version, deleted_at IS NOT NULL FROM event_store.streams WHERE stream_id = $1 FOR UPDATE",
        )
        .bind(stream_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((version, deleted)) = head else {
            return Err(StoreError::StreamNotFound(*stream_id));
        };
        if deleted {
            return Err(StoreError::StreamDeleted(*stream_id));
        }
        if !expected.admits(version) {
            return Err(StoreError::WrongExpectedVersion {
                stream_id: *stream_id,
                expected: expected.to_string(),
                actual: Some(version),
            });
        }
        sqlx::query("UPDATE event_store.streams SET deleted_at = now() WHERE stream_id = $1")
            .bind(stream_id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// [`EventStore::read_stream`] on `executor`.
#[tracing::instrument(skip_all, fields(stream_id = %stream_id))]
pub async fn read_stream(
    executor: impl PgExecutor<'_>,
    stream_id: &StreamId,
    read: StreamRead,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows: Vec<EventRow> = stream_rows(executor, EVENT_COLUMNS, stream_id, &read).await?;
    rows.into_iter().map(RecordedEvent::try_from).collect()
}

/// [`EventStore::read_payloads`] on `executor`.
#[tracing::instrument(skip_all, fields(stream_id = %stream_id))]
pub async fn read_payloads(
    executor: impl PgExecutor<'_>,
    stream_id: &StreamId,
    read: StreamRead,
) -> Result<Vec<StoredPayload>, StoreError> {
    // `payload::text`: PostgreSQL renders the jsonb as it would for the binary protocol, and
    // the caller parses it once, into its own type.
    let rows: Vec<PayloadRow> = stream_rows(executor, PAYLOAD_COLUMNS, stream_id, &read).await?;
    rows.into_iter().map(StoredPayload::try_from).collect()
}

/// [`EventStore::stream_info`] on `executor`.
pub async fn stream_info(
    executor: impl PgExecutor<'_>,
    stream_id: &StreamId,
) -> Result<Option<StreamInfo>, StoreError> {
    // A row at version 0 exists only inside an uncommitted creating transaction.
    let sql = format!("SELECT {STREAM_COLUMNS} FROM event_store.streams WHERE stream_id = $1 AND version > 0");
    let row: Option<StreamRow> = sqlx::query_as(&sql).bind(stream_id.to_string()).fetch_optional(executor).await?;
    row.map(StreamInfo::try_from).transpose()
}

/// [`EventStore::version_at`] on `executor`.
pub async fn version_at(
    executor: impl PgExecutor<'_>,
    stream_id: &StreamId,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<i64, StoreError> {
    let (version,): (Option<i64>,) =
        sqlx::query_as("SELECT max(version) FROM event_store.events WHERE stream_id = $1 AND occurred_at <= $2")
            .bind(stream_id.to_string())
            .bind(at)
            .fetch_one(executor)
            .await?;
    Ok(version.unwrap_or(0))
}

/// `columns` of the events of one stream that `read` selects, in its order.
async fn stream_rows<R>(
    executor: impl PgExecutor<'_>,
    columns: &str,
    stream_id: &StreamId,
    read: &StreamRead,
) -> Result<Vec<R>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let order = match read.direction {
        Direction::Forwards => "ASC",
        Direction::Backwards => "DESC",
    };
    let sql = format!(
        "SELECT {columns} FROM event_store.events
         WHERE stream_id = $1 AND version >= $2 AND version <= $3
         ORDER BY version {order} LIMIT $4"
    );
    sqlx::query_as(&sql)
        .bind(stream_id.to_string())
        .bind(read.from_version)
        .bind(read.to_version.unwrap_or(i64::MAX))
        .bind(read.limit.unwrap_or(i64::MAX))
        .fetch_all(executor)
        .await
}
