//! `flowfuse bench pipeline`: (a) the relay against a bare rdkafka producer sending the same
//! records; (b) the projector against raw batched INSERTs of the rows it writes, in alternating
//! rounds; (c) freshness, from command accepted to visible in the read models, at a steady
//! command rate.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Args;
use event_schemas::workflow::{WorkflowCreated, WorkflowDetailsChanged};
use event_schemas::{Actor, Category, Event, NewEvent, StreamId, WorkflowEvent};
use eventstore::{EventStore, ExpectedVersion, LogCheckpoint, PgEventStore};
use projections::{KafkaConfig, Projector, Relay};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgPool;
use uuid::Uuid;

use super::append::{bench_url, fresh_database};
use super::freshness::{self, Freshness};
use super::stats::ROUNDS;

#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Kafka bootstrap servers of a scratch broker.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    kafka_brokers: String,
    /// Events for (a) and (b).
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Commands per second for (c).
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Seconds of steady load for (c).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Seconds of (c)'s load before it is measured.
    #[arg(long, default_value_t = 3)]
    warmup_seconds: u64,
}

pub async fn run(database_url: &str, args: PipelineArgs) -> anyhow::Result<()> {
    let pool = fresh_database(database_url, 24).await?;
    // The relay's leader connection goes to the same scratch database as the pool.
    let database_url = &bench_url(database_url)?;
    let store = PgEventStore::new(pool.clone());
    let kafka = KafkaConfig::new(&args.kafka_brokers);
    let run_id = Uuid::now_v7().simple().to_string();
    projections::kafka::ensure_topics(&kafka).await?;
    println!(
        "FlowFuse pipeline benchmark: {} events, then {} commands/s for {}s after {}s warm-up",
        args.events, args.rate, args.seconds, args.warmup_seconds
    );

    seed(&store, args.events).await?;
    let events = store.read_all(LogCheckpoint::START, i64::MAX).await?;
    let bare = bare_producer(&kafka, &events, &format!("bench.raw.{run_id}")).await?;
    let relay = relay_throughput(&pool, database_url, &kafka, events.len()).await?;
    println!(
        "(a) bare producer {bare:>10.0} events/s   relay {relay:>10.0} events/s   a = {:.2} (target >= 0.5: {})",
        relay / bare,
        verdict(relay / bare >= 0.5)
    );

    let (raw, projector, group) = projector_against_raw(&pool, &kafka, &events, &run_id).await?;
    println!(
        "(b) raw INSERTs   {raw:>10.0} events/s   projector {projector:>10.0} events/s   b = {:.2} (target >= 0.5: {})",
        projector / raw,
        verdict(projector / raw >= 0.5)
    );

    let relay = Relay::new(database_url, kafka.clone());
    // As in `serve`: the projector has connections of its own, apart from the HTTP requests'.
    let projector_pool = crate::database::connect(database_url, 4).await?;
    // The last group of (b): it goes on from where that round left the read models.
    let projector = Projector::new(projector_pool, kafka.clone()).with_group(group);
    let roles = tokio::spawn(async move {
        let never = std::future::pending::<()>;
        let _ = tokio::join!(relay.run(never()), projector.run(never()));
    });
    let Freshness { p50, p99, sent, accepted } = freshness::measure(
        &pool,
        args.rate,
        Duration::from_secs(args.warmup_seconds),
        Duration::from_secs(args.seconds),
    )
    .await?;
    roles.abort();
    println!(
        "(c) freshness at {} commands/s ({sent} sent, {accepted} accepted): p50 {p50:.1} ms   p99 {p99:.1} ms (target p99 <= 100 ms: {})",
        args.rate,
        verdict(p99 <= 100.0)
    );
    Ok(())
}

/// How long (a) or (b) may take before the benchmark gives up with an error rather than wait for
/// ever (a run takes seconds; a lost record or a group that never forms would stall it).
const STALLED: Duration = Duration::from_secs(180);

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// `events` workflow events in streams of 100 (a creation, then detail changes), appended 100 per
/// call.
async fn seed(store: &PgEventStore, events: usize) -> anyhow::Result<()> {
    let workspace = Uuid::now_v7();
    for chunk in (0..events).collect::<Vec<_>>().chunks(100) {
        let stream = StreamId::new(Category::Workflow, Uuid::now_v7());
        let batch: Vec<NewEvent> = chunk
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let event: WorkflowEvent = if i == 0 {
                    WorkflowCreated {
                        workflow_id: stream.id(),
                        name: format!("Bench {n}"),
                        description: Some("seeded".into()),
                        tags: vec!["bench".into()],
                        team_id: None,
                        definition: Default::default(),
                    }
                    .into()
                } else {
                    WorkflowDetailsChanged {
                        name: format!("Bench {n}"),
                        description: None,
                        tags: vec![format!("t{i}")],
                    }
                    .into()
                };
                NewEvent::now(workspace, Actor::system("bench"), &Event::from(event))
            })
            .collect();
        store.append_to_stream(&stream, ExpectedVersion::Any, batch).await?;
    }
    Ok(())
}

