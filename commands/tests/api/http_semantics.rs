//! If-Match (412, 428), Idempotency-Key (replay, 422, 409), uniqueness under concurrency, and
//! problem+json for malformed requests.

use serde_json::json;

use crate::helpers::{TestApp, definition};

#[tokio::test]
async fn updates_need_the_current_etag() {
    let app = TestApp::spawn().await;
    let id = app.create_workflow("Versioned").await.id();
    let path = format!("/workflows/{id}/definition");
    let body = json!({"definition": definition(2), "message": "two steps"});

    let missing = app.admin("PUT", &path, Some(body.clone()), &[]).await;
    missing.assert_problem(428, "PRECONDITION_REQUIRED");
    let first = app.admin("PUT", &path, Some(body.clone()), &[("If-Match", "\"1\"")]).await;
    assert_eq!(first.status, 200);
    let stale = app.admin("PUT", &path, Some(body.clone()), &[("If-Match", "\"1\"")]).await;
    stale.assert_problem(412, "PRECONDITION_FAILED");
    assert_eq!(stale.etag(), 2, "a 412 tells the current version");
    let garbage = app.admin("PUT", &path, Some(body), &[("If-Match", "yesterday")]).await;
    garbage.assert_problem(422, "VALIDATION_ERROR");
    assert_eq!(app.events(&format!("workflow-{id}")).await.len(), 2);
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_other_bodies_and_block_while_in_flight() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Once only", "definition": definition(1)});
    let first = app.admin("POST", "/workflows", Some(body.clone()), &[("Idempotency-Key", "create-1")]).await;
    assert_eq!(first.status, 201);
    let again = app.admin("POST", "/workflows", Some(body.clone()), &[("Idempotency-Key", "create-1")]).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body, "the stored response is replayed");
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("etag"), first.header("etag"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));

    let other = json!({"name": "Something else", "definition": definition(1)});
    app.admin("POST", "/workflows", Some(other), &[("Idempotency-Key", "create-1")])
        .await
        .assert_problem(422, "VALIDATION_ERROR");

    // Another caller's identical key is its own.
    let (key, _) = app.issue_key("developer").await;
    let mine = json!({"name": "Mine", "definition": definition(1)});
    let response =
        app.send("POST", &app.path("/workflows"), Some(&key), Some(mine), &[("Idempotency-Key", "create-1")]).await;
    assert_eq!(response.status, 201);

    // A claim still in flight (as a concurrent request would hold it) answers 409.
    let key_id: (uuid::Uuid,) =
        sqlx::query_as("SELECT key_id FROM security.api_keys WHERE workspace_id = $1 ORDER BY key_id LIMIT 1")
            .bind(app.workspace_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    sqlx::query(
        "INSERT INTO commands.idempotency_keys (key_id, idempotency_key, fingerprint) VALUES ($1, 'busy', 'x')",
    )
    .bind(key_id.0)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let body = json!({"name": "Busy", "definition": definition(1)});
    let busy = app.admin("POST", "/workflows", Some(body), &[("Idempotency-Key", "busy")]).await;
    busy.assert_problem(409, "CONFLICT");

    // Client errors are replayed too; the issued key is never stored for replay.
    let bad = json!({"name": "<x>", "definition": definition(1)});
    let refused = app.admin("POST", "/workflows", Some(bad.clone()), &[("Idempotency-Key", "bad-1")]).await;
    refused.assert_problem(422, "VALIDATION_ERROR");
    let replayed = app.admin("POST", "/workflows", Some(bad), &[("Idempotency-Key", "bad-1")]).await;
    assert_eq!(replayed.status, 422);
    let issue = json!({"name": "once", "role": "viewer"});
    let issued = app.admin("POST", "/api-keys", Some(issue.clone()), &[("Idempotency-Key", "key-1")]).await;
    assert!(issued.body["key"].is_string());
    let replay = app.admin("POST", "/api-keys", Some(issue), &[("Idempotency-Key", "key-1")]).await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.body["key"], serde_json::Value::Null);
    assert_eq!(replay.body["id"], issued.body["id"]);
}

