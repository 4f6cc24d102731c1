//! The PostgreSQL event store (ARCHITECTURE.md decisions 1-4).
//!
//! - `append`: appends under a row lock on the stream, with hash chaining and idempotency;
//! - [`read`]: stream reads (also as functions of any executor), and the global log read behind
//!   the xid8 visibility fence;
//! - `row`: the mapping between rows and envelopes.

mod append;
pub mod read;
mod row;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};

use event_schemas::{NewEvent, StreamId};

use crate::error::StoreError;
use crate::store::{AppendResult, AppendTransaction, ExpectedVersion, TransactionalEventStore};

/// Every migration in `migrations/` (event store and read models), embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// The PostgreSQL store. Cheap to clone: it shares its pool.
#[derive(Debug, Clone)]
pub struct PgEventStore {
    pool: PgPool,
}

impl PgEventStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Connects with a pool of `max_connections`.
    pub async fn connect(database_url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = pool_options(max_connections).connect(database_url).await?;
        Ok(Self::new(pool))
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// How every FlowFuse pool is configured: up to `max_connections`, and a connection is pinged
/// before use only when it sat idle for more than a second.
///
/// sqlx pings every connection when it goes back to the pool and, by default, again when it is
/// taken out: two extra round trips around every statement sent through the pool (the command
/// path gained about a sixth of its throughput without the second, docs/benchmarks.md). A
/// connection that passed its release ping
/// moments ago is alive as far as a ping can tell (either could die right after anyway); one
/// that idled longer, e.g. across a server restart, is checked, and replaced if dead.
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new().max_connections(max_connections).test_before_acquire(false).before_acquire(|conn, meta| {
        Box::pin(async move {
            if meta.idle_for > std::time::Duration::from_secs(1) {
                sqlx::Connection::ping(conn).await?;
            }
            Ok(true)
        })
    })
}

/// An open PostgreSQL transaction that can append events and run other statements (through
/// [`PgAppendTransaction::connection`]) that commit with them.
pub struct PgAppendTransaction {
    tx: Transaction<'static, Postgres>,
}

impl PgAppendTransaction {
    pub fn connection(&mut self) -> &mut sqlx::PgConnection {
        &mut self.tx
    }
}

impl TransactionalEventStore for PgEventStore {
    type Transaction = PgAppendTransaction;

    async fn begin(&self) -> Result<PgAppendTransaction, StoreError> {
        Ok(PgAppendTransaction { tx: self.pool.begin().await? })
    }
}

impl AppendTransaction for PgAppendTransaction {
    async fn append_to_stream(
        &mut self,
        stream_id: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        append::append_in_transaction(&mut self.tx, stream_id, expected, &events).await
    }

    async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }
}