/// The same records the relay sends (topic apart), from a producer with the relay's settings.
async fn bare_producer(kafka: &KafkaConfig, events: &[eventstore::GlobalEvent], topic: &str) -> anyhow::Result<f64> {
    let admin: AdminClient<DefaultClientContext> = kafka.client().create()?;
    let new_topic = NewTopic::new(topic, kafka.partitions, TopicReplication::Fixed(kafka.replication));
    for result in admin.create_topics([&new_topic], &AdminOptions::new()).await? {
        result.map_err(|(topic, code)| anyhow::anyhow!("cannot create {topic}: {code}"))?;
    }
    let producer: FutureProducer =
        kafka.client().set("enable.idempotence", "true").set("acks", "all").set("linger.ms", "2").create()?;
    let started = Instant::now();
    for page in events.chunks(500) {
        let mut deliveries = Vec::with_capacity(page.len());
        for global in page {
            let event = &global.event;
            let key = event.stream_id.to_string();
            let payload = serde_json::to_vec(&event.payload)?;
            let headers = projections::cloudevents::headers(event);
            let record = FutureRecord::to(topic).key(&key).payload(&payload).headers(headers);
            deliveries.push(producer.send_result(record).map_err(|(e, _)| e)?);
        }
        for delivery in deliveries {
            delivery.await?.map_err(|(e, _)| e)?;
        }
    }
    Ok(events.len() as f64 / started.elapsed().as_secs_f64())
}

