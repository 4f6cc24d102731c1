//! The relay: the global log, behind the visibility fence, into Kafka (ARCHITECTURE.md 3 and 5).
//!
//! Exactly one relay is active: each instance tries to take a PostgreSQL advisory lock on its own
//! connection; the holder relays, the others retry every second and take over within about a
//! second of the leader's death (PostgreSQL releases the lock with the leader's session). The
//! leader reads a page of events after its checkpoint, produces them all (idempotent producer,
//! `acks=all`, key = stream id), waits for every ack, and only then advances its checkpoint, on
//! the connection that holds the lock: an instance that lost the lock cannot move it.
//!
//! The relay is the only creator of topics. When a topic it had records acknowledged on is gone,
//! the broker lost it (Tansu with memory storage restarts empty; an operator deleted it): the
//! relay bumps the broker epoch (so that no consumer positions itself by offsets into the lost
//! topic), then recreates the topic and republishes the whole log; consumers drop what they
//! already applied. It checks after every produce error and every few seconds when idle. (A
//! partition's high watermark is no help here: Tansu's can trail the offsets it acknowledged.)

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use eventstore::{EventStore, GlobalEvent, LogCheckpoint, PgEventStore};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::cloudevents;
use crate::kafka::{KafkaConfig, ensure_topics, existing_topics, topic_for};

/// The advisory lock that elects the leader.
const LEADER_LOCK: i64 = 0x666c_6f77_7265_6c61; // "flowrela"
const PAGE: i64 = 500;

pub struct Relay {
    store: PgEventStore,
    database_url: String,
    kafka: KafkaConfig,
    /// Pause between reads when the log has nothing new.
    pub idle_poll: Duration,
}

impl Relay {
    pub fn new(store: PgEventStore, database_url: impl Into<String>, kafka: KafkaConfig) -> Self {
        Self { store, database_url: database_url.into(), kafka, idle_poll: Duration::from_millis(20) }
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
        let result = self.lead(&mut conn).await;
        metrics::gauge!("relay_leader").set(0.0);
        result
    }

    async fn lead(&self, conn: &mut PgConnection) -> anyhow::Result<()> {
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
        let mut last_topic_check = Instant::now();
        loop {
            let page = self.store.read_all(checkpoint, PAGE).await?;
            if page.is_empty() {
                if last_topic_check.elapsed() > Duration::from_secs(2) {
                    last_topic_check = Instant::now();
                    if self.topics_were_lost(conn, &acked).await? {
                        // A new broker needs a new producer (a new idempotent producer id).
                        anyhow::bail!("the broker lost data; reconnecting to republish");
                    }
                }
                // Keep the session (and the lock) checked while idle.
                sqlx::query("SELECT 1").execute(&mut *conn).await?;
                tokio::time::sleep(self.idle_poll).await;
                continue;
            }
            // On an error the checkpoint has not moved: whatever was not acknowledged is produced
            // again by a fresh producer (an idempotent producer's errors can be fatal to it).
            tracing::debug!(events = page.len(), "producing a page");
            let offsets = produce_page(&producer, &page).await.context("produce failed")?;
            for (key, offset) in offsets {
                let entry = acked.entry(key).or_insert(offset);
                *entry = (*entry).max(offset);
            }
            checkpoint = page.last().expect("non-empty page").checkpoint;
            save_checkpoint(conn, checkpoint, &acked).await?;
            metrics::counter!("relay_events_total").increment(page.len() as u64);
            metrics::gauge!("relay_position").set(checkpoint.position as f64);
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
        let mut lost: Vec<&str> =
            acked.keys().map(|(topic, _)| topic.as_str()).filter(|t| !existing.contains(*t)).collect();
        lost.sort_unstable();
        lost.dedup();
        if !lost.is_empty() {
            tracing::warn!(topics = ?lost, "topics the broker had acknowledged records on are gone");
            self.restart_after_data_loss(conn).await?;
        }
        ensure_topics(&self.kafka).await?;
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

/// Produces every event of `page` and waits for all acks; returns the highest acked offset per
/// partition. The idempotent producer keeps each partition's records in order across retries.
async fn produce_page(producer: &FutureProducer, page: &[GlobalEvent]) -> anyhow::Result<HashMap<(String, i32), i64>> {
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(page.len());
    for global in page {
        let event = &global.event;
        let topic = topic_for(event.stream_id.category());
        let key = event.stream_id.to_string();
        let payload = serde_json::to_vec(&event.payload)?;
        let record = FutureRecord::to(&topic).key(&key).payload(&payload).headers(cloudevents::headers(event));
        let delivery = producer.send_result(record).map_err(|(error, _)| error)?;
        deliveries.push((topic, delivery));
    }
    let mut offsets = HashMap::new();
    for (topic, delivery) in deliveries {
        let delivered = delivery.await.map_err(|_| anyhow::anyhow!("the producer was dropped"))?;
        let delivered = delivered.map_err(|(error, _)| error)?;
        let (partition, offset) = (delivered.partition, delivered.offset);
        let entry = offsets.entry((topic, partition)).or_insert(offset);
        *entry = (*entry).max(offset);
    }
    metrics::histogram!("relay_produce_duration_seconds").record(started.elapsed().as_secs_f64());
    Ok(offsets)
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
