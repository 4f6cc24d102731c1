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