async fn relay_throughput(pool: &PgPool, url: &str, kafka: &KafkaConfig, count: usize) -> anyhow::Result<f64> {
    let relay = Relay::new(url, kafka.clone());
    let started = Instant::now();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        relay
            .run(async {
                stopped.await.ok();
            })
            .await
    });
    let last: i64 = sqlx::query_scalar("SELECT max(global_position) FROM event_store.events").fetch_one(pool).await?;
    let deadline = Instant::now() + STALLED;
    loop {
        let position: i64 =
            sqlx::query_scalar("SELECT position FROM projections.relay_checkpoint").fetch_one(pool).await?;
        if position >= last {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the relay stalled at position {position} of {last}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    task.await??;
    Ok(count as f64 / elapsed.as_secs_f64())
}

/// (b) in [`ROUNDS`] alternating rounds (raw, projector, raw, …), each side's rounds added up:
/// the machine's drift (checkpoints, autovacuum, a neighbour's load) then falls on both sides
/// alike, where single back-to-back runs of a second or two drifted by tens of per cent on one
/// side alone. Each projector round starts from empty read models in a new consumer group and
/// reads the topics from their start. Returns both rates, and the last round's group.
async fn projector_against_raw(
    pool: &PgPool,
    kafka: &KafkaConfig,
    events: &[eventstore::GlobalEvent],
    run_id: &str,
) -> anyhow::Result<(f64, f64, String)> {
    sqlx::query("CREATE TABLE bench_audit (LIKE read_model.audit_log INCLUDING ALL)").execute(pool).await?;
    sqlx::query("CREATE TABLE bench_versions (LIKE read_model.workflow_versions INCLUDING ALL)").execute(pool).await?;
    let definitions = definitions_in_force(events);
    // Every projection's tables, the version guard and the positions: a projector round then
    // finds the read models as a new deployment would.
    let tables = projections::PROJECTIONS.iter().flat_map(|p| projections::tables_of(p));
    let empty_read_models = format!(
        "TRUNCATE {}, read_model.stream_versions, projections.positions",
        tables.map(|t| format!("read_model.{t}")).collect::<Vec<_>>().join(", ")
    );
    let (mut raw, mut projector) = ((0, Duration::ZERO), (0, Duration::ZERO));
    let mut group = String::new();
    for round in 0..ROUNDS {
        sqlx::query("TRUNCATE bench_audit, bench_versions").execute(pool).await?;
        raw.0 += events.len();
        raw.1 += raw_inserts(pool, events, &definitions).await?;
        sqlx::query(&empty_read_models).execute(pool).await?;
        group = format!("bench-{run_id}-{round}");
        let (applied, elapsed) = projector_throughput(pool, kafka, events.len(), &group).await?;
        projector.0 += applied;
        projector.1 += elapsed;
    }
    let rate = |(n, elapsed): (usize, Duration)| n as f64 / elapsed.as_secs_f64();
    Ok((rate(raw), rate(projector), group))
}

/// The definition in force after each event, which is what its workflow version row holds: the
/// last one a creation, change or rollback of its stream carried.
fn definitions_in_force(events: &[eventstore::GlobalEvent]) -> Vec<serde_json::Value> {
    let mut current: HashMap<StreamId, serde_json::Value> = HashMap::new();
    events
        .iter()
        .map(|global| {
            let event = &global.event;
            let definition = current.entry(event.stream_id).or_default();
            if let Some(changed) = event.payload.get("definition") {
                definition.clone_from(changed);
            }
            definition.clone()
        })
        .collect()
}

/// Per event, the rows the projector appends (an audit row and a workflow version with the
/// definition then in force), in batches of 500 per transaction, into tables of the same shape;
/// returns how long all of it took.
async fn raw_inserts(
    pool: &PgPool,
    events: &[eventstore::GlobalEvent],
    definitions: &[serde_json::Value],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for (page, definitions) in events.chunks(500).zip(definitions.chunks(500)) {
        let page: Vec<&event_schemas::RecordedEvent> = page.iter().map(|g| &g.event).collect();
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO bench_audit (workspace_id, position, occurred_at, actor_kind, actor_id, event_type, stream_id,
                 version, correlation_id, summary)
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
                 $7::text[], $8::bigint[], $9::text[], $10::text[])",
        )
        .bind(page.iter().map(|e| e.workspace_id).collect::<Vec<_>>())
        .bind(page.iter().map(|e| e.global_position).collect::<Vec<_>>())
        .bind(page.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
        .bind(page.iter().map(|_| "system").collect::<Vec<_>>())
        .bind(page.iter().map(|e| e.actor.id.as_str()).collect::<Vec<_>>())
        .bind(page.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
        .bind(page.iter().map(|e| e.stream_id.to_string()).collect::<Vec<_>>())
        .bind(page.iter().map(|e| e.version).collect::<Vec<_>>())
        .bind(page.iter().map(|e| e.correlation_id.as_deref()).collect::<Vec<_>>())
        .bind(page.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO bench_versions (workspace_id, workflow_id, version, event_type, author, message, occurred_at,
                 position, definition)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                 $7::timestamptz[], $8::bigint[], $9::jsonb[])",
        )
        .bind(page.iter().map(|e| e.workspace_id).collect::<Vec<_>>())
        .bind(page.iter().map(|e| e.stream_id.id()).collect::<Vec<_>>())
        .bind(page.iter().map(|e| e.version).collect::<Vec<_>>())
        .bind(page.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
        .bind(page.iter().map(|e| e.actor.id.as_str()).collect::<Vec<_>>())
        .bind(page.iter().map(|_| None::<&str>).collect::<Vec<_>>())
        .bind(page.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
        .bind(page.iter().map(|e| e.global_position).collect::<Vec<_>>())
        .bind(definitions)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(started.elapsed())
}

/// From the first event in the read models to the last: joining the consumer group (seconds on
/// Tansu) happens once per process and is not throughput. Returns the events applied in that
/// time, and the time.
async fn projector_throughput(
    pool: &PgPool,
    kafka: &KafkaConfig,
    count: usize,
    group: &str,
) -> anyhow::Result<(usize, Duration)> {
    let projector = Projector::new(pool.clone(), kafka.clone()).with_group(group);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        projector
            .run(async {
                stopped.await.ok();
            })
            .await
    });
    // Events applied, from the version guard (a row per stream: cheap to sum, where counting the
    // audit log would scan it every time and slow down what it measures).
    let applied = async || -> anyhow::Result<usize> {
        let n: Option<i64> =
            sqlx::query_scalar("SELECT sum(version)::bigint FROM read_model.stream_versions").fetch_one(pool).await?;
        Ok(n.unwrap_or(0) as usize)
    };
    let deadline = Instant::now() + STALLED;
    let (started, before) = loop {
        let n = applied().await?;
        if n > 0 {
            break (Instant::now(), n);
        }
        anyhow::ensure!(Instant::now() < deadline, "the projector applied nothing (has it joined its group?)");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    loop {
        let n = applied().await?;
        if n >= count {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the projector stalled after {n} of {count} events");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    task.await??;
    Ok((count - before, elapsed))
}