#[tokio::test]
async fn racing_creates_of_one_name_let_exactly_one_win() {
    let app = TestApp::spawn().await;
    let attempts = (0..12).map(|_| {
        let body = json!({"name": "Contested", "definition": definition(1)});
        app.admin("POST", "/workflows", Some(body), &[])
    });
    let responses = futures::future::join_all(attempts).await;
    let created = responses.iter().filter(|r| r.status == 201).count();
    let conflicts = responses.iter().filter(|r| r.status == 409).count();
    assert_eq!((created, conflicts), (1, 11), "{:?}", responses.iter().map(|r| r.status).collect::<Vec<_>>());
    // Names compare case-insensitively, and archiving frees the name.
    let again =
        app.admin("POST", "/workflows", Some(json!({"name": "CONTESTED", "definition": definition(0)})), &[]).await;
    again.assert_problem(409, "CONFLICT");
    let winner = responses.iter().find(|r| r.status == 201).unwrap().id();
    let archived = app.admin("POST", &format!("/workflows/{winner}/archive"), None, &[("If-Match", "\"1\"")]).await;
    assert_eq!(archived.status, 200);
    let reused =
        app.admin("POST", "/workflows", Some(json!({"name": "Contested", "definition": definition(0)})), &[]).await;
    assert_eq!(reused.status, 201);
    let restore = app.admin("POST", &format!("/workflows/{winner}/restore"), None, &[("If-Match", "\"2\"")]).await;
    restore.assert_problem(409, "CONFLICT");
}

#[tokio::test]
async fn racing_workspace_slugs_let_exactly_one_win() {
    let app = TestApp::spawn().await;
    let attempts = (0..6).map(|_| {
        commands::bootstrap::create_workspace(&app.db.pool, "Twin", Some("twin"), event_schemas::types::Plan::Free)
    });
    let results = futures::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    for error in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(matches!(error, commands::ApiError::Conflict(_)), "{error:?}");
    }
}

#[tokio::test]
async fn malformed_requests_get_problem_json() {
    let app = TestApp::spawn().await;
    let url = format!("{}{}", app.base, app.path("/workflows"));
    let send = |body: Vec<u8>, content_type: &'static str| {
        app.client.post(&url).bearer_auth(&app.admin_key).header("content-type", content_type).body(body).send()
    };
    let problem = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let body: serde_json::Value = response.json().await.unwrap();
        (status, content_type, body)
    };

    let (status, content_type, body) = problem(send(b"{\"name\": ".to_vec(), "application/json").await.unwrap()).await;
    assert_eq!(
        (status, content_type.as_str(), body["code"].as_str()),
        (400, "application/problem+json", Some("VALIDATION_ERROR"))
    );

    let (status, _, body) = problem(send(b"name=x".to_vec(), "application/x-www-form-urlencoded").await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (415, Some("VALIDATION_ERROR")));

    let unknown = json!({"name": "X", "definition": definition(0), "owner": "me"}).to_string().into_bytes();
    let (status, _, body) = problem(send(unknown, "application/json").await.unwrap()).await;
    assert_eq!(status, 422);
    assert!(body["detail"].as_str().unwrap().contains("unknown field `owner`"), "{body}");

    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 1)).into_bytes();
    let (status, content_type, body) = problem(send(huge.clone(), "application/json").await.unwrap()).await;
    assert_eq!(
        (status, content_type.as_str(), body["code"].as_str()),
        (413, "application/problem+json", Some("PAYLOAD_TOO_LARGE"))
    );
    let with_key = app
        .client
        .post(&url)
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/json")
        .header("Idempotency-Key", "huge")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(with_key).await.0, 413);

    let nowhere = app.admin("GET", "/nowhere", None, &[]).await;
    nowhere.assert_problem(404, "NOT_FOUND");
    let wrong_method = app.admin("GET", "/workflows", None, &[]).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("content-type"), Some("application/problem+json"));
}

