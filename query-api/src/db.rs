//! The database of one request: one pooled connection for authentication and every resolver.
//!
//! sqlx pings a connection each time it goes back to the pool (a round trip, so that a statement
//! cancelled half-way, by a client that hung up, never leaves a broken connection behind).
//! Through `&PgPool` every statement pays it: a list query paid two pings for its two statements,
//! a time-travel query four. On one connection per request they pay one, and a request holds one
//! pool slot instead of taking one per statement.
//!
//! Resolvers that run at the same time (sibling fields, DataLoader batches) take turns on the
//! connection, as they would queue for a slot of a busy pool. A guard is held for one statement
//! and never across a wait on another resolver, which would deadlock on the same connection.

use std::sync::Arc;

use async_graphql::Context;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::error::QueryError;

/// One request's connection, shared by its resolvers; cheap to clone.
#[derive(Clone)]
pub struct RequestDb {
    pool: PgPool,
    connection: Arc<Mutex<Option<PoolConnection<Postgres>>>>,
}

impl RequestDb {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, connection: Arc::default() }
    }

    /// The request's connection, taken from the pool on first use. Run one statement on it:
    /// `query.fetch_all(&mut *db.connection().await?)` releases it when the statement ends.
    pub async fn connection(&self) -> Result<MappedMutexGuard<'_, PgConnection>, sqlx::Error> {
        let mut slot = self.connection.lock().await;
        if slot.is_none() {
            *slot = Some(self.pool.acquire().await?);
        }
        Ok(MutexGuard::map(slot, |slot| &mut **slot.as_mut().expect("filled above")))
    }

    /// Gives the connection back to the pool until the next statement, so that a request waiting
    /// for something else (the read models to catch up) does not hold a slot meanwhile.
    pub async fn release(&self) {
        self.connection.lock().await.take();
    }
}

/// The database of the request a resolver serves.
pub fn of<'a>(ctx: &Context<'a>) -> Result<&'a RequestDb, QueryError> {
    ctx.data::<RequestDb>().map_err(|_| QueryError::internal(anyhow::anyhow!("a request without a database")))
}

/// The connection of the request a resolver serves, for one statement.
pub async fn connection<'a>(ctx: &Context<'a>) -> Result<MappedMutexGuard<'a, PgConnection>, QueryError> {
    Ok(of(ctx)?.connection().await?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use eventstore::testing::TestDatabase;

    use super::*;

    async fn backend(db: &RequestDb) -> i32 {
        let connection = &mut *db.connection().await.expect("a connection");
        sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(connection).await.expect("a backend pid")
    }

    /// A request keeps its connection for all its statements, concurrent ones included, and
    /// gives it back on `release` or when it ends.
    #[tokio::test]
    async fn a_request_holds_one_connection_until_released_or_dropped() {
        let database = TestDatabase::create().await;
        let pool = eventstore::pool_options(1).connect(&database.url()).await.expect("a pool of one");
        let request = RequestDb::new(pool.clone());
        let first = backend(&request).await;
        let (a, b) = tokio::join!(backend(&request), backend(&request));
        assert_eq!((a, b), (first, first), "every statement of the request on one backend");

        let other = RequestDb::new(pool.clone());
        let waiting = tokio::time::timeout(Duration::from_millis(300), backend(&other)).await;
        assert!(waiting.is_err(), "the pool's one connection stays with the first request");
        request.release().await;
        let answered = tokio::time::timeout(Duration::from_secs(5), backend(&other)).await;
        assert_eq!(answered.ok(), Some(first), "released, the connection serves the next request");

        drop(other);
        let third = RequestDb::new(pool);
        let answered = tokio::time::timeout(Duration::from_secs(5), backend(&third)).await;
        assert_eq!(answered.ok(), Some(first), "a finished request gives its connection back");
    }
}
