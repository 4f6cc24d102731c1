//! Runs the conformance suite against the PostgreSQL store, one fresh database per test.

use eventstore::conformance;
use eventstore::testing::TestDatabase;

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let db = TestDatabase::create().await;
            conformance::$name(&db.store()).await;
        }
    )*};
}

conformance_tests!(
    append_and_read_back,
    version_at_a_moment,
    expected_version_is_enforced,
    multi_event_append_is_atomic,
    retried_appends_are_idempotent,
    concurrent_appenders_on_one_stream,
    global_log_pages_deliver_everything_once,
    deleted_streams_refuse_appends,
    out_of_order_commit_is_not_skipped,
);

/// The log is ordered by transaction id as a number. Transaction ids whose decimal forms differ in
/// length (999 and 1 000, 99 999 and 100 000) sort the other way round as text; a page that ended
/// on the larger one would then make the next page skip the smaller.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn global_log_orders_transaction_ids_as_numbers() {
    use event_schemas::{Category, StreamId};
    use eventstore::{EventStore, ExpectedVersion, LogCheckpoint};

    let db = TestDatabase::create().await;
    let store = db.store();
    let stream = StreamId::new(Category::Workflow, uuid::Uuid::now_v7());
    let ws = uuid::Uuid::now_v7();
    store.append_to_stream(&stream, ExpectedVersion::NoStream, vec![conformance::sample_event(ws, 1)]).await.unwrap();
    // Two more events of the stream, as if appended by long-finished transactions 10^k - 1 and
    // 10^k, older than the one above. The ids must be in the cluster's past, or the fence would
    // hold them back: a freshly made cluster has used only a few thousand.
    let (appended_tx,): (String,) =
        sqlx::query_as("SELECT tx_id::text FROM event_store.events WHERE stream_id = $1 AND version = 1")
            .bind(stream.to_string())
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let appended_tx: u64 = appended_tx.parse().unwrap();
    let boundary = std::iter::successors(Some(10_u64), |p| Some(p * 10)).take_while(|p| *p < appended_tx).last();
    let boundary = boundary.expect("a cluster past its first ten transactions");
    let older = [(2, (boundary - 1).to_string()), (3, boundary.to_string())];
    for (version, tx_id) in older {
        sqlx::query(
            "INSERT INTO event_store.events (tx_id, stream_id, version, event_id, event_type, schema_version,
                 workspace_id, occurred_at, actor, correlation_id, causation_id, payload, metadata, prev_hash, hash)
             SELECT $1::text::xid8, stream_id, $2, gen_random_uuid(), event_type, schema_version, workspace_id,
                 occurred_at, actor, correlation_id, causation_id, payload, metadata, prev_hash, hash
             FROM event_store.events WHERE stream_id = $3 AND version = 1",
        )
        .bind(tx_id)
        .bind(version)
        .bind(stream.to_string())
        .execute(&db.pool)
        .await
        .unwrap();
    }
    // The appended event passes the fence once every transaction older than it has ended, in the
    // whole cluster (other tests' included): page on until three events came, or for 30 s.
    let mut checkpoint = LogCheckpoint::START;
    let mut tx_ids = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while tx_ids.len() < 3 && std::time::Instant::now() < deadline {
        let page = store.read_all(checkpoint, 1).await.unwrap();
        let Some(event) = page.last() else {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        tx_ids.push(event.checkpoint.tx_id);
        checkpoint = event.checkpoint;
    }
    assert_eq!(tx_ids.len(), 3, "every event once, none skipped: {tx_ids:?}");
    assert!(store.read_all(checkpoint, 1).await.unwrap().is_empty(), "nothing twice");
    assert_eq!(&tx_ids[..2], [boundary - 1, boundary]);
}
