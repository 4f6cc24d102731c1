//! The relay: the global log, behind the visibility fence, into Kafka (ARCHITECTURE.md 3 and 5).
//!
//! Exactly one relay is active: each instance tries to take a PostgreSQL advisory lock on its own
//! connection; the holder relays, the others retry every second and take over within about a
//! second of the leader's death (PostgreSQL releases the lock with the leader's session). The
//! leader reads pages of events after its checkpoint and produces them (idempotent producer,
//! `acks=all`, key = stream id), a few pages ahead of the acks; it advances its checkpoint past a
//! page only once every record of that page and of the pages before it is acknowledged, on the
//! connection that holds the lock: an instance that lost the lock cannot move it.
//!
//! The relay is the only creator of topics. When a topic it had records acknowledged on is gone,
//! the broker lost it (Tansu with memory storage restarts empty; an operator deleted it): the
//! relay bumps the broker epoch (so that no consumer positions itself by offsets into the lost
//! topic), then recreates the topic and republishes the whole log; consumers drop what they
//! already applied. It checks after every produce error and every few seconds when idle. (A
//! partition's high watermark is no help here: Tansu's can trail the offsets it acknowledged.)

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use std::future::Future;
use std::pin::Pin;

use anyhow::Context;
use eventstore::{EventStore, GlobalEvent, LogCheckpoint, PgEventStore};
use futures::FutureExt;
use futures::stream::{FuturesOrdered, StreamExt};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::cloudevents;
use crate::kafka::{KafkaConfig, all_topics, ensure_topics, existing_topics, topic_for};

/// The advisory lock that elects the leader.
const LEADER_LOCK: i64 = 0x666c_6f77_7265_6c61; // "flowrela"
const PAGE: i64 = 500;
/// Pages produced and not yet acknowledged, at most.
const IN_FLIGHT: usize = 8;

pub struct Relay {
    database_url: String,
    kafka: KafkaConfig,
    /// Pause between reads when the log has nothing new.
    pub idle_poll: Duration,
}

impl Relay {
    /// A relay that opens its own connections to `database_url`: it must not queue behind the
    /// requests of the roles it may share a process with.
    pub fn new(database_url: impl Into<String>, kafka: KafkaConfig) -> Self {
        // An empty read behind the fence is one index probe; 200 of them a second cost PostgreSQL
        // little, and an event waits 2.5 ms for the relay on average.
        Self { database_url: database_url.into(), kafka, idle_poll: Duration::from_millis(5) }
    }

