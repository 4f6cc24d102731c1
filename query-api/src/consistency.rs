//! Read-your-writes: `X-Consistency-Token: <position>` makes a query wait until the read models
//! reflect every event of the caller's workspace at or below that global position.
//!
//! "Reflect" is checked per stream, not against a single high-water mark: partitions are applied
//! independently, so one projection having applied position 100 says nothing about position 90
//! in another partition. A stream is behind when the next version the projector has not applied
//! has a position at or below the token. Within a stream, positions grow with versions (appends
//! to a stream are serialized), so the next unapplied version is the only one to look at.

use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;

use crate::error::QueryError;

/// The header's value as a position, or a clear error.
pub fn parse_token(raw: &str) -> Result<i64, QueryError> {
    raw.trim().parse::<i64>().ok().filter(|position| *position >= 0).ok_or_else(|| {
        QueryError::BadInput(format!(
            "X-Consistency-Token must be a global position (a non-negative integer), got {raw:?}"
        ))
    })
}

/// Whether the read models reflect every event of `workspace_id` up to `position`.
pub async fn caught_up(pool: &PgPool, workspace_id: Uuid, position: i64) -> Result<bool, QueryError> {
    let (behind,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (
             SELECT 1
             FROM event_store.streams s
             LEFT JOIN read_model.stream_versions g ON g.stream_id = s.stream_id
             JOIN event_store.events e ON e.stream_id = s.stream_id AND e.version = coalesce(g.version, 0) + 1
             WHERE s.workspace_id = $1 AND s.version > coalesce(g.version, 0) AND e.global_position <= $2)",
    )
    .bind(workspace_id)
    .bind(position)
    .fetch_one(pool)
    .await?;
    Ok(!behind)
}

/// Waits until [`caught_up`], polling with a growing interval, for at most `timeout`.
pub async fn wait_for(pool: &PgPool, workspace_id: Uuid, position: i64, timeout: Duration) -> Result<(), QueryError> {
    let started = Instant::now();
    let mut interval = Duration::from_millis(2);
    loop {
        if caught_up(pool, workspace_id, position).await? {
            metrics::histogram!("query_consistency_wait_seconds").record(started.elapsed().as_secs_f64());
            return Ok(());
        }
        let waited = started.elapsed();
        if waited >= timeout {
            metrics::counter!("query_consistency_timeouts_total").increment(1);
            return Err(QueryError::ConsistencyTimeout { position, waited_ms: waited.as_millis() });
        }
        tokio::time::sleep(interval.min(timeout - waited)).await;
        interval = (interval * 2).min(Duration::from_millis(50));
    }
}
