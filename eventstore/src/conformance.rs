//! The conformance suite: what every [`EventStore`] must do, written against the trait only, so
//! that each implementation runs the same checks (see `tests/postgres_conformance.rs`). Each
//! function expects a store with nothing in it and panics on the first violation.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use event_schemas::validation::validate_payload;
use event_schemas::workflow::WorkflowDetailsChanged;
use event_schemas::{Actor, Category, Event, NewEvent, StreamId, WorkflowEvent};
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::error::StoreError;
use crate::store::{
    AppendTransaction, EventStore, ExpectedVersion, LogCheckpoint, StreamRead, TransactionalEventStore,
};

/// A schema-valid event of `workspace_id` whose payload carries `n`.
pub fn sample_event(workspace_id: Uuid, n: usize) -> NewEvent {
    let event = Event::from(WorkflowEvent::from(WorkflowDetailsChanged {
        name: format!("Workflow {n}"),
        description: Some(format!("revision {n}, with \"quotes\" and ünïcode")),
        tags: vec!["conformance".into(), format!("n{n}")],
    }));
    NewEvent::now(workspace_id, Actor::system("conformance"), &event).with_correlation(Some(format!("corr-{n}")), None)
}

pub fn new_stream() -> StreamId {
    StreamId::new(Category::Workflow, Uuid::now_v7())
}

fn events(workspace_id: Uuid, range: std::ops::Range<usize>) -> Vec<NewEvent> {
    range.map(|n| sample_event(workspace_id, n)).collect()
}

/// Appends, then reads forwards, backwards and between versions; every event read back is the
/// one appended, validates against its JSON Schema, and the chain verifies.
pub async fn append_and_read_back<S: EventStore>(store: &S) {
    let (ws, stream) = (Uuid::now_v7(), new_stream());
    let appended = events(ws, 0..5);
    let result = store.append_to_stream(&stream, ExpectedVersion::NoStream, appended.clone()).await.unwrap();
    assert_eq!((result.first_version, result.last_version), (1, 5));
    assert!(result.first_position < result.last_position);

    let all = store.read_stream(&stream, StreamRead::all()).await.unwrap();
    assert_eq!(all.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    for (read, written) in all.iter().zip(&appended) {
        assert_eq!(read.event_id, written.event_id);
        assert_eq!(read.payload, written.payload);
        assert_eq!(read.occurred_at, written.occurred_at);
        assert_eq!(read.stream_id, stream);
        validate_payload(&read.event_type, &read.payload).unwrap();
    }
    assert_eq!(all[4].global_position, result.last_position);

    let middle = store.read_stream(&stream, StreamRead::between(2, Some(4))).await.unwrap();
    assert_eq!(middle.iter().map(|e| e.version).collect::<Vec<_>>(), [2, 3, 4]);
    let back = store.read_stream(&stream, StreamRead::between(2, None).backwards().limit(2)).await.unwrap();
    assert_eq!(back.iter().map(|e| e.version).collect::<Vec<_>>(), [5, 4]);
    assert!(store.read_stream(&new_stream(), StreamRead::all()).await.unwrap().is_empty());

    // The payloads a fold reads are those of the events, the same JSON, with their hashes.
    let payloads = store.read_payloads(&stream, StreamRead::between(2, Some(4))).await.unwrap();
    assert_eq!(payloads.iter().map(|p| p.version).collect::<Vec<_>>(), [2, 3, 4]);
    for (payload, event) in payloads.iter().zip(&middle) {
        let parsed: serde_json::Value = serde_json::from_str(&payload.payload).unwrap();
        assert_eq!(parsed, event.payload);
        assert_eq!((&payload.event_type, payload.schema_version), (&event.event_type, event.schema_version));
        assert_eq!((&payload.hash, payload.occurred_at), (&event.hash, event.occurred_at));
    }
    let back = store.read_payloads(&stream, StreamRead::between(2, None).backwards().limit(2)).await.unwrap();
    assert_eq!(back.iter().map(|p| p.version).collect::<Vec<_>>(), [5, 4]);
    assert!(store.read_payloads(&new_stream(), StreamRead::all()).await.unwrap().is_empty());

    let report = store.verify_stream(&stream).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events_checked, 5);
}

