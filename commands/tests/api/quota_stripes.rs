//! The workflow quota, counted in stripes (migration `…_workflow_count_stripes.sql`): exact
//! under concurrency on both of `security.count_workflow`'s ways, and a create that loses a race
//! to the limit runs again rather than failing.

use std::time::Duration;

use serde_json::json;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::helpers::{TestApp, definition};

const ACTIVE: &str = "SELECT sum(active)::bigint FROM security.workflow_stripes WHERE workspace_id = $1";

async fn set_limit(pool: &PgPool, workspace_id: Uuid, max_workflows: i32) {
    sqlx::query("UPDATE security.workspaces SET max_workflows = $2 WHERE workspace_id = $1")
        .bind(workspace_id)
        .bind(max_workflows)
        .execute(pool)
        .await
        .unwrap();
}

/// A connection of its own, in an open transaction.
async fn in_transaction(pool: &PgPool) -> PgConnection {
    let mut conn = PgConnection::connect_with(&pool.connect_options()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    conn
}

/// Waits until a backend whose query mentions `count_workflow` waits for a lock.
async fn until_blocked_in_count(pool: &PgPool) {
    for _ in 0..500 {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity
             WHERE wait_event_type = 'Lock' AND query LIKE '%count_workflow%' AND datname = current_database()",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no count_workflow call ever waited for a stripe");
}

#[tokio::test]
async fn concurrent_creates_stop_exactly_at_the_limit_and_use_several_stripes() {
    let app = TestApp::spawn().await;
    let (workspace, key) = app.other_workspace().await;
    // 40: the first creates are far enough from it to take the fast way, the last ones not.
    set_limit(&app.db.pool, workspace, 40).await;
    let path = format!("/v1/workspaces/{workspace}/workflows");
    let create = |n: usize| json!({"name": format!("Flow {n}"), "definition": definition(0)});
    let statuses = app.create_concurrently(workspace, &key, 56).await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 40, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 16, "{statuses:?}");
    assert_eq!(app.index_number(ACTIVE, workspace).await, 40);
    let names = "SELECT count(*) FROM security.workflow_names WHERE workspace_id = $1 AND NOT archived";
    assert_eq!(app.index_number(names, workspace).await, 40);
    let used = "SELECT count(*) FROM security.workflow_stripes WHERE workspace_id = $1 AND active <> 0";
    assert!(app.index_number(used, workspace).await > 1, "every create counted on one stripe");

    // Archiving frees a slot on its workflow's stripe, restoring takes it again or is refused.
    let (first,): (Uuid,) =
        sqlx::query_as("SELECT workflow_id FROM security.workflow_names WHERE workspace_id = $1 LIMIT 1")
            .bind(workspace)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let archive = format!("{path}/{first}/archive");
    assert_eq!(app.send("POST", &archive, Some(&key), None, &[("If-Match", "\"1\"")]).await.status, 200);
    assert_eq!(app.index_number(ACTIVE, workspace).await, 39);
    assert_eq!(app.send("POST", &path, Some(&key), Some(create(99)), &[]).await.status, 201);
    let restore = format!("{path}/{first}/restore");
    app.send("POST", &restore, Some(&key), None, &[("If-Match", "\"2\"")]).await.assert_problem(409, "CONFLICT");
    assert_eq!(app.index_number(ACTIVE, workspace).await, 40);
}

/// `security.count_workflow` on its own: a fast count that creates raced to the limit raises
/// 40001; run again, it counts exactly, and refuses at the limit.
#[tokio::test]
async fn a_fast_count_overtaken_near_the_limit_asks_to_run_again() {
    let app = TestApp::spawn().await;
    let pool = &app.db.pool;
    let (workspace, _) = app.other_workspace().await;
    set_limit(pool, workspace, 40).await;
    let workflow = Uuid::now_v7();
    let count = "SELECT security.count_workflow($1, $2, 1)";

    // B counts on the workflow's stripe and holds it.
    let mut holder = in_transaction(pool).await;
    let counted: bool = sqlx::query_scalar(count).bind(workspace).bind(workflow).fetch_one(&mut holder).await.unwrap();
    assert!(counted);
    // A looks (nothing is committed: the fast way) and waits for the same stripe.
    let racer = {
        let mut conn = in_transaction(pool).await;
        tokio::spawn(async move {
            let outcome: Result<bool, sqlx::Error> =
                sqlx::query_scalar(count).bind(workspace).bind(workflow).fetch_one(&mut conn).await;
            sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
            outcome
        })
    };
    until_blocked_in_count(pool).await;
    // Meanwhile 30 creates are committed on another stripe, then B commits.
    sqlx::query(
        "UPDATE security.workflow_stripes SET active = active + 30
         WHERE workspace_id = $1 AND stripe = ((hashtext($2::text) % 16 + 16) % 16 + 1) % 16",
    )
    .bind(workspace)
    .bind(workflow)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    let raced = racer.await.unwrap().expect_err("31 counted plus 15 possibly unseen could pass 40");
    assert_eq!(raced.as_database_error().and_then(|e| e.code()).as_deref(), Some("40001"), "{raced}");
    assert_eq!(app.index_number(ACTIVE, workspace).await, 31, "the raced count changed nothing");

    // Run again, near the limit: exact, up to 40 and no further.
    for _ in 31..40 {
        let counted: bool =
            sqlx::query_scalar(count).bind(workspace).bind(Uuid::now_v7()).fetch_one(pool).await.unwrap();
        assert!(counted);
    }
    let counted: bool = sqlx::query_scalar(count).bind(workspace).bind(Uuid::now_v7()).fetch_one(pool).await.unwrap();
    assert!(!counted, "the 41st active workflow of a workspace limited to 40");
    assert_eq!(app.index_number(ACTIVE, workspace).await, 40);
}

/// Over HTTP: a create whose fast count is overtaken runs its transaction again and succeeds.
#[tokio::test]
async fn a_create_that_loses_the_race_runs_again_and_succeeds() {
    let app = TestApp::spawn().await;
    let pool = &app.db.pool;
    let (workspace, key) = app.other_workspace().await;
    set_limit(pool, workspace, 40).await;
    // B: 30 creates on stripe 0, not yet committed, and a hold on every other stripe.
    let mut holder = in_transaction(pool).await;
    sqlx::query("UPDATE security.workflow_stripes SET active = 30 WHERE workspace_id = $1 AND stripe = 0")
        .bind(workspace)
        .execute(&mut holder)
        .await
        .unwrap();
    sqlx::query("SELECT 1 FROM security.workflow_stripes WHERE workspace_id = $1 FOR UPDATE")
        .bind(workspace)
        .execute(&mut holder)
        .await
        .unwrap();
    let create = {
        let (client, url) = (app.client.clone(), format!("{}/v1/workspaces/{workspace}/workflows", app.base));
        tokio::spawn(async move {
            let body = json!({"name": "Late", "definition": definition(0)});
            client.post(url).bearer_auth(key).json(&body).send().await.unwrap().status().as_u16()
        })
    };
    until_blocked_in_count(pool).await;
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    assert_eq!(create.await.unwrap(), 201);
    assert_eq!(app.index_number(ACTIVE, workspace).await, 31);
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l.starts_with("command_conflicts_total") && l.contains("quota_race")), "{metrics}");
}
