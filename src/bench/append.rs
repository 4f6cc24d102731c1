//! `flowfuse bench append`: our append path against raw INSERT transactions of the same rows.
//!
//! Cases, each from the same number of concurrent clients on a fresh database:
//! (a) raw single-row INSERT transactions; (b) one event per `append_to_stream`;
//! (c) raw 100-row INSERT transactions; (d) 100-event appends. Ratios b/a and d/c are printed
//! with their targets (0.6 and 0.5).

use std::time::Duration;

use clap::Args;
use event_schemas::workflow::WorkflowDetailsChanged;
use event_schemas::{Actor, Category, Event, NewEvent, StreamId, WorkflowEvent};
use eventstore::{EventStore, ExpectedVersion, PgEventStore};
use sqlx::postgres::PgConnectOptions;
use sqlx::types::Json;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::LoadArgs;
use super::stats::{Summary, Workload, measure};

#[derive(Debug, Args)]
pub struct AppendArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Events per transaction in cases (c) and (d).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(2..=10_000))]
    batch: u32,
}

const PLACEHOLDER_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A realistic event: a workflow's details changed (about 150 bytes of payload).
fn sample_event(workspace_id: Uuid, n: usize) -> NewEvent {
    let event = Event::from(WorkflowEvent::from(WorkflowDetailsChanged {
        name: format!("Benchmark workflow {n}"),
        description: Some("Moves the nightly exports into the warehouse".into()),
        tags: vec!["bench".into(), format!("n{n}")],
    }));
    NewEvent::now(workspace_id, Actor::system("bench"), &event)
}

/// The raw baseline: the same rows into a table of the same shape and indexes as
/// `event_store.events` (without its foreign key and triggers), with no version check, no lock,
/// no canonicalization and no hashing.
pub(super) struct RawInsert {
    pool: PgPool,
    stream: String,
    workspace_id: Uuid,
    batch: usize,
    version: i64,
    /// The row to insert as the `n`th event of the stream.
    sample: fn(Uuid, usize) -> NewEvent,
}

impl RawInsert {
    pub(super) fn clients(pool: &PgPool, clients: usize, batch: usize) -> Vec<Self> {
        Self::clients_writing(pool, clients, batch, sample_event)
    }

    /// Clients inserting the rows `sample` makes, so that a baseline writes what the case it is
    /// compared with writes.
    pub(super) fn clients_writing(
        pool: &PgPool,
        clients: usize,
        batch: usize,
        sample: fn(Uuid, usize) -> NewEvent,
    ) -> Vec<Self> {
        (0..clients)
            .map(|_| RawInsert {
                pool: pool.clone(),
                stream: StreamId::new(Category::Workflow, Uuid::now_v7()).to_string(),
                workspace_id: Uuid::now_v7(),
                batch,
                version: 0,
                sample,
            })
            .collect()
    }
}

impl Workload for RawInsert {
    async fn once(&mut self) -> anyhow::Result<u64> {
        let first = self.version as usize;
        let events: Vec<NewEvent> = (first..first + self.batch).map(|n| (self.sample)(self.workspace_id, n)).collect();
        let versions: Vec<i64> = (1..=self.batch as i64).map(|v| self.version + v).collect();
        self.version += self.batch as i64;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO bench_raw_events (stream_id, version, event_id, event_type, schema_version, workspace_id,
                 occurred_at, actor, correlation_id, causation_id, payload, metadata, prev_hash, hash)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::uuid[], $4::text[], $5::int[], $6::uuid[],
                 $7::timestamptz[], $8::jsonb[], $9::text[], $10::text[], $11::jsonb[], $12::jsonb[], $13::text[],
                 $14::text[])",
        )
        .bind(&self.stream)
        .bind(versions)
        .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.schema_version as i32).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.workspace_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
        .bind(events.iter().map(|e| Json(&e.actor)).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.correlation_id.as_deref()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.causation_id.as_deref()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| Json(&e.payload)).collect::<Vec<_>>())
        .bind(events.iter().map(|e| Json(&e.metadata)).collect::<Vec<_>>())
        .bind(vec![PLACEHOLDER_HASH; self.batch])
        .bind(vec![PLACEHOLDER_HASH; self.batch])
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(self.batch as u64)
    }
}

