//! The projector: a Kafka consumer group that applies events to the read models exactly once.
//!
//! Records are taken in batches. Each batch is one PostgreSQL transaction that applies the
//! events, advances the per-stream version guard (`read_model.stream_versions`) and records the
//! Kafka offsets it consumed (`projections.kafka_offsets`), so an effect and the knowledge that it
//! happened commit together, and an assigned partition starts at the offset stored there (see
//! `context`). A record whose stream version is not above the guard is a duplicate and is
//! dropped; one that jumps past the next expected version means the broker lost records, and the
//! missing events are read from the event store first. Offsets are also committed to Kafka after
//! PostgreSQL, for the broker's own lag tools; nothing reads them back. While a batch is in
//! PostgreSQL the next one is read and parsed (`read_ahead`), to be applied after it commits.
//!
//! An event that cannot be decoded goes to `projections.dead_letters` and `flowfuse.deadletter`
//! and the stream moves on; a failing batch is retried with backoff, then applied event by event
//! so that only an event that fails on its own is dead-lettered.

mod batch;
mod context;
mod guard;

use std::time::Duration;

use eventstore::PgEventStore;
use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, Offset, TopicPartitionList};
use sqlx::PgPool;

use crate::kafka::{KafkaConfig, event_topics};

pub use batch::BatchOutcome;
use batch::OffsetBook;
use context::ProjectorContext;
use guard::GuardCache;

pub const DEFAULT_GROUP: &str = "flowfuse-projector";
/// How long the broker may hold a fetch that finds no new records, by default. Apache Kafka
/// answers a waiting fetch as soon as records arrive, so there this only bounds idle requests;
/// Tansu (the development broker) answers only when the wait runs out, so on Tansu it is added to
/// every event's latency (measured: 10 ms gave 18 ms from produce to consume at p50, 2 ms gave 6).
pub const DEFAULT_FETCH_WAIT: Duration = Duration::from_millis(2);
/// The most records one batch (one transaction) takes. A backlog is applied in batches this big:
/// 2 000 applied faster than 1 000 (a batch's fixed costs, spread wider: `bench pipeline` (b) 0.49
/// – 0.53 of raw with 1 000 and 0.57 – 0.62 with 2 000, alternating; docs/benchmarks.md), and
/// 5 000 no faster than 2 000.
const MAX_BATCH: usize = 2000;

pub struct Projector {
    pool: PgPool,
    store: PgEventStore,
    kafka: KafkaConfig,
    group: String,
    instance_id: String,
    fetch_wait: Duration,
}

impl Projector {
    pub fn new(pool: PgPool, kafka: KafkaConfig) -> Self {
        Self {
            store: PgEventStore::new(pool.clone()),
            pool,
            kafka,
            group: DEFAULT_GROUP.to_owned(),
            instance_id: "flowfuse-projector-1".to_owned(),
            fetch_wait: DEFAULT_FETCH_WAIT,
        }
    }

    /// How long the broker may hold a fetch that finds nothing (`fetch.wait.max.ms`); see
    /// [`DEFAULT_FETCH_WAIT`].
    pub fn with_fetch_wait(mut self, fetch_wait: Duration) -> Self {
        self.fetch_wait = fetch_wait;
        self
    }

