//! `flowfuse bench pipeline`: (a) the relay against a bare rdkafka producer sending the same
//! records; (b) the projector against raw batched INSERTs of the rows it writes; (c) freshness,
//! from command accepted to visible in the read models, at a steady command rate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use commands::CommandApi;
use commands::bootstrap::create_workspace;
use event_schemas::types::Plan;
use event_schemas::workflow::{WorkflowCreated, WorkflowDetailsChanged};
use event_schemas::{Actor, Category, Event, NewEvent, StreamId, WorkflowEvent};
use eventstore::{EventStore, ExpectedVersion, LogCheckpoint, PgEventStore};
use projections::{KafkaConfig, Projector, Relay};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use sqlx::{Connection, PgPool};
use uuid::Uuid;

use super::append::{bench_url, fresh_database};

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
        "FlowFuse pipeline benchmark: {} events, then {} commands/s for {}s",
        args.events, args.rate, args.seconds
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

    let raw = raw_inserts(&pool, &events).await?;
    let projector = projector_throughput(&pool, &kafka, events.len(), &run_id).await?;
    println!(
        "(b) raw INSERTs   {raw:>10.0} events/s   projector {projector:>10.0} events/s   b = {:.2} (target >= 0.5: {})",
        projector / raw,
        verdict(projector / raw >= 0.5)
    );

    let relay = Relay::new(database_url, kafka.clone());
    // As in `serve`: the projector has connections of its own, apart from the HTTP requests'.
    let projector_pool = crate::database::connect(database_url, 4).await?;
    let projector = Projector::new(projector_pool, kafka.clone()).with_group(format!("bench-{run_id}"));
    let roles = tokio::spawn(async move {
        let never = std::future::pending::<()>;
        let _ = tokio::join!(relay.run(never()), projector.run(never()));
    });
    let Freshness { p50, p99, sent, accepted } = freshness(&pool, args.rate, Duration::from_secs(args.seconds)).await?;
    roles.abort();
    println!(
        "(c) freshness at {} commands/s ({sent} sent, {accepted} accepted): p50 {p50:.1} ms   p99 {p99:.1} ms (target p99 <= 100 ms: {})",
        args.rate,
        verdict(p99 <= 100.0)
    );
    Ok(())
}

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
    loop {
        let position: i64 =
            sqlx::query_scalar("SELECT position FROM projections.relay_checkpoint").fetch_one(pool).await?;
        if position >= last {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    task.await??;
    Ok(count as f64 / elapsed.as_secs_f64())
}

/// Per event, the rows the projector appends (an audit row and a workflow version), in batches of
/// 500 per transaction, into tables of the same shape.
async fn raw_inserts(pool: &PgPool, events: &[eventstore::GlobalEvent]) -> anyhow::Result<f64> {
    sqlx::query("CREATE TABLE bench_audit (LIKE read_model.audit_log INCLUDING ALL)").execute(pool).await?;
    sqlx::query("CREATE TABLE bench_versions (LIKE read_model.workflow_versions INCLUDING ALL)").execute(pool).await?;
    let started = Instant::now();
    for page in events.chunks(500) {
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
        .bind(page.iter().map(|e| &e.payload["definition"]).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(events.len() as f64 / started.elapsed().as_secs_f64())
}

/// From the first event in the read models to the last: joining the consumer group (seconds on
/// Tansu) happens once per process and is not throughput.
async fn projector_throughput(pool: &PgPool, kafka: &KafkaConfig, count: usize, run_id: &str) -> anyhow::Result<f64> {
    let projector = Projector::new(pool.clone(), kafka.clone()).with_group(format!("bench-{run_id}"));
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
    let (started, before) = loop {
        let n = applied().await?;
        if n > 0 {
            break (Instant::now(), n);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    while applied().await? < count {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    task.await??;
    Ok((count - before) as f64 / elapsed.as_secs_f64())
}

/// Definition changes a workflow gets after its creation in the freshness load, as in
/// `bench commands`: one create in six commands.
const CHANGES_PER_WORKFLOW: i64 = 5;

/// Steady `rate` commands per second over HTTP with the relay and projector running: workflow
/// creates, and definition changes (with `If-Match`) of workflows no other command is changing;
/// returns p50 and p99 of accepted-to-visible in milliseconds.
async fn freshness(pool: &PgPool, rate: u32, duration: Duration) -> anyhow::Result<Freshness> {
    let api = CommandApi::bind(pool.clone(), "127.0.0.1:0".parse()?).await?;
    let base = format!("http://{}", api.local_addr());
    tokio::spawn(api.run_until_stopped(std::future::pending()));
    let workspace =
        create_workspace(pool, "Freshness", None, Plan::Enterprise).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let base = format!("{base}/v1/workspaces/{}", workspace.workspace_id);
    // Steady state: the projector has joined its group (seconds on Tansu) and applied everything
    // before the first command is sent.
    projections::status::wait_until_caught_up(pool, Duration::from_secs(60)).await?;
    let client = reqwest::Client::new();
    let accepted: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let seen: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    // Workflows whose last command has been answered, with their version.
    let idle: Arc<Mutex<std::collections::VecDeque<(String, i64)>>> = Arc::default();

    // The watcher: when does each accepted position appear in the read models? (Positions reach
    // the read models out of order, across partitions: it asks for each one still missing.) It
    // has a connection of its own, so that it never queues behind the load's requests.
    let mut watch_conn = sqlx::PgConnection::connect_with(&pool.connect_options()).await?;
    let watcher = {
        let (seen, accepted) = (seen.clone(), accepted.clone());
        tokio::spawn(async move {
            loop {
                let pending: Vec<i64> = {
                    let seen = seen.lock().unwrap();
                    accepted.lock().unwrap().keys().filter(|p| !seen.contains_key(*p)).copied().collect()
                };
                let rows: Vec<i64> =
                    sqlx::query_scalar("SELECT position FROM read_model.audit_log WHERE position = ANY($1)")
                        .bind(&pending)
                        .fetch_all(&mut watch_conn)
                        .await
                        .unwrap_or_default();
                let now = Instant::now();
                {
                    let mut seen = seen.lock().unwrap();
                    for position in rows {
                        seen.entry(position).or_insert(now);
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let deadline = Instant::now() + duration;
    let mut sent = 0usize;
    let mut tasks = Vec::new();
    while Instant::now() < deadline {
        ticker.tick().await;
        let (client, base, key) = (client.clone(), base.clone(), workspace.api_key.clone());
        let (accepted, idle) = (accepted.clone(), idle.clone());
        sent += 1;
        let n = sent;
        let next = idle.lock().unwrap().pop_front();
        tasks.push(tokio::spawn(async move {
            let definition = |steps: i64| {
                let nodes: Vec<_> = (0..=steps)
                    .map(|i| {
                        json!({"id": format!("n{i}"), "type": if i == 0 { "trigger" } else { "action" },
                        "name": format!("N{i}"), "position": {"x": i * 100, "y": 0}})
                    })
                    .collect();
                let edges: Vec<_> = (1..=steps)
                    .map(|i| json!({"id": format!("e{i}"), "source": format!("n{}", i - 1), "target": format!("n{i}")}))
                    .collect();
                json!({"nodes": nodes, "edges": edges})
            };
            let request = match &next {
                Some((id, version)) => client
                    .put(format!("{base}/workflows/{id}/definition"))
                    .header("if-match", format!("\"{version}\""))
                    .json(&json!({"definition": definition(*version), "message": format!("step {version}")})),
                None => client
                    .post(format!("{base}/workflows"))
                    .json(&json!({"name": format!("Fresh {n}"), "definition": definition(0)})),
            };
            let Ok(response) = request.bearer_auth(&key).send().await else { return };
            let at = Instant::now();
            let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let Some(position) = header("x-consistency-token").and_then(|v| v.parse::<i64>().ok()) else { return };
            accepted.lock().unwrap().insert(position, at);
            let version = header("etag").and_then(|v| v.trim_matches('"').parse::<i64>().ok());
            let id = match next {
                Some((id, _)) => Some(id),
                None => {
                    response.json::<serde_json::Value>().await.ok().and_then(|b| b["id"].as_str().map(str::to_owned))
                }
            };
            if let (Some(id), Some(version)) = (id, version)
                && version <= CHANGES_PER_WORKFLOW
            {
                idle.lock().unwrap().push_back((id, version));
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let settle = Instant::now() + Duration::from_secs(30);
    while Instant::now() < settle {
        let done = { accepted.lock().unwrap().keys().all(|p| seen.lock().unwrap().contains_key(p)) };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watcher.abort();
    let accepted = accepted.lock().unwrap();
    let seen = seen.lock().unwrap();
    let mut latencies: Vec<f64> = accepted
        .iter()
        .map(|(position, at)| {
            seen.get(position).map_or(30_000.0, |visible| visible.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pick =
        |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    Ok(Freshness { p50: pick(0.5), p99: pick(0.99), sent, accepted: latencies.len() })
}

struct Freshness {
    p50: f64,
    p99: f64,
    sent: usize,
    accepted: usize,
}
