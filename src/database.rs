//! Creating and migrating the database that holds the event store and the read models.

use anyhow::Context;
use eventstore::MIGRATOR;
use sqlx::migrate::MigrateDatabase;
use sqlx::{PgPool, Postgres};

/// Creates the database of `url` if it does not exist, then applies every pending migration.
/// Safe to run any number of times, also concurrently (sqlx takes an advisory lock).
pub async fn migrate(url: &str) -> anyhow::Result<usize> {
    if !Postgres::database_exists(url).await.with_context(|| format!("cannot reach PostgreSQL at {}", redact(url)))? {
        Postgres::create_database(url).await.context("cannot create the database")?;
        tracing::info!(database = %redact(url), "created database");
    }
    let pool = connect(url, 2).await?;
    MIGRATOR.run(&pool).await.context("migration failed")?;
    pool.close().await;
    Ok(MIGRATOR.iter().count())
}

/// The connections of the command API (`flowfuse command-api`, and in `flowfuse serve`). More would
/// not serve more requests: past a few busy backends per core, PostgreSQL's backends only take
/// turns, and every request waits longer for its turn.
pub const HTTP_ROLE_POOL: u32 = 16;

/// The connections of `flowfuse query-api` unless `QUERY_API_DB_CONNECTIONS` says otherwise. Fewer
/// than the command API's: a GraphQL request holds its connection for all of its statements and
/// the CPU work between them (query-api's `db`), so the pool caps the requests in flight, and past
/// a few per core they only take turns for the cores with the backends. On the two cores of
/// docs/benchmarks.md ("2026-12-06"), 8 served more requests than 16 (the raw SQL too) and kept
/// p99 under 20 ms in 7 of 12 measurements against none of 14; 32 did worse than 16.
pub const QUERY_API_POOL: u32 = 8;

/// The size of the query API's pool, as every command that runs the query API takes it
/// (`serve`, `query-api`, `bench query`).
#[derive(Debug, Clone, clap::Args)]
pub struct QueryApiPoolArgs {
    /// PostgreSQL connections of the query API: each query holds one while it runs, the rest wait
    /// their turn. A few per core of the database server serve the most.
    #[arg(long, env = "QUERY_API_DB_CONNECTIONS", default_value_t = QUERY_API_POOL,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub query_api_db_connections: u32,
}

pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    eventstore::pool_options(max_connections)
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to {}", redact(url)))
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