    /// The static member id within the group: distinct for each projector that runs at the same
    /// time, the same for a projector and its restart.
    pub fn with_instance_id(mut self, instance_id: impl Into<String>) -> Self {
        self.instance_id = instance_id.into();
        self
    }

    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// Consumes until `shutdown` resolves; a broker or database that is away is waited for.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                result = self.consume() => {
                    if let Err(error) = result {
                        tracing::warn!(error = format!("{error:#}"), "projector stopped consuming; retrying");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Topics are the relay's to create (it tells a lost topic by having to create it again);
    /// a subscription to a topic that does not exist yet waits for it.
    async fn consume(&self) -> anyhow::Result<()> {
        let context = ProjectorContext::new((*self.pool.connect_options()).clone(), &self.group);
        let consumer: StreamConsumer<ProjectorContext> = self
            .kafka
            .client()
            .set("group.id", &self.group)
            // Static membership (KIP-345): a projector that restarts under the same instance id
            // takes its partitions back at once, instead of waiting for its dead predecessor's
            // session to expire.
            .set("group.instance.id", &self.instance_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("fetch.wait.max.ms", self.fetch_wait.as_millis().to_string())
            // Per-partition lag, for the `projector_partition_lag` gauge.
            .set("statistics.interval.ms", "5000")
            .create_with_context(context)?;
        let topics = event_topics();
        consumer.subscribe(&topics.iter().map(String::as_str).collect::<Vec<_>>())?;
        let dead_letters: FutureProducer = self.kafka.client().set("acks", "all").create()?;
        tracing::info!(group = %self.group, "projector consuming");
        let mut guard_cache = GuardCache::default();
        let mut assigned = consumer.context().epochs();
        // Records read while the last batch was in PostgreSQL, and the events of those parsed.
        let (mut ready, mut ready_parsed) = (Vec::new(), Vec::new());
        loop {
            // Any error (a broker gone, a partition lost), every broker down, or an assignment that
            // could not be positioned drops this consumer: `run` makes a new one (and see
            // `context` for the librdkafka crash this avoids). Checked at least every 100 ms.
            anyhow::ensure!(!consumer.context().must_be_replaced(), "the consumer must be replaced");
            if ready.is_empty() {
                match tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await {
                    // Borrowed, not detached: a detached copy of each payload and of its eighteen
                    // headers cost a tenth of a batch's time.
                    Ok(received) => ready.push(received.map_err(|e| anyhow::anyhow!("consumer error: {e}"))?),
                    Err(_idle) => continue,
                }
            }
            // Time in the broker: from the relay's produce (the record's create time) to the start
            // of its batch (a record read ahead waited out the batch before it, too).
            let in_broker_ms = ready[0].timestamp().to_millis().map(|t| chrono::Utc::now().timestamp_millis() - t);
            // Then whatever has arrived meanwhile, without waiting for more: under a steady stream
            // records pile up while a batch is applied, so batches grow with the load (as group
            // commit does) and one transaction per batch keeps up, while a lone event is applied
            // at once instead of waiting out a gathering window.
            drain_into(&consumer, &mut ready);
            let messages = std::mem::take(&mut ready);
            let mut parsed = std::mem::take(&mut ready_parsed);
            parsed.extend(batch::parse_all(&messages[parsed.len()..]));
            let epochs = consumer.context().epochs();
            if epochs != assigned {
                // Partitions came or went: another consumer may have moved their guard meanwhile.
                guard_cache.clear();
                assigned = epochs.clone();
            }
            let book = OffsetBook { group: &self.group, epochs: &epochs };
            let applying = std::time::Instant::now();
            let applied =
                batch::apply_with_retries(&self.pool, &self.store, &book, &mut guard_cache, &messages, parsed);
            let (outcome, ()) = tokio::join!(applied, read_ahead(&consumer, &mut ready, &mut ready_parsed));
            let outcome = outcome?;
            tracing::debug!(
                records = messages.len(),
                applied = outcome.applied,
                apply_ms = applying.elapsed().as_secs_f64() * 1000.0,
                in_broker_ms,
                oldest_age_ms = outcome.oldest.map(|t| crate::age_of(t).as_secs_f64() * 1000.0),
                "batch committed"
            );
            batch::publish_dead_letters(&dead_letters, &outcome.dead_letters).await;
            commit_offsets(&consumer, &messages);
        }
    }
}

/// Moves the records that have arrived into `messages`, up to a batch, without waiting for more.
fn drain_into<'c>(consumer: &'c StreamConsumer<ProjectorContext>, messages: &mut Vec<BorrowedMessage<'c>>) {
    while messages.len() < MAX_BATCH {
        match consumer.recv().now_or_never() {
            Some(Ok(message)) => messages.push(message),
            _ => break,
        }
    }
}

/// Records parsed between two yields of [`read_ahead`].
const READ_AHEAD_CHUNK: usize = 100;

/// While a batch is in PostgreSQL, the next one is read and parsed: one writer alternates
/// between its own CPU and the server's, and the parse (librdkafka copying eighteen headers per
/// record, then ours) depends on nothing in the database. It yields between chunks, so that the
/// batch beside it in the same task sends its next statement as soon as the last one answers.
async fn read_ahead<'c>(
    consumer: &'c StreamConsumer<ProjectorContext>,
    ready: &mut Vec<BorrowedMessage<'c>>,
    parsed: &mut Vec<batch::Parsed>,
) {
    drain_into(consumer, ready);
    while parsed.len() < ready.len() {
        let end = ready.len().min(parsed.len() + READ_AHEAD_CHUNK);
        parsed.extend(batch::parse_all(&ready[parsed.len()..end]));
        tokio::task::yield_now().await;
    }
}

/// Tells Kafka how far the group got (after PostgreSQL has it), for the broker's lag tools: each
/// partition once, at the offset after its last record.
fn commit_offsets(consumer: &StreamConsumer<ProjectorContext>, messages: &[BorrowedMessage<'_>]) {
    let next = batch::next_offsets(messages);
    let mut list = TopicPartitionList::with_capacity(next.len());
    for ((topic, partition), offset) in next {
        let _ = list.add_partition_offset(topic, partition, Offset::Offset(offset));
    }
    if let Err(error) = consumer.commit(&list, CommitMode::Async) {
        tracing::debug!(error = %error, "offset commit to Kafka failed; PostgreSQL holds them");
    }
}