/// `version_at` names the version a stream had at a moment: 0 before it existed, the last version
/// at or after its last event.
pub async fn version_at_a_moment<S: EventStore>(store: &S) {
    let (ws, stream) = (Uuid::now_v7(), new_stream());
    let mut appended = events(ws, 0..3);
    // Derived from an event's own time, which the envelope already holds at microsecond precision.
    let start = appended[0].occurred_at - chrono::Duration::hours(3);
    for (n, event) in appended.iter_mut().enumerate() {
        event.occurred_at = start + chrono::Duration::hours(n as i64);
    }
    store.append_to_stream(&stream, ExpectedVersion::NoStream, appended).await.unwrap();
    let at = |minutes: i64| store.version_at(&stream, start + chrono::Duration::minutes(minutes));
    assert_eq!(at(-1).await.unwrap(), 0);
    assert_eq!(at(0).await.unwrap(), 1);
    assert_eq!(at(90).await.unwrap(), 2);
    assert_eq!(at(24 * 60).await.unwrap(), 3);
    assert_eq!(store.version_at(&new_stream(), chrono::Utc::now()).await.unwrap(), 0);
}

/// Expected versions are enforced and a mismatch carries the actual version.
pub async fn expected_version_is_enforced<S: EventStore>(store: &S) {
    let (ws, stream) = (Uuid::now_v7(), new_stream());
    let wrong = store.append_to_stream(&stream, ExpectedVersion::Exact(3), events(ws, 0..1)).await;
    assert!(matches!(wrong, Err(StoreError::WrongExpectedVersion { actual: None, .. })), "{wrong:?}");
    store.append_to_stream(&stream, ExpectedVersion::NoStream, events(ws, 0..2)).await.unwrap();
    let again = store.append_to_stream(&stream, ExpectedVersion::NoStream, events(ws, 2..3)).await;
    assert!(matches!(again, Err(StoreError::WrongExpectedVersion { actual: Some(2), .. })), "{again:?}");
    let stale = store.append_to_stream(&stream, ExpectedVersion::Exact(1), events(ws, 2..3)).await;
    assert!(matches!(stale, Err(StoreError::WrongExpectedVersion { actual: Some(2), .. })), "{stale:?}");
    let ok = store.append_to_stream(&stream, ExpectedVersion::Exact(2), events(ws, 2..3)).await.unwrap();
    assert_eq!(ok.last_version, 3);
    let any = store.append_to_stream(&stream, ExpectedVersion::Any, events(ws, 3..4)).await.unwrap();
    assert_eq!(any.last_version, 4);
    // Another workspace's append is refused whatever it expects, and leaves the stream as it was.
    for expected in [ExpectedVersion::Any, ExpectedVersion::Exact(4), ExpectedVersion::NoStream] {
        let other_workspace = store.append_to_stream(&stream, expected, events(Uuid::now_v7(), 0..1)).await;
        assert!(matches!(other_workspace, Err(StoreError::InvalidAppend(_))), "{expected}: {other_workspace:?}");
    }
    assert_eq!(store.read_stream(&stream, StreamRead::all()).await.unwrap().len(), 4);
    assert!(store.verify_stream(&stream).await.unwrap().is_intact());
}

/// A multi-event append is all or nothing: when its last event cannot be stored, none is.
pub async fn multi_event_append_is_atomic<S: EventStore>(store: &S) {
    let ws = Uuid::now_v7();
    let (first, second) = (new_stream(), new_stream());
    let taken = sample_event(ws, 99);
    store.append_to_stream(&first, ExpectedVersion::NoStream, vec![taken.clone()]).await.unwrap();

    let mut batch = events(ws, 0..3);
    batch.push(taken);
    let failed = store.append_to_stream(&second, ExpectedVersion::NoStream, batch).await;
    assert!(matches!(failed, Err(StoreError::IdempotencyConflict(_))), "{failed:?}");
    assert!(store.read_stream(&second, StreamRead::all()).await.unwrap().is_empty());
    assert_eq!(store.stream_info(&second).await.unwrap(), None);
    assert_eq!(store.read_stream(&first, StreamRead::all()).await.unwrap().len(), 1);

    let ok = store.append_to_stream(&second, ExpectedVersion::NoStream, events(ws, 0..3)).await.unwrap();
    assert_eq!((ok.first_version, ok.last_version), (1, 3));
}

