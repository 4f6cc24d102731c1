//! The FlowFuse event store: the source of truth, the audit log and the version history.
//!
//! - [`store`]: the [`EventStore`] trait and its types (expected versions, reads, checkpoints,
//!   verification reports); any store implements it;
//! - [`error`]: [`StoreError`], the one error type of the store;
//! - [`postgres`]: the PostgreSQL implementation (hash-chained streams, a global log read behind
//!   the xid8 visibility fence, tombstones) and [`MIGRATOR`], which applies `migrations/`;
//! - `conformance` and `testing` (feature `testing`): the conformance suite written against
//!   the trait, and a throwaway-database helper for tests.

pub mod error;
pub mod postgres;
pub mod store;

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{StoreError, is_transient_sql};
pub use postgres::{MIGRATOR, PgAppendTransaction, PgEventStore, pool_options};
pub use store::{
    AppendResult, AppendTransaction, BrokenLink, Direction, EventStore, ExpectedVersion, GlobalEvent, LogCheckpoint,
    StoredPayload, StreamInfo, StreamRead, TransactionalEventStore, VerifyReport,
};
