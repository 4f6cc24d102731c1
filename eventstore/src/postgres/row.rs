//! Rows of `event_store.events` and `event_store.streams` to envelopes and back.

use chrono::{DateTime, Utc};
use event_schemas::{Actor, RecordedEvent, StreamId};
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use crate::error::StoreError;
use crate::store::{GlobalEvent, LogCheckpoint, StoredPayload, StreamInfo};

/// The columns every event read selects, in [`EventRow`] order.
pub(super) const EVENT_COLUMNS: &str = "global_position, stream_id, version, event_id, event_type, schema_version, \
     workspace_id, occurred_at, actor, correlation_id, causation_id, payload, metadata, prev_hash, hash";

#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    global_position: i64,
    stream_id: String,
    version: i64,
    event_id: Uuid,
    event_type: String,
    schema_version: i32,
    workspace_id: Uuid,
    occurred_at: DateTime<Utc>,
    actor: Json<Actor>,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    payload: serde_json::Value,
    metadata: serde_json::Value,
    prev_hash: String,
    hash: String,
}

impl TryFrom<EventRow> for RecordedEvent {
    type Error = StoreError;

    fn try_from(row: EventRow) -> Result<Self, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt(format!("event at position {}: {what}", row.global_position));
        Ok(RecordedEvent {
            global_position: row.global_position,
            stream_id: row.stream_id.parse().map_err(|e| corrupt(format!("{e}")))?,
            version: row.version,
            event_id: row.event_id,
            event_type: row.event_type,
            schema_version: u32::try_from(row.schema_version).map_err(|e| corrupt(format!("schema_version: {e}")))?,
            workspace_id: row.workspace_id,
            occurred_at: row.occurred_at,
            actor: row.actor.0,
            correlation_id: row.correlation_id,
            causation_id: row.causation_id,
            payload: row.payload,
            metadata: row.metadata,
            prev_hash: row.prev_hash,
            hash: row.hash,
        })
    }
}

/// The columns of an event a fold reads, in [`PayloadRow`] order (see `read_payloads`).
pub(super) const PAYLOAD_COLUMNS: &str =
    "version, event_type, schema_version, occurred_at, hash, payload::text AS payload";

pub(super) struct PayloadRow {
    version: i64,
    event_type: String,
    schema_version: i32,
    occurred_at: DateTime<Utc>,
    hash: String,
    payload: String,
}

/// By position, as [`PAYLOAD_COLUMNS`] lists them: a fold reads up to a snapshot interval of
/// rows per request, and finding each column by name (a hash of the name per column and row)
/// was a measurable part of a time-travel query's CPU.
impl<'r> sqlx::FromRow<'r, PgRow> for PayloadRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            version: row.try_get(0)?,
            event_type: row.try_get(1)?,
            schema_version: row.try_get(2)?,
            occurred_at: row.try_get(3)?,
            hash: row.try_get(4)?,
            payload: row.try_get(5)?,
        })
    }
}

impl TryFrom<PayloadRow> for StoredPayload {
    type Error = StoreError;

    fn try_from(row: PayloadRow) -> Result<Self, StoreError> {
        let schema_version = u32::try_from(row.schema_version)
            .map_err(|e| StoreError::Corrupt(format!("event version {}: schema_version: {e}", row.version)))?;
        Ok(StoredPayload {
            version: row.version,
            event_type: row.event_type,
            schema_version,
            occurred_at: row.occurred_at,
            hash: row.hash,
            payload: row.payload,
        })
    }
}

/// An event row of the global log, with its transaction id as text (sqlx has no xid8 type).
#[derive(sqlx::FromRow)]
pub(super) struct GlobalRow {
    tx_id: String,
    #[sqlx(flatten)]
    event: EventRow,
}

impl TryFrom<GlobalRow> for GlobalEvent {
    type Error = StoreError;

    fn try_from(row: GlobalRow) -> Result<Self, StoreError> {
        let tx_id =
            row.tx_id.parse().map_err(|_| StoreError::Corrupt(format!("tx_id {:?} is not a number", row.tx_id)))?;
        let event = RecordedEvent::try_from(row.event)?;
        Ok(GlobalEvent { checkpoint: LogCheckpoint { tx_id, position: event.global_position }, event })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct StreamRow {
    stream_id: String,
    workspace_id: Uuid,
    version: i64,
    last_hash: String,
    deleted: bool,
}

impl TryFrom<StreamRow> for StreamInfo {
    type Error = StoreError;

    fn try_from(row: StreamRow) -> Result<Self, StoreError> {
        let stream_id: StreamId =
            row.stream_id.parse().map_err(|e| StoreError::Corrupt(format!("stream row {:?}: {e}", row.stream_id)))?;
        Ok(StreamInfo {
            stream_id,
            workspace_id: row.workspace_id,
            version: row.version,
            last_hash: row.last_hash,
            deleted: row.deleted,
        })
    }
}
