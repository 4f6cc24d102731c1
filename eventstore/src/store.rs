//! The store-independent interface: what every event store offers.

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use event_schemas::chain::{ChainVerifier, GENESIS_HASH};
use event_schemas::{NewEvent, RecordedEvent, StreamId};

use crate::error::StoreError;

/// What the caller believes about a stream's version when appending (optimistic concurrency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the version is.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version.
    Exact(i64),
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(v) => write!(f, "{v}"),
        }
    }
}

impl ExpectedVersion {
    /// Whether a stream at `actual` (0 = no stream) satisfies the expectation.
    pub fn admits(self, actual: i64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => v == actual,
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub first_version: i64,
    /// The stream's version after the append.
    pub last_version: i64,
    pub first_position: i64,
    /// The global position of the last appended event (the consistency token).
    pub last_position: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forwards,
    Backwards,
}

/// Which part of a stream to read: versions `from_version..=to_version`, in `direction`, at most
/// `limit` events (counted from the start of the direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRead {
    pub from_version: i64,
    pub to_version: Option<i64>,
    pub direction: Direction,
    pub limit: Option<i64>,
}

impl StreamRead {
    /// The whole stream, forwards.
    pub fn all() -> Self {
        Self { from_version: 1, to_version: None, direction: Direction::Forwards, limit: None }
    }

    /// Versions `from..=to`, forwards.
    pub fn between(from_version: i64, to_version: Option<i64>) -> Self {
        Self { from_version, to_version, ..Self::all() }
    }

    pub fn backwards(self) -> Self {
        Self { direction: Direction::Backwards, ..self }
    }

    pub fn limit(self, limit: i64) -> Self {
        Self { limit: Some(limit), ..self }
    }
}

/// A place in the global log: the appending transaction and the position. The log is ordered by
/// this pair, never by position alone (positions commit out of order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogCheckpoint {
    pub tx_id: u64,
    pub position: i64,
}

impl LogCheckpoint {
    /// Before the first event.
    pub const START: LogCheckpoint = LogCheckpoint { tx_id: 0, position: 0 };
}

impl fmt::Display for LogCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.tx_id, self.position)
    }
}

impl FromStr for LogCheckpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("a checkpoint looks like <tx_id>:<position>, got {s:?}");
        let (tx_id, position) = s.split_once(':').ok_or_else(bad)?;
        Ok(Self { tx_id: tx_id.parse().map_err(|_| bad())?, position: position.parse().map_err(|_| bad())? })
    }
}

/// An event read from the global log, with the checkpoint just after it.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalEvent {
    pub checkpoint: LogCheckpoint,
    pub event: RecordedEvent,
}

/// What the store knows of a stream without reading its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub stream_id: StreamId,
    pub workspace_id: uuid::Uuid,
    pub version: i64,
    pub last_hash: String,
    pub deleted: bool,
}

/// The first link of a chain that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub version: i64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub stream_id: StreamId,
    pub events_checked: i64,
    pub broken: Option<BrokenLink>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// An event as a fold needs it: its version, type, time and hash, and its payload as the JSON
/// text it is stored as, for decoding straight into a typed event (no `serde_json::Value` tree,
/// no envelope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayload {
    pub version: i64,
    pub event_type: String,
    pub schema_version: u32,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    pub hash: String,
    pub payload: String,
}

/// An append-only store of hash-chained streams with a global log.
pub trait EventStore: Send + Sync {
    /// Appends `events` atomically at the end of `stream_id` if its version admits `expected`.
    /// Retrying an append whose event ids are already stored returns the original result.
    fn append_to_stream(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send;

    /// Events of one stream; an empty list for a stream that does not exist.
    fn read_stream(
        &self,
        stream_id: &StreamId,
        read: StreamRead,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// The payloads of a stream's events, for a fold: what [`EventStore::read_stream`] reads,
    /// without the rest of the envelope. Stores that keep payloads as text override this.
    fn read_payloads(
        &self,
        stream_id: &StreamId,
        read: StreamRead,
    ) -> impl Future<Output = Result<Vec<StoredPayload>, StoreError>> + Send {
        async move {
            let events = self.read_stream(stream_id, read).await?;
            Ok(events
                .into_iter()
                .map(|e| StoredPayload {
                    version: e.version,
                    payload: e.payload.to_string(),
                    event_type: e.event_type,
                    schema_version: e.schema_version,
                    occurred_at: e.occurred_at,
                    hash: e.hash,
                })
                .collect())
        }
    }

    /// Up to `limit` events of the global log after `after`, in log order, never skipping one that
    /// commits later: only events whose position is final are returned.
    fn read_all(
        &self,
        after: LogCheckpoint,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<GlobalEvent>, StoreError>> + Send;

    fn stream_info(&self, stream_id: &StreamId) -> impl Future<Output = Result<Option<StreamInfo>, StoreError>> + Send;

    /// Up to `limit` streams in id order after `after`, deleted ones included.
    fn list_streams(
        &self,
        after: Option<String>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<StreamInfo>, StoreError>> + Send;

    /// Soft-deletes a stream: its events stay (they are the audit log), later appends are refused.
    fn delete_stream(
        &self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The last version of a stream whose event occurred at or before `at` (0 if none did): the
    /// version a stream was at, at that moment. Stores with an index on time override this.
    fn version_at(
        &self,
        stream_id: &StreamId,
        at: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send {
        async move {
            let events = self.read_stream(stream_id, StreamRead::all()).await?;
            Ok(events.iter().filter(|e| e.occurred_at <= at).map(|e| e.version).max().unwrap_or(0))
        }
    }

    /// Re-computes the stream's hash chain from what is stored and names the first broken link.
    fn verify_stream(&self, stream_id: &StreamId) -> impl Future<Output = Result<VerifyReport, StoreError>> + Send {
        async move {
            const PAGE: i64 = 1_000;
            let info = self.stream_info(stream_id).await?;
            let mut verifier = ChainVerifier::default();
            let report = |verifier: &ChainVerifier, broken| VerifyReport {
                stream_id: *stream_id,
                events_checked: verifier.checked(),
                broken,
            };
            loop {
                let read = StreamRead::between(verifier.checked() + 1, None).limit(PAGE);
                let page = self.read_stream(stream_id, read).await?;
                for event in &page {
                    if let Err(broken) = verifier.check(event) {
                        let link = BrokenLink { version: event.version, reason: broken.to_string() };
                        return Ok(report(&verifier, Some(link)));
                    }
                }
                if (page.len() as i64) < PAGE {
                    break;
                }
            }
            let (version, head) = info.map_or((0, GENESIS_HASH.to_owned()), |i| (i.version, i.last_hash));
            let broken = if verifier.checked() != version {
                Some(BrokenLink {
                    version: verifier.checked() + 1,
                    reason: format!("stream is at version {version} but only {} events are stored", verifier.checked()),
                })
            } else if verifier.last_hash() != head {
                Some(BrokenLink { version, reason: "the last event's hash is not the stream's recorded head".into() })
            } else {
                None
            };
            Ok(report(&verifier, broken))
        }
    }
}

/// A store whose appends can share a transaction with other writes (the security index, name
/// reservations) and commit together.
pub trait TransactionalEventStore: EventStore {
    type Transaction: AppendTransaction + Send;

    fn begin(&self) -> impl Future<Output = Result<Self::Transaction, StoreError>> + Send;
}

/// An open transaction: appends become visible together on `commit`, or not at all.
pub trait AppendTransaction {
    fn append_to_stream(
        &mut self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send;

    fn commit(self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