    /// Contends for leadership and relays while leading, until `shutdown` resolves.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                result = self.lead_when_elected() => {
                    if let Err(error) = result {
                        tracing::warn!(error = format!("{error:#}"), "relay stepped down; retrying");
                        metrics::counter!("relay_errors_total").increment(1);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn lead_when_elected(&self) -> anyhow::Result<()> {
        // The name lets operators (and tests) see which process leads, in pg_stat_activity.
        let options: PgConnectOptions = self.database_url.parse()?;
        let options = options.application_name(&format!("flowfuse relay {}", std::process::id()));
        let mut conn = PgConnection::connect_with(&options).await?;
        loop {
            let (elected,): (bool,) =
                sqlx::query_as("SELECT pg_try_advisory_lock($1)").bind(LEADER_LOCK).fetch_one(&mut conn).await?;
            if elected {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tracing::info!("relay elected leader");
        metrics::gauge!("relay_leader").set(1.0);
        let reader = eventstore::pool_options(1).connect_with(options).await?;
        let result = self.lead(&mut conn, &PgEventStore::new(reader)).await;
        metrics::gauge!("relay_leader").set(0.0);
        result
    }

    async fn lead(&self, conn: &mut PgConnection, store: &PgEventStore) -> anyhow::Result<()> {
        let producer: FutureProducer = self
            .kafka
            .client()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", "30000")
            .create()?;
        let mut acked = load_partitions(conn).await?;
        if self.topics_were_lost(conn, &acked).await? {
            acked.clear();
        }
        let mut checkpoint = load_checkpoint(conn).await?;
        tracing::debug!(%checkpoint, "relaying from checkpoint");
        // Pages are read and produced without waiting for the acks of those before them (up to
        // IN_FLIGHT pages); the checkpoint follows the acks, in log order. Waiting for each page's
        // acks before reading the next would add a broker round trip to every event's latency.
        let mut in_flight: FuturesOrdered<Acks> = FuturesOrdered::new();
        let mut read_to = checkpoint;
        let mut last_topic_check = Instant::now();
        let mut last_keepalive = Instant::now();
        let mut topic_check: Option<tokio::task::JoinHandle<anyhow::Result<HashSet<String>>>> = None;
        loop {
            let mut sent = false;
            if in_flight.len() < IN_FLIGHT {
                let page = store.read_all(read_to, PAGE).await?;
                if let Some(last) = page.last() {
                    read_to = last.checkpoint;
                    in_flight.push_back(send_page(&producer, page)?);
                    sent = true;
                }
            }
            // The acks that are in, in log order; with nothing new sent, wait for the oldest a while.
            let mut done = Vec::new();
            while let Some(Some(acks)) = in_flight.next().now_or_never() {
                done.push(acks);
            }
            if done.is_empty()
                && !sent
                && let Ok(Some(acks)) = tokio::time::timeout(self.idle_poll, in_flight.next()).await
            {
                done.push(acks);
            }
            if !done.is_empty() {
                // On an error the checkpoint has not moved past it: whatever was not acknowledged
                // is produced again by a fresh producer (an idempotent producer's errors can be
                // fatal to it).
                let mut events = 0;
                for acks in done {
                    let acks = acks.context("produce failed")?;
                    for (key, offset) in acks.offsets {
                        let entry = acked.entry(key).or_insert(offset);
                        *entry = (*entry).max(offset);
                    }
                    checkpoint = acks.checkpoint;
                    events += acks.events;
                }
                save_checkpoint(conn, checkpoint, &acked).await?;
                metrics::counter!("relay_events_total").increment(events as u64);
                metrics::gauge!("relay_position").set(checkpoint.position as f64);
                continue;
            }
            if sent || !in_flight.is_empty() {
                continue;
            }
            // The broker's topic list comes from a client of its own (hundreds of milliseconds on
            // a loaded Tansu): it is fetched beside the relaying, which must not stall for it.
            if topic_check.as_ref().is_some_and(tokio::task::JoinHandle::is_finished) {
                let existing = topic_check.take().expect("checked above").await??;
                if self.lost_topics(conn, &acked, &existing).await? {
                    // A new broker needs a new producer (a new idempotent producer id).
                    anyhow::bail!("the broker lost data; reconnecting to republish");
                }
            } else if topic_check.is_none() && last_topic_check.elapsed() > Duration::from_secs(2) {
                last_topic_check = Instant::now();
                let kafka = self.kafka.clone();
                topic_check = Some(tokio::spawn(async move { existing_topics(&kafka).await }));
            }
            // Keep the session (and the lock) checked while idle.
            if last_keepalive.elapsed() > Duration::from_secs(1) {
                last_keepalive = Instant::now();
                sqlx::query("SELECT 1").execute(&mut *conn).await?;
            }
            tokio::time::sleep(self.idle_poll).await;
        }
    }

    /// Whether a topic that had records acknowledged is gone; if so, rewinds to the start of the
    /// log under a new broker epoch. Then creates whichever topics are missing: only after the
    /// epoch moved, so a consumer assigned to a new topic never reads offsets of its predecessor.
    async fn topics_were_lost(
        &self,
        conn: &mut PgConnection,
        acked: &HashMap<(String, i32), i64>,
    ) -> anyhow::Result<bool> {
        let existing = existing_topics(&self.kafka).await?;
        self.lost_topics(conn, acked, &existing).await
    }

    /// [`Self::topics_were_lost`], given the topics the broker has.
    async fn lost_topics(
        &self,
        conn: &mut PgConnection,
        acked: &HashMap<(String, i32), i64>,
        existing: &HashSet<String>,
    ) -> anyhow::Result<bool> {
        let mut lost: Vec<&str> =
            acked.keys().map(|(topic, _)| topic.as_str()).filter(|t| !existing.contains(*t)).collect();
        lost.sort_unstable();
        lost.dedup();
        if !lost.is_empty() {
            tracing::warn!(topics = ?lost, "topics the broker had acknowledged records on are gone");
            self.restart_after_data_loss(conn).await?;
        }
        if all_topics().iter().any(|t| !existing.contains(t)) {
            ensure_topics(&self.kafka).await?;
        }
        Ok(!lost.is_empty())
    }

    /// Rewinds to the start of the log, under a new broker epoch: everything is produced again to
    /// the new topics, and offsets stored for the old ones are void.
    async fn restart_after_data_loss(&self, conn: &mut PgConnection) -> anyhow::Result<()> {
        tracing::warn!("republishing the whole event log to the broker");
        metrics::counter!("relay_republish_total").increment(1);
        let mut tx = conn.begin().await?;
        sqlx::query("UPDATE projections.broker_epoch SET epoch = epoch + 1").execute(&mut *tx).await?;
        sqlx::query("UPDATE projections.relay_checkpoint SET tx_id = 0, position = 0, updated_at = now()")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM projections.relay_partitions").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A page's acks: where the log is relayed to once they are in, how many events, and the highest
/// acknowledged offset per partition.
struct PageAcks {
    checkpoint: LogCheckpoint,
    events: usize,
    offsets: HashMap<(String, i32), i64>,
}

type Acks = Pin<Box<dyn Future<Output = anyhow::Result<PageAcks>> + Send>>;

/// Hands every event of `page` to the producer now, in log order (so that each partition gets
/// its records in order; the idempotent producer keeps that order across retries), and returns
/// the future of their acks.
fn send_page(producer: &FutureProducer, page: Vec<GlobalEvent>) -> anyhow::Result<Acks> {
    let started = Instant::now();
    let mut oldest = Duration::ZERO;
    let mut deliveries = Vec::with_capacity(page.len());
    for global in &page {
        let event = &global.event;
        // From the command's decision to the broker: the append, the wait for the visibility
        // fence and the relay's polling.
        let age = crate::age_of(event.occurred_at);
        oldest = oldest.max(age);
        metrics::histogram!("relay_event_age_seconds").record(age.as_secs_f64());
        let topic = topic_for(event.stream_id.category());
        let key = event.stream_id.to_string();
        let payload = serde_json::to_vec(&event.payload)?;
        let record = FutureRecord::to(&topic).key(&key).payload(&payload).headers(cloudevents::headers(event));
        let delivery = producer.send_result(record).map_err(|(error, _)| error)?;
        deliveries.push((topic, delivery));
    }
    tracing::debug!(events = page.len(), age_ms = oldest.as_secs_f64() * 1000.0, "producing a page");
    let checkpoint = page.last().expect("non-empty page").checkpoint;
    Ok(Box::pin(async move {
        let mut offsets = HashMap::new();
        let events = deliveries.len();
        for (topic, delivery) in deliveries {
            let delivered = delivery.await.map_err(|_| anyhow::anyhow!("the producer was dropped"))?;
            let delivered = delivered.map_err(|(error, _)| error)?;
            let entry = offsets.entry((topic, delivered.partition)).or_insert(delivered.offset);
            *entry = (*entry).max(delivered.offset);
        }
        metrics::histogram!("relay_produce_duration_seconds").record(started.elapsed().as_secs_f64());
        Ok(PageAcks { checkpoint, events, offsets })
    }))
}

async fn load_checkpoint(conn: &mut PgConnection) -> anyhow::Result<LogCheckpoint> {
    let (tx_id, position): (i64, i64) =
        sqlx::query_as("SELECT tx_id, position FROM projections.relay_checkpoint").fetch_one(&mut *conn).await?;
    Ok(LogCheckpoint { tx_id: u64::try_from(tx_id)?, position })
}

async fn load_partitions(conn: &mut PgConnection) -> anyhow::Result<HashMap<(String, i32), i64>> {
    let rows: Vec<(String, i32, i64)> =
        sqlx::query_as("SELECT topic, partition, last_offset FROM projections.relay_partitions")
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().map(|(topic, partition, offset)| ((topic, partition), offset)).collect())
}

async fn save_checkpoint(
    conn: &mut PgConnection,
    checkpoint: LogCheckpoint,
    acked: &HashMap<(String, i32), i64>,
) -> anyhow::Result<()> {
    let mut tx = conn.begin().await?;
    sqlx::query("UPDATE projections.relay_checkpoint SET tx_id = $1, position = $2, updated_at = now()")
        .bind(i64::try_from(checkpoint.tx_id)?)
        .bind(checkpoint.position)
        .execute(&mut *tx)
        .await?;
    let (topics, partitions, offsets): (Vec<String>, Vec<i32>, Vec<i64>) =
        acked.iter().map(|((t, p), o)| (t.clone(), *p, *o)).fold(Default::default(), |mut acc, (t, p, o)| {
            acc.0.push(t);
            acc.1.push(p);
            acc.2.push(o);
            acc
        });
    sqlx::query(
        "INSERT INTO projections.relay_partitions (topic, partition, last_offset)
         SELECT * FROM UNNEST($1::text[], $2::int[], $3::bigint[])
         ON CONFLICT (topic, partition) DO UPDATE SET last_offset = EXCLUDED.last_offset",
    )
    .bind(topics)
    .bind(partitions)
    .bind(offsets)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
