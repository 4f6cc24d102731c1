//! `flowfuse projections status`: how far each projection is, how far behind the log it is, and
//! its dead letters.

use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::PgPool;

use crate::read_models::PROJECTIONS;

#[derive(Debug, Serialize)]
pub struct ProjectionStatus {
    pub projection: &'static str,
    /// The highest global position applied.
    pub position: i64,
    /// Events in the log that this projection has not applied yet.
    pub lag: i64,
    pub dead_letters: i64,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub log_head: i64,
    pub relay_position: i64,
    pub projections: Vec<ProjectionStatus>,
}

pub async fn status(pool: &PgPool) -> Result<Status, sqlx::Error> {
    let (log_head,): (i64,) =
        sqlx::query_as("SELECT coalesce(max(global_position), 0) FROM event_store.events").fetch_one(pool).await?;
    let (relay_position,): (i64,) =
        sqlx::query_as("SELECT position FROM projections.relay_checkpoint").fetch_one(pool).await?;
    let (dead_letters,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM projections.dead_letters").fetch_one(pool).await?;
    let positions: Vec<(String, i64)> =
        sqlx::query_as("SELECT projection, position FROM projections.positions").fetch_all(pool).await?;
    // Exact: per stream, how many versions are past what the projector applied.
    let behind: Vec<(String, i64)> = sqlx::query_as(
        "SELECT s.category, sum(s.version - coalesce(g.version, 0))::bigint
         FROM event_store.streams s LEFT JOIN read_model.stream_versions g ON g.stream_id = s.stream_id
         WHERE s.version > coalesce(g.version, 0)
         GROUP BY s.category",
    )
    .fetch_all(pool)
    .await?;
    let behind_in = |category: &str| behind.iter().filter(|(c, _)| c == category).map(|(_, n)| n).sum::<i64>();
    let total: i64 = behind.iter().map(|(_, n)| n).sum();
    let projections = PROJECTIONS
        .into_iter()
        .map(|projection| {
            let position = positions.iter().find(|(p, _)| p == projection).map_or(0, |(_, pos)| *pos);
            let lag = match projection {
                "workspaces" => behind_in("workspace"),
                "api_keys" => behind_in("apikey"),
                "workflows" => behind_in("workflow"),
                _ => total,
            };
            ProjectionStatus { projection, position, lag, dead_letters }
        })
        .collect();
    Ok(Status { log_head, relay_position, projections })
}

/// Waits until every event of the log is applied by every projection (lag 0 everywhere), for at
/// most `timeout`; the error carries the last status seen.
pub async fn wait_until_caught_up(pool: &PgPool, timeout: Duration) -> anyhow::Result<()> {
    wait_for(pool, timeout, "the projections to catch up", |s| s.projections.iter().all(|p| p.lag == 0)).await
}

/// Polls the status until `reached` holds, for at most `timeout`; the error names `what` was
/// awaited and carries the last status seen.
pub async fn wait_for(
    pool: &PgPool,
    timeout: Duration,
    what: &str,
    reached: impl Fn(&Status) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = status(pool).await?;
        if reached(&status) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!("waited {timeout:?} for {what} in vain: {}", serde_json::to_string(&status)?);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
