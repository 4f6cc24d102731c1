//! A batch's writes as one statement: each table's rows are a data-modifying `WITH` query of it.
//!
//! One statement instead of one per table saves round trips, and it keeps the transaction short
//! where it matters: a transaction gets its id at its first write, and every reader of the global
//! log waits behind the oldest running transaction id (ARCHITECTURE.md decision 3), so the
//! projector's writes, all in one statement just before its commit, hold the relay back for two
//! round trips (the statement and the commit) instead of the whole transaction. PostgreSQL runs every data-modifying `WITH` query exactly once,
//! whether or not the main query reads it.

use sqlx::{PgConnection, Postgres, QueryBuilder};

/// The statement being built: `WITH a AS (…), b AS (…) SELECT …`.
pub(super) struct BatchStatement {
    query: QueryBuilder<'static, Postgres>,
    parts: usize,
    counted: Vec<&'static str>,
}

impl BatchStatement {
    pub(super) fn new() -> Self {
        Self { query: QueryBuilder::new("WITH "), parts: 0, counted: Vec::new() }
    }

    /// Starts the `WITH` query `name`; the caller pushes its body, then calls [`Self::end`].
    pub(super) fn part(&mut self, name: &'static str) -> &mut QueryBuilder<'static, Postgres> {
        if self.parts > 0 {
            self.query.push(", ");
        }
        self.parts += 1;
        self.query.push(name).push(" AS (")
    }

    /// Ends the `WITH` query begun last; with `counted`, its rows (it must return some) count in
    /// what [`Self::execute`] returns.
    pub(super) fn end(&mut self, counted: Option<&'static str>) {
        self.query.push(")");
        self.counted.extend(counted);
    }

    /// Runs the statement, if it has any part; returns how many rows the counted parts returned.
    pub(super) async fn execute(mut self, conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
        if self.parts == 0 {
            return Ok(0);
        }
        self.query.push(" SELECT 0::bigint");
        for name in &self.counted {
            self.query.push(" + (SELECT count(*) FROM ").push(*name).push(")");
        }
        let (counted,): (i64,) = self.query.build_query_as().fetch_one(conn).await?;
        Ok(counted)
    }
}