/// Retrying an append with the same event ids returns the original result and writes nothing.
pub async fn retried_appends_are_idempotent<S: EventStore>(store: &S) {
    let (ws, stream) = (Uuid::now_v7(), new_stream());
    let batch = events(ws, 0..3);
    let original = store.append_to_stream(&stream, ExpectedVersion::NoStream, batch.clone()).await.unwrap();
    let retry = store.append_to_stream(&stream, ExpectedVersion::NoStream, batch.clone()).await.unwrap();
    assert_eq!(retry, original);
    let retry_any = store.append_to_stream(&stream, ExpectedVersion::Any, batch.clone()).await.unwrap();
    assert_eq!(retry_any, original);
    assert_eq!(store.read_stream(&stream, StreamRead::all()).await.unwrap().len(), 3);

    let mut overlapping = events(ws, 3..5);
    overlapping.push(batch[0].clone());
    let conflict = store.append_to_stream(&stream, ExpectedVersion::Any, overlapping).await;
    assert!(matches!(conflict, Err(StoreError::IdempotencyConflict(_))), "{conflict:?}");
    let elsewhere = store.append_to_stream(&new_stream(), ExpectedVersion::Any, batch).await;
    assert!(matches!(elsewhere, Err(StoreError::IdempotencyConflict(_))), "{elsewhere:?}");
    assert_eq!(store.stream_info(&stream).await.unwrap().unwrap().version, 3);
}

/// 16 appenders race for each version of one stream: exactly one wins each round, every other
/// gets the typed conflict with the winner's version, and the chain stays intact.
pub async fn concurrent_appenders_on_one_stream<S: EventStore + Clone + 'static>(store: &S) {
    const APPENDERS: usize = 16;
    const ROUNDS: i64 = 10;
    let (ws, stream) = (Uuid::now_v7(), new_stream());
    store.append_to_stream(&stream, ExpectedVersion::NoStream, events(ws, 0..1)).await.unwrap();
    let barrier = Arc::new(Barrier::new(APPENDERS));
    let tasks: Vec<_> = (0..APPENDERS)
        .map(|task| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for round in 0..ROUNDS {
                    barrier.wait().await;
                    let expected = round + 1;
                    let result = store
                        .append_to_stream(&stream, ExpectedVersion::Exact(expected), events(ws, task..task + 1))
                        .await;
                    outcomes.push((expected, result));
                    barrier.wait().await;
                }
                outcomes
            })
        })
        .collect();
    let mut wins = vec![0; ROUNDS as usize];
    for task in tasks {
        for (expected, outcome) in task.await.unwrap() {
            match outcome {
                Ok(result) => {
                    assert_eq!(result.last_version, expected + 1);
                    wins[(expected - 1) as usize] += 1;
                }
                Err(StoreError::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, Some(expected + 1)),
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
    }
    assert_eq!(wins, vec![1; ROUNDS as usize], "exactly one appender wins each version");
    let stored = store.read_stream(&stream, StreamRead::all()).await.unwrap();
    assert_eq!(stored.iter().map(|e| e.version).collect::<Vec<_>>(), (1..=ROUNDS + 1).collect::<Vec<_>>());
    assert!(store.verify_stream(&stream).await.unwrap().is_intact());
}

/// Paging through the global log delivers every committed event exactly once, in increasing
/// checkpoint order.
pub async fn global_log_pages_deliver_everything_once<S: EventStore + Clone + 'static>(store: &S) {
    let ws = Uuid::now_v7();
    let tasks: Vec<_> = (0..5)
        .map(|s| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream = new_stream();
                let mut ids = Vec::new();
                for batch in 0..4 {
                    let appended = events(ws, s * 100 + batch * 3..s * 100 + batch * 3 + 1 + batch % 3);
                    ids.extend(appended.iter().map(|e| e.event_id));
                    store.append_to_stream(&stream, ExpectedVersion::Any, appended).await.unwrap();
                }
                ids
            })
        })
        .collect();
    let mut written = HashSet::new();
    for task in tasks {
        written.extend(task.await.unwrap());
    }
    // Any transaction on the server (another test's, say) holds the fence back for a moment:
    // keep tailing until everything is there.
    let (mut delivered, mut after) = (Vec::new(), LogCheckpoint::START);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while delivered.len() < written.len() && tokio::time::Instant::now() < deadline {
        let (page, next) = drain(store, after, 7).await;
        delivered.extend(page);
        after = next;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let unique: HashSet<Uuid> = delivered.iter().copied().collect();
    assert_eq!(unique.len(), delivered.len(), "an event was delivered twice");
    assert_eq!(unique, written);
}

