//! `flowfuse projections rebuild NAME|--all`: rebuild read models from the event store without
//! downtime.
//!
//! The new tables are built in a shadow schema while the live ones keep serving and the projector
//! keeps applying. They are built from exactly the events the live tables reflect: for every
//! stream, its events up to the version in the projector's guard (`read_model.stream_versions`).
//! The swap transaction locks the guard (pausing the projector), applies to the shadow whatever
//! the projector applied meanwhile, and moves the shadow tables into `read_model` in place of the
//! old ones. The guard stays true for the new tables, so the projector simply carries on.

use std::collections::HashMap;

use event_schemas::Event;
use eventstore::{EventStore, PgEventStore, StreamRead};
use sqlx::{PgConnection, PgPool};

use crate::cloudevents::ProjectedEvent;
use crate::read_models::{PROJECTIONS, Pending, Selection, apply, tables_of};

const SHADOW: &str = "read_model_rebuild";
const RETIRED: &str = "read_model_retired";

/// What a rebuild did.
#[derive(Debug, serde::Serialize)]
pub struct Rebuilt {
    pub projections: Vec<&'static str>,
    pub streams: usize,
    pub events: usize,
    /// Events the projector applied while the shadow was built, applied in the swap.
    pub caught_up: usize,
}

/// Rebuilds `names` (projection names, see [`PROJECTIONS`]).
pub async fn rebuild(pool: &PgPool, names: &[&str]) -> anyhow::Result<Rebuilt> {
    let projections: Vec<&'static str> = PROJECTIONS.into_iter().filter(|p| names.contains(p)).collect();
    if let Some(unknown) = names.iter().find(|n| !PROJECTIONS.contains(n)) {
        anyhow::bail!("unknown projection {unknown:?}; the projections are {}", PROJECTIONS.join(", "));
    }
    let selection = Selection::of(&projections);
    let tables: Vec<&str> = projections.iter().flat_map(|p| tables_of(p).iter().copied()).collect();
    let store = PgEventStore::new(pool.clone());

    let mut conn = pool.acquire().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {SHADOW} CASCADE")).execute(&mut *conn).await?;
    sqlx::query(&format!("CREATE SCHEMA {SHADOW}")).execute(&mut *conn).await?;
    for table in &tables {
        sqlx::query(&format!("CREATE TABLE {SHADOW}.{table} (LIKE read_model.{table} INCLUDING ALL)"))
            .execute(&mut *conn)
            .await?;
    }

    // Build from the guard as it is now, without stopping anyone.
    let snapshot = guard(&mut conn).await?;
    let mut events = 0;
    let mut positions: HashMap<&'static str, i64> = HashMap::new();
    for chunk in snapshot.iter().collect::<Vec<_>>().chunks(200) {
        let mut tx = pool.begin().await?;
        sqlx::query(&format!("SET LOCAL search_path TO {SHADOW}")).execute(&mut *tx).await?;
        let mut batch = Vec::new();
        for (stream, version) in chunk {
            events += read_stream(&store, stream, 1, **version, &mut batch).await?;
        }
        let mut pending = Pending::default();
        apply(&mut tx, &batch, &mut pending, selection).await?;
        merge(&mut positions, pending.flush_into(&mut tx).await?);
        tx.commit().await?;
    }

    // Swap: pause the projector, catch up with what it applied meanwhile, move the tables.
    let mut tx = pool.begin().await?;
    sqlx::query("LOCK TABLE read_model.stream_versions IN EXCLUSIVE MODE").execute(&mut *tx).await?;
    sqlx::query(&format!("SET LOCAL search_path TO {SHADOW}")).execute(&mut *tx).await?;
    let current = guard(&mut tx).await?;
    let mut caught_up = 0;
    let mut batch = Vec::new();
    for (stream, version) in &current {
        let built = snapshot.get(stream).copied().unwrap_or(0);
        if *version > built {
            caught_up += read_stream(&store, stream, built + 1, *version, &mut batch).await?;
        }
    }
    let mut pending = Pending::default();
    apply(&mut tx, &batch, &mut pending, selection).await?;
    merge(&mut positions, pending.flush_into(&mut tx).await?);
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {RETIRED} CASCADE")).execute(&mut *tx).await?;
    sqlx::query(&format!("CREATE SCHEMA {RETIRED}")).execute(&mut *tx).await?;
    for table in &tables {
        sqlx::query(&format!("ALTER TABLE read_model.{table} SET SCHEMA {RETIRED}")).execute(&mut *tx).await?;
        sqlx::query(&format!("ALTER TABLE {SHADOW}.{table} SET SCHEMA read_model")).execute(&mut *tx).await?;
    }
    sqlx::query(&format!("DROP SCHEMA {RETIRED} CASCADE")).execute(&mut *tx).await?;
    sqlx::query(&format!("DROP SCHEMA {SHADOW} CASCADE")).execute(&mut *tx).await?;
    for projection in &projections {
        sqlx::query(
            "INSERT INTO projections.positions (projection, position) VALUES ($1, $2)
             ON CONFLICT (projection) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
        )
        .bind(projection)
        .bind(positions.get(projection).copied().unwrap_or(0))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(?projections, events, caught_up, "projections rebuilt");
    Ok(Rebuilt { projections, streams: current.len(), events: events + caught_up, caught_up })
}

async fn guard(conn: &mut PgConnection) -> Result<HashMap<String, i64>, sqlx::Error> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT stream_id, version FROM read_model.stream_versions").fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().collect())
}

/// Reads versions `from..=to` of one stream into `batch`, without the events that do not decode
/// (the projector dead-lettered them); returns how many it read.
async fn read_stream(
    store: &PgEventStore,
    stream: &str,
    from: i64,
    to: i64,
    batch: &mut Vec<(ProjectedEvent, Event)>,
) -> anyhow::Result<usize> {
    let stream_id = stream.parse()?;
    let events = store.read_stream(&stream_id, StreamRead::between(from, Some(to))).await?;
    for recorded in &events {
        if let Ok(decoded) = Event::from_recorded(recorded) {
            batch.push((ProjectedEvent::from(recorded), decoded));
        }
    }
    Ok(events.len())
}

fn merge(into: &mut HashMap<&'static str, i64>, from: HashMap<&'static str, i64>) {
    for (projection, position) in from {
        let entry = into.entry(projection).or_insert(position);
        *entry = (*entry).max(position);
    }
}
