//! The pool every service uses (`eventstore::pool_options`): it skips sqlx's ping before using a
//! connection that was just used, and still replaces one that died while it sat idle.

use std::time::Duration;

use eventstore::pool_options;
use eventstore::testing::TestDatabase;

async fn backend_pid(pool: &sqlx::PgPool) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(pool).await.expect("a query on the pool")
}

#[tokio::test]
async fn a_connection_that_died_while_idle_is_replaced_before_use() {
    let db = TestDatabase::create().await;
    let pool = pool_options(1).connect(&db.url()).await.unwrap();
    let first = backend_pid(&pool).await;
    // The server ends the pooled connection's session, as a restart or an administrator would.
    let (terminated,): (bool,) =
        sqlx::query_as("SELECT pg_terminate_backend($1)").bind(first).fetch_one(&db.pool).await.unwrap();
    assert!(terminated);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // Idle for more than a second: pinged, found dead, replaced; the caller sees no error.
    let second = backend_pid(&pool).await;
    assert_ne!(first, second);
}