/// Our path: one stream per client, each append with the exact expected version.
struct StoreAppend {
    store: PgEventStore,
    workspace_id: Uuid,
    stream: StreamId,
    batch: usize,
    version: i64,
}

impl Workload for StoreAppend {
    async fn once(&mut self) -> anyhow::Result<u64> {
        let first = self.version as usize;
        let events: Vec<NewEvent> = (first..first + self.batch).map(|n| sample_event(self.workspace_id, n)).collect();
        let result = self.store.append_to_stream(&self.stream, ExpectedVersion::Exact(self.version), events).await?;
        self.version = result.last_version;
        Ok(self.batch as u64)
    }
}

pub async fn run(database_url: &str, args: AppendArgs) -> anyhow::Result<()> {
    let pool = fresh_database(database_url, args.load.clients).await?;
    let store = PgEventStore::new(pool.clone());
    let server: (String,) = sqlx::query_as("SHOW server_version").fetch_one(&pool).await?;
    let (clients, batch) = (args.load.clients as usize, args.batch as usize);
    println!(
        "FlowFuse append benchmark: {clients} clients, {}s per case after {}s warm-up, PostgreSQL {}",
        args.load.seconds, args.load.warmup_seconds, server.0
    );
    let warmup = Duration::from_secs(args.load.warmup_seconds);
    let duration = Duration::from_secs(args.load.seconds);
    let raw = |batch| RawInsert::clients(&pool, clients, batch);
    let ours = |batch| {
        (0..clients)
            .map(|_| StoreAppend {
                store: store.clone(),
                workspace_id: Uuid::now_v7(),
                stream: StreamId::new(Category::Workflow, Uuid::now_v7()),
                batch,
                version: 0,
            })
            .collect::<Vec<_>>()
    };
    let a = measure(raw(1), warmup, duration).await?;
    print_row("(a) raw INSERT, 1 row per transaction", &a, "events/s");
    let b = measure(ours(1), warmup, duration).await?;
    print_row("(b) append_to_stream, 1 event per call", &b, "events/s");
    let c = measure(raw(batch), warmup, duration).await?;
    print_row(&format!("(c) raw INSERT, {batch} rows per transaction"), &c, "events/s");
    let d = measure(ours(batch), warmup, duration).await?;
    print_row(&format!("(d) append_to_stream, {batch} events per call"), &d, "events/s");
    print_ratio("b/a", &b, &a, 0.6);
    print_ratio("d/c", &d, &c, 0.5);
    Ok(())
}

/// A case's rate in `unit` (what a call of its workload counts: events, requests) and latencies.
pub(super) fn print_row(case: &str, summary: &Summary, unit: &str) {
    println!(
        "{case:<46} {:>10.0} {unit}   p50 {:>7.2} ms   p99 {:>7.2} ms",
        summary.events_per_second(),
        summary.percentile_ms(0.50),
        summary.percentile_ms(0.99)
    );
}

pub(super) fn print_ratio(name: &str, ours: &Summary, raw: &Summary, target: f64) {
    let ratio = ours.events_per_second() / raw.events_per_second();
    let verdict = if ratio >= target { "met" } else { "NOT met" };
    println!("{name} = {ratio:.2} (target >= {target}: {verdict})");
}

/// The URL of `<database>_bench`, the scratch database of the benchmarks.
pub(super) fn bench_url(database_url: &str) -> anyhow::Result<String> {
    let options: PgConnectOptions = database_url.parse()?;
    let name = format!("{}_bench", options.get_database().unwrap_or("flowfuse"));
    Ok(options.database(&name).to_url_lossy().to_string())
}

/// Drops and recreates `<database>_bench` next to the configured database, migrated, with the
/// raw baseline's table.
pub(super) async fn fresh_database(database_url: &str, clients: u32) -> anyhow::Result<PgPool> {
    let url = bench_url(database_url)?;
    let options: PgConnectOptions = url.parse()?;
    let name = options.get_database().unwrap_or_default().to_owned();
    let mut admin = PgConnection::connect_with(&options.database("postgres")).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut admin).await?;
    admin.close().await?;
    // Creates the database again, and migrates it.
    crate::database::migrate(&url).await?;
    let pool = crate::database::connect(&url, clients + 2).await?;
    sqlx::query("CREATE TABLE bench_raw_events (LIKE event_store.events INCLUDING ALL)").execute(&pool).await?;
    Ok(pool)
}
