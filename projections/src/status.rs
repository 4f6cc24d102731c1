//! `flowfuse projections status`: how far each projection is, how far behind the log it is, and
//! its dead letters.

use serde::Serialize;
use sqlx::PgPool;

use crate::read_models::PROJECTIONS;

#[derive(Debug, Serialize)]
pub struct ProjectionStatus {
    pub projection: &'static str,
    /// The highest global position applied.
    pub position: i64,
    /// Global positions behind the newest event of the log.
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
    let (dead_letters,): (i64,) = sqlx::query_as("SELECT count(*) FROM projections.dead_letters").fetch_one(pool).await?;
    let positions: Vec<(String, i64)> =
        sqlx::query_as("SELECT projection, position FROM projections.positions").fetch_all(pool).await?;
    let projections = PROJECTIONS
        .into_iter()
        .map(|projection| {
            let position = positions.iter().find(|(p, _)| p == projection).map_or(0, |(_, pos)| *pos);
            ProjectionStatus { projection, position, lag: log_head - position, dead_letters }
        })
        .collect();
    Ok(Status { log_head, relay_position, projections })
}