#[tokio::test]
async fn plan_quotas_hold_and_archiving_frees_a_slot() {
    let app = TestApp::spawn().await;
    let (workspace, key) = app.other_workspace().await; // on the free plan: 20 active workflows
    let path = format!("/v1/workspaces/{workspace}/workflows");
    let create = |n: usize| json!({"name": format!("Flow {n}"), "definition": definition(0)});
    let statuses = app.create_concurrently(workspace, &key, 24).await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 20, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 4, "{statuses:?}");
    // A refused create leaves no name reserved.
    let reserved = app.index_number("SELECT count(*) FROM security.workflow_names WHERE workspace_id = $1", workspace);
    assert_eq!(reserved.await, 20);
    let first: (uuid::Uuid,) =
        sqlx::query_as("SELECT workflow_id FROM security.workflow_names WHERE workspace_id = $1 LIMIT 1")
            .bind(workspace)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let archive = format!("{path}/{}/archive", first.0);
    assert_eq!(app.send("POST", &archive, Some(&key), None, &[("If-Match", "\"1\"")]).await.status, 200);
    assert_eq!(app.send("POST", &path, Some(&key), Some(create(99)), &[]).await.status, 201);
    app.send("POST", &path, Some(&key), Some(create(100)), &[]).await.assert_problem(409, "CONFLICT");
}

#[tokio::test]
async fn the_api_key_quota_holds_and_revoking_frees_a_slot() {
    let app = TestApp::spawn().await;
    let (workspace, key) = app.other_workspace().await; // on the free plan: 10 active API keys
    let path = format!("/v1/workspaces/{workspace}/api-keys");
    let issue = |n: usize| json!({"name": format!("key {n}"), "role": "viewer"});
    // The bootstrap key is one of the ten.
    let attempts = (0..12).map(|n| app.send("POST", &path, Some(&key), Some(issue(n)), &[]));
    let responses = futures::future::join_all(attempts).await;
    let issued: Vec<_> = responses.iter().filter(|r| r.status == 201).collect();
    assert_eq!(issued.len(), 9, "{:?}", responses.iter().map(|r| r.status).collect::<Vec<_>>());
    assert_eq!(responses.iter().filter(|r| r.status == 409).count(), 3);
    let counted = "SELECT active_api_keys::bigint FROM security.workspaces WHERE workspace_id = $1";
    assert_eq!(app.index_number(counted, workspace).await, 10);
    // A refused issue leaves no key behind in the index.
    let keys = "SELECT count(*) FROM security.api_keys WHERE workspace_id = $1";
    assert_eq!(app.index_number(keys, workspace).await, 10);
    let revoke = format!("{path}/{}", issued[0].id());
    assert_eq!(app.send("DELETE", &revoke, Some(&key), None, &[]).await.status, 204);
    assert_eq!(app.send("POST", &path, Some(&key), Some(issue(99)), &[]).await.status, 201);
    app.send("POST", &path, Some(&key), Some(issue(100)), &[]).await.assert_problem(409, "CONFLICT");
}

/// Two instances of the API on one database: each caches aggregate states, and neither ever
/// decides on a state the other has moved past.
#[tokio::test]
async fn a_second_instance_never_acts_on_a_stale_cached_state() {
    let app = TestApp::spawn().await;
    let other = commands::CommandApi::bind(app.db.pool.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let other_base = format!("http://{}", other.local_addr());
    tokio::spawn(other.run_until_stopped(std::future::pending()));
    let id = app.create_workflow("Shared").await.id();
    let path = app.path(&format!("/workflows/{id}/definition"));
    let change = |steps: usize, if_match: &str| {
        app.client
            .put(format!("{other_base}{path}"))
            .bearer_auth(&app.admin_key)
            .header("If-Match", if_match)
            .json(&json!({"definition": definition(steps), "message": format!("{steps} steps")}))
            .send()
    };
    // The second instance caches version 2.
    assert_eq!(change(2, "\"1\"").await.unwrap().status(), 200);
    // The first instance moves the workflow to version 3.
    let body = json!({"definition": definition(3), "message": "elsewhere"});
    assert_eq!(
        app.admin("PUT", &format!("/workflows/{id}/definition"), Some(body), &[("If-Match", "\"2\"")]).await.status,
        200
    );
    // A client still at version 2 is refused by the second instance, whose cache says 2.
    assert_eq!(change(4, "\"2\"").await.unwrap().status(), 412);
    // A client at version 3 succeeds there: the instance catches up first.
    assert_eq!(change(4, "\"3\"").await.unwrap().status(), 200);
    let events = app.events(&format!("workflow-{id}")).await;
    assert_eq!(events.len(), 4);
    assert_eq!(events[3].payload["message"], "4 steps");
}
