//! One batch of records: applied in one transaction with the version guard and the offsets.

use std::collections::HashMap;
use std::time::Duration;

use event_schemas::Event;
use eventstore::{EventStore, PgEventStore, StreamRead};
use rdkafka::Message;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::{PgConnection, PgPool};

use super::context::Partition;
use super::guard::{GuardCache, read_guard};
use crate::cloudevents::{self, ProjectedEvent};
use crate::kafka::DEADLETTER_TOPIC;
use crate::read_models::{self, GuardMoved, GuardRow, Offsets, Pending, Selection};

/// Where a batch's Kafka offsets are stored: the consumer group, and the broker epoch each of its
/// partitions was positioned under (see `context`).
pub(super) struct OffsetBook<'a> {
    pub(super) group: &'a str,
    pub(super) epochs: &'a HashMap<Partition, i64>,
}

/// An event that could not be projected, and why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub event: Option<ProjectedEvent>,
    pub key: Option<String>,
    pub payload: Option<Vec<u8>>,
    pub error: String,
}

#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub applied: usize,
    pub duplicates: usize,
    pub repaired: usize,
    pub dead_letters: Vec<DeadLetter>,
    /// When the oldest event applied was decided: how stale the read models were.
    pub oldest: Option<chrono::DateTime<chrono::Utc>>,
}

impl BatchOutcome {
    /// The outcome of two batches together.
    pub fn merge(mut self, other: BatchOutcome) -> BatchOutcome {
        self.applied += other.applied;
        self.duplicates += other.duplicates;
        self.repaired += other.repaired;
        self.dead_letters.extend(other.dead_letters);
        self.oldest = self.oldest.into_iter().chain(other.oldest).min();
        self
    }
}

/// A record read back into an event, or why it is not one.
pub(super) type Parsed = Result<ProjectedEvent, cloudevents::MalformedRecord>;

/// Each record of `messages` read back into an event, in order.
pub(super) fn parse_all<M: Message>(messages: &[M]) -> Vec<Parsed> {
    messages.iter().map(|m| cloudevents::parse(m.headers(), m.payload())).collect()
}