/// Reads the global log in pages of `page` until it returns nothing; returns the event ids in
/// delivery order and the last checkpoint, checking that checkpoints only increase.
async fn drain<S: EventStore>(store: &S, mut after: LogCheckpoint, page: i64) -> (Vec<Uuid>, LogCheckpoint) {
    let mut delivered = Vec::new();
    loop {
        let events = store.read_all(after, page).await.unwrap();
        if events.is_empty() {
            return (delivered, after);
        }
        for event in events {
            assert!(event.checkpoint > after, "checkpoints must increase");
            after = event.checkpoint;
            delivered.push(event.event.event_id);
        }
    }
}

/// A deleted stream keeps its events, refuses appends, and cannot be deleted twice.
pub async fn deleted_streams_refuse_appends<S: EventStore>(store: &S) {
    let (ws, stream) = (Uuid::now_v7(), new_stream());
    store.append_to_stream(&stream, ExpectedVersion::NoStream, events(ws, 0..2)).await.unwrap();
    let stale = store.delete_stream(&stream, ExpectedVersion::Exact(1)).await;
    assert!(matches!(stale, Err(StoreError::WrongExpectedVersion { actual: Some(2), .. })), "{stale:?}");
    store.delete_stream(&stream, ExpectedVersion::Exact(2)).await.unwrap();
    let refused = store.append_to_stream(&stream, ExpectedVersion::Any, events(ws, 2..3)).await;
    assert!(matches!(refused, Err(StoreError::StreamDeleted(_))), "{refused:?}");
    assert!(store.stream_info(&stream).await.unwrap().unwrap().deleted);
    assert_eq!(store.read_stream(&stream, StreamRead::all()).await.unwrap().len(), 2);
    let twice = store.delete_stream(&stream, ExpectedVersion::Any).await;
    assert!(matches!(twice, Err(StoreError::StreamDeleted(_))), "{twice:?}");
    let missing = store.delete_stream(&new_stream(), ExpectedVersion::Any).await;
    assert!(matches!(missing, Err(StoreError::StreamNotFound(_))), "{missing:?}");
}

/// Transaction A takes a lower position and commits after transaction B: a reader tailing the
/// global log meanwhile delivers both, none skipped and none twice.
pub async fn out_of_order_commit_is_not_skipped<S>(store: &S)
where
    S: TransactionalEventStore + Clone + 'static,
{
    let ws = Uuid::now_v7();
    let (a, b) = (sample_event(ws, 1), sample_event(ws, 2));
    let (a_id, b_id) = (a.event_id, b.event_id);
    let (_, start) = drain(store, LogCheckpoint::START, 100).await;

    let mut tx_a = store.begin().await.unwrap();
    let position_a = tx_a.append_to_stream(&new_stream(), ExpectedVersion::NoStream, vec![a]).await.unwrap();
    let position_b = store.append_to_stream(&new_stream(), ExpectedVersion::NoStream, vec![b]).await.unwrap();
    assert!(position_a.last_position < position_b.last_position, "A took the lower position");

    // A reader tails the log while A is still open, and after it commits.
    let tail = {
        let store = store.clone();
        tokio::spawn(async move {
            let (mut delivered, mut after) = (Vec::new(), start);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while delivered.len() < 2 && tokio::time::Instant::now() < deadline {
                let (page, next) = drain(&store, after, 1).await;
                delivered.extend(page);
                after = next;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Keep reading a little longer: nothing may come twice.
            tokio::time::sleep(Duration::from_millis(200)).await;
            delivered.extend(drain(&store, after, 1).await.0);
            delivered
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx_a.commit().await.unwrap();

    let delivered = tail.await.unwrap();
    assert_eq!(delivered.len(), 2, "delivered {delivered:?}");
    assert!(delivered.contains(&a_id) && delivered.contains(&b_id), "delivered {delivered:?}");
}
