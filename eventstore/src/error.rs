//! The one error type of the event store.

use event_schemas::StreamId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: the stream is not at the version the caller expected.
    /// `actual` is `None` when the stream does not exist.
    #[error("stream {stream_id} is at version {actual:?}, not the expected {expected}")]
    WrongExpectedVersion { stream_id: StreamId, expected: String, actual: Option<i64> },
    #[error("stream {0} is deleted; it accepts no more events")]
    StreamDeleted(StreamId),
    #[error("stream {0} does not exist")]
    StreamNotFound(StreamId),
    /// Some of the event ids were already stored, but not as this exact append.
    #[error("event ids of this append were already used by another append: {0}")]
    IdempotencyConflict(String),
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    /// Stored data that cannot be read back as an envelope.
    #[error("corrupt event store data: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Database(error) if is_transient_sql(error))
    }
}

/// Database errors that say nothing about the data: the connection, a serialization conflict, a
/// deadlock, a server shutting down or out of connections. Retrying later may succeed.
pub fn is_transient_sql(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            code.starts_with("08") || code.starts_with("57") || matches!(code.as_ref(), "40001" | "40P01" | "53300")
        }
        _ => false,
    }
}