/// Applies `messages`, of which `parsed` are the events (`parse_all`, done beforehand: the
/// consumer parses the next batch while this one is in PostgreSQL); on a database error retries
/// with backoff, then isolates the culprit. Only the first attempt may start from the guard
/// `cache` remembers (see `guard`).
pub(super) async fn apply_with_retries<M: Message + Sync>(
    pool: &PgPool,
    store: &PgEventStore,
    offsets: &OffsetBook<'_>,
    cache: &mut GuardCache,
    messages: &[M],
    parsed: Vec<Parsed>,
) -> anyhow::Result<BatchOutcome> {
    debug_assert_eq!(messages.len(), parsed.len(), "one parse per record");
    let mut parsed = Some(parsed);
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0;
    let mut guess = true;
    loop {
        attempt += 1;
        // Retries parse again: a batch is rarely retried, and a copy of every event for it would not be.
        let events = parsed.take().unwrap_or_else(|| parse_all(messages));
        let result = apply(pool, store, offsets, cache, guess, messages, events).await;
        if let Err(error) = &result {
            if guess && cache.guessed() {
                // Most likely the guess (a duplicate fails the batch's statement): read it now.
                tracing::info!(error = format!("{error:#}"), "a batch that guessed its guard failed; reading it");
                cache.guess_failed();
                (guess, attempt) = (false, 0);
                continue;
            }
            cache.clear();
            guess = false;
        }
        match result {
            Ok(outcome) => {
                metrics::counter!("projector_events_applied_total").increment(outcome.applied as u64);
                metrics::counter!("projector_duplicates_total").increment(outcome.duplicates as u64);
                metrics::counter!("projector_gap_repairs_total").increment(outcome.repaired as u64);
                metrics::counter!("projector_dead_letters_total").increment(outcome.dead_letters.len() as u64);
                return Ok(outcome);
            }
            // The database or the event store is away: wait for it, however long.
            Err(error) if is_transient(&error) => {
                tracing::warn!(attempt, error = format!("{error:#}"), "projection batch failed; retrying");
            }
            Err(error) if attempt < 5 => {
                tracing::warn!(attempt, error = format!("{error:#}"), "projection batch failed; retrying");
            }
            Err(_) => break,
        }
        metrics::counter!("projector_retries_total").increment(1);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    if messages.len() == 1 {
        // It fails on its own: dead-letter it, so the partition moves on.
        let error = apply(pool, store, offsets, cache, false, messages, parse_all(messages))
            .await
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        return dead_letter_alone(pool, offsets, &messages[0], error).await;
    }
    let mut total = BatchOutcome::default();
    for message in messages {
        let alone = std::slice::from_ref(message);
        let outcome = Box::pin(apply_with_retries(pool, store, offsets, cache, alone, parse_all(alone))).await?;
        total = total.merge(outcome);
    }
    Ok(total)
}

/// Whether the batch failed for a reason that says nothing about its events.
fn is_transient(error: &anyhow::Error) -> bool {
    if error.is::<GuardMoved>() {
        return true;
    }
    match (error.downcast_ref::<sqlx::Error>(), error.downcast_ref::<eventstore::StoreError>()) {
        (Some(sql), _) => eventstore::is_transient_sql(sql),
        (None, Some(store)) => store.is_transient(),
        _ => false,
    }
}

/// Applies `messages` (whose events are `parsed`) in one transaction; `guess`: whether the guard
/// may be taken from `cache`.
async fn apply<M: Message>(
    pool: &PgPool,
    store: &PgEventStore,
    offsets: &OffsetBook<'_>,
    cache: &mut GuardCache,
    guess: bool,
    messages: &[M],
    parsed: Vec<Parsed>,
) -> anyhow::Result<BatchOutcome> {
    let mut tx = begin_batch(pool).await?;
    let streams: Vec<(String, i64)> = parsed.iter().flatten().map(|e| (e.stream_id.to_string(), e.version)).collect();
    let (applied_before, guessed) = cache.starting_versions(&mut tx, &streams, guess).await?;
    let mut guard = applied_before.clone();
    let mut outcome = BatchOutcome::default();
    // First what to apply, in order (duplicates dropped, gaps filled), then all of it at once.
    let mut next: Vec<ProjectedEvent> = Vec::with_capacity(messages.len());
    for (message, parsed) in messages.iter().zip(parsed) {
        let event = match parsed {
            Ok(event) => event,
            Err(error) => {
                outcome.dead_letters.push(DeadLetter {
                    event: None,
                    key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: message.payload().map(<[u8]>::to_vec),
                    error: error.to_string(),
                });
                continue;
            }
        };
        let stream = event.stream_id.to_string();
        let applied = guard.get(&stream).copied().unwrap_or(0);
        if event.version <= applied {
            outcome.duplicates += 1;
            continue;
        }
        if event.version > applied + 1 {
            // The broker lost records of this stream: take them from the source of truth.
            let missing =
                store.read_stream(&event.stream_id, StreamRead::between(applied + 1, Some(event.version - 1))).await?;
            tracing::info!(stream_id = %stream, from = applied + 1, to = event.version - 1, "repairing a gap from the event store");
            if missing.len() as i64 != event.version - 1 - applied {
                // This store does not have the events before it: the record is not ours (a topic
                // shared with another deployment, a stray producer). Never apply it.
                outcome.dead_letters.push(DeadLetter {
                    key: Some(stream.clone()),
                    payload: Some(event.payload.get().as_bytes().to_vec()),
                    error: format!("{stream} version {} is not in this event store's history", event.version),
                    event: Some(event),
                });
                continue;
            }
            outcome.repaired += missing.len();
            next.extend(missing.iter().map(ProjectedEvent::from));
        }
        guard.insert(stream, event.version);
        next.push(event);
    }
    let decoded = decode(next, &mut outcome);
    outcome.applied = decoded.len();
    outcome.oldest = decoded.iter().map(|(e, _)| e.occurred_at).min();
    let mut pending = Pending::default();
    // Where the guard is guessed, so are the workflow rows: the statement checks both at once.
    let guessed_workflows = decoded
        .iter()
        .filter(|(e, d)| matches!(d, Event::Workflow(_)) && guessed.contains(&e.stream_id.to_string()))
        .map(|(e, _)| e);
    let new = |e: &ProjectedEvent| !applied_before.contains_key(&e.stream_id.to_string());
    pending.recall_workflows(cache.workflows(), guessed_workflows, new);
    read_models::apply(&mut tx, &decoded, &mut pending, Selection::ALL).await?;
    save_dead_letters(&mut tx, &outcome.dead_letters).await?;
    pending.move_guard(guard_rows(&applied_before, &guard));
    pending.store_offsets(offsets_of(offsets, messages));
    let written = pending.flush(&mut tx).await?;
    tx.commit().await?;
    cache.committed(&guard, written);
    record_freshness(&decoded);
    Ok(outcome)
}

/// How long after their commands the events became visible in the read models: the whole
/// pipeline's freshness.
fn record_freshness(applied: &[(ProjectedEvent, Event)]) {
    for (event, _) in applied {
        metrics::histogram!("projector_event_age_seconds").record(crate::age_of(event.occurred_at).as_secs_f64());
    }
}

/// Decodes each event; one that cannot be decoded is dead-lettered (the guard still moves past it).
fn decode(events: Vec<ProjectedEvent>, outcome: &mut BatchOutcome) -> Vec<(ProjectedEvent, Event)> {
    let mut decoded = Vec::with_capacity(events.len());
    for event in events {
        match Event::decode_json(&event.event_type, event.schema_version, event.payload.get()) {
            Ok(e) => decoded.push((event, e)),
            Err(error) => outcome.dead_letters.push(DeadLetter {
                key: Some(event.stream_id.to_string()),
                payload: Some(event.payload.get().as_bytes().to_vec()),
                error: error.to_string(),
                event: Some(event),
            }),
        }
    }
    decoded
}

/// Starts a batch's transaction, in one round trip, without giving it a transaction id: it names
/// its tables unqualified (see `read_models`), and waits while a rebuild swaps the tables (which
/// holds the guard table in EXCLUSIVE mode) before it touches any other table, so the two cannot
/// deadlock. A table lock, unlike `SELECT … FOR UPDATE`, writes nothing: the transaction gets its
/// id only at its first write, at the end, and holds back readers of the global log only from there.
///
/// Its commit does not wait for the WAL to reach the disk (`synchronous_commit = off`): the read
/// models are derived, and the Kafka offsets commit with them, so a batch that a PostgreSQL crash
/// loses (at most the last few hundred milliseconds of commits, never a part of one) is lost with
/// its offsets, and consumed and applied again after the restart. Nothing else is relaxed: the
/// event store's appends (the source of truth) and the relay's checkpoint still commit durably.
async fn begin_batch(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    pool.begin_with(
        "BEGIN; SET LOCAL search_path TO read_model; SET LOCAL synchronous_commit TO off;
         LOCK TABLE read_model.stream_versions IN ROW SHARE MODE",
    )
    .await
}

/// The guard rows a batch moves: every stream whose version went up.
fn guard_rows(before: &HashMap<String, i64>, after: &HashMap<String, i64>) -> Vec<GuardRow> {
    after
        .iter()
        .map(|(stream_id, version)| GuardRow {
            applied: before.get(stream_id).copied().unwrap_or(0),
            stream_id: stream_id.clone(),
            version: *version,
        })
        .filter(|row| row.version > row.applied)
        .collect()
}

async fn save_dead_letters(conn: &mut PgConnection, dead: &[DeadLetter]) -> Result<(), sqlx::Error> {
    for letter in dead {
        let event = letter.event.as_ref();
        sqlx::query(
            "INSERT INTO projections.dead_letters (stream_id, version, event_id, global_position, event_type, error)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(letter.key.clone().unwrap_or_default())
        .bind(event.map_or(0, |e| e.version))
        .bind(event.map_or(uuid::Uuid::nil(), |e| e.event_id))
        .bind(event.map_or(0, |e| e.global_position))
        .bind(event.map_or("unknown", |e| e.event_type.as_str()))
        .bind(&letter.error)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The next offset of each partition of `messages`, under the epoch it was positioned in; a
/// partition revoked meanwhile has none, and its new owner has positioned itself already.
fn offsets_of<M: Message>(book: &OffsetBook<'_>, messages: &[M]) -> Offsets {
    let next = next_offsets(messages);
    let mut offsets = Offsets { group: book.group.to_owned(), ..Default::default() };
    for ((topic, partition), offset) in next {
        if let Some(epoch) = book.epochs.get(&(topic.to_owned(), partition)) {
            offsets.topics.push(topic.to_owned());
            offsets.partitions.push(partition);
            offsets.next.push(offset);
            offsets.epochs.push(*epoch);
        }
    }
    offsets
}

/// The offset after the last record of each partition of `messages`.
pub(super) fn next_offsets<M: Message>(messages: &[M]) -> HashMap<(&str, i32), i64> {
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for message in messages {
        let entry = next.entry((message.topic(), message.partition())).or_insert(0);
        *entry = (*entry).max(message.offset() + 1);
    }
    next
}

/// A record that fails alone, even after retries: dead-lettered in its own transaction, with the
/// guard moved past it when its stream and version are known.
async fn dead_letter_alone(
    pool: &PgPool,
    offsets: &OffsetBook<'_>,
    message: &impl Message,
    error: String,
) -> anyhow::Result<BatchOutcome> {
    let event = cloudevents::parse(message.headers(), message.payload()).ok();
    let letter = DeadLetter {
        key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        payload: message.payload().map(<[u8]>::to_vec),
        event: event.clone(),
        error,
    };
    let mut tx = begin_batch(pool).await?;
    let mut pending = Pending::default();
    if let Some(event) = &event {
        let stream = event.stream_id.to_string();
        let before = read_guard(&mut tx, std::slice::from_ref(&stream)).await?;
        pending.move_guard(guard_rows(&before, &HashMap::from([(stream, event.version)])));
    }
    save_dead_letters(&mut tx, std::slice::from_ref(&letter)).await?;
    pending.store_offsets(offsets_of(offsets, std::slice::from_ref(message)));
    pending.flush(&mut tx).await?;
    tx.commit().await?;
    metrics::counter!("projector_dead_letters_total").increment(1);
    Ok(BatchOutcome { dead_letters: vec![letter], ..Default::default() })
}

/// Publishes dead letters to `flowfuse.deadletter` (best effort: the table is the record).
pub async fn publish_dead_letters(producer: &FutureProducer, dead: &[DeadLetter]) {
    for letter in dead {
        let headers = match &letter.event {
            Some(event) => cloudevents::headers(event),
            None => OwnedHeaders::new(),
        };
        let headers =
            headers.insert(rdkafka::message::Header { key: "flowfuse_error", value: Some(letter.error.as_bytes()) });
        let key = letter.key.clone().unwrap_or_default();
        let payload = letter.payload.clone().unwrap_or_default();
        let record = FutureRecord::to(DEADLETTER_TOPIC).key(&key).payload(&payload).headers(headers);
        if let Err((error, _)) = producer.send(record, Duration::from_secs(5)).await {
            tracing::warn!(error = %error, "could not publish a dead letter to Kafka");
        }
    }
}
