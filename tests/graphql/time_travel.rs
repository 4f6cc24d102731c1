//! `at`, `diff` and `verify` agree with the command history that produced them.

use serde_json::{Value, json};

use crate::support::{Stack, definition, error_code, stored};

const AT: &str = "query($id: UUID!, $v: Int, $t: DateTime) { workflow(id: $id) { at(version: $v, asOf: $t) { version name description tags status publishedVersion definitionVersion definition } } }";

async fn at(stack: &Stack, id: &str, version: i64) -> Value {
    stack.data(AT, json!({"id": id, "v": version})).await["workflow"]["at"].clone()
}

#[tokio::test]
async fn at_and_diff_agree_with_the_command_history() {
    let stack = Stack::start().await;
    let id = stack.create_workflow("Orders", &["shop"], None).await;
    let path = |rest: &str| format!("/workflows/{id}{rest}");
    let steps: Vec<(&str, String, Option<Value>)> = vec![
        ("PUT", path("/definition"), Some(json!({"definition": definition(3), "message": "three steps"}))),
        ("POST", path("/publish"), None),
        (
            "PATCH",
            path(""),
            Some(json!({"name": "Orders v2", "description": "now documented", "tags": ["shop", "core"]})),
        ),
        ("POST", path("/rollback"), Some(json!({"to_version": 1}))),
    ];
    for (version, (method, path, body)) in (1..).zip(steps) {
        let (status, body) = stack.send(method, &path, body, Some(version)).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
    }
    stack.project().await;

    let v1 = at(&stack, &id, 1).await;
    assert_eq!(
        (v1["name"].as_str(), v1["status"].as_str(), v1["tags"].clone()),
        (Some("Orders"), Some("draft"), json!(["shop"]))
    );
    assert_eq!(v1["definition"], stored(definition(1)));
    let v2 = at(&stack, &id, 2).await;
    assert_eq!((v2["definition"].clone(), v2["definitionVersion"].as_i64()), (stored(definition(3)), Some(2)));
    let v3 = at(&stack, &id, 3).await;
    assert_eq!((v3["status"].as_str(), v3["publishedVersion"].as_i64()), (Some("published"), Some(2)));
    let v4 = at(&stack, &id, 4).await;
    assert_eq!(
        (v4["name"].as_str(), v4["description"].as_str(), v4["tags"].clone()),
        (Some("Orders v2"), Some("now documented"), json!(["shop", "core"]))
    );
    let v5 = at(&stack, &id, 5).await;
    assert_eq!(
        (v5["definition"].clone(), v5["status"].as_str(), v5["definitionVersion"].as_i64()),
        (stored(definition(1)), Some("draft"), Some(5))
    );

    let diff = stack
        .data(
            "query($id: UUID!) { workflow(id: $id) { diff(from: 1, to: 4) { fromVersion toVersion unchanged
                nodes { added removed changed { id } } edges { added removed }
                name { before after } description { before after } status { before after } tagsAdded tagsRemoved } } }",
            json!({"id": id}),
        )
        .await["workflow"]["diff"]
        .clone();
    assert_eq!(
        diff["nodes"]["added"].as_array().unwrap().iter().map(|n| n["id"].clone()).collect::<Vec<_>>(),
        [json!("a1"), json!("a2")]
    );
    assert_eq!(diff["nodes"]["removed"], json!([]));
    assert_eq!(diff["edges"]["added"].as_array().unwrap().len(), 2);
    assert_eq!(diff["name"], json!({"before": "Orders", "after": "Orders v2"}));
    assert_eq!(diff["description"], json!({"before": null, "after": "now documented"}));
    assert_eq!(diff["status"], json!({"before": "draft", "after": "published"}));
    assert_eq!((diff["tagsAdded"].clone(), diff["tagsRemoved"].clone()), (json!(["core"]), json!([])));
    let back = stack.data("query($id: UUID!) { workflow(id: $id) { diff(from: 1, to: 5) { nodes { added removed changed { id } } } } }", json!({"id": id})).await;
    assert_eq!(
        back["workflow"]["diff"]["nodes"],
        json!({"added": [], "removed": [], "changed": []}),
        "the rollback restored v1's graph"
    );

    // asOf: the version in force at a moment.
    let times: Vec<(i64, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT version, occurred_at FROM event_store.events WHERE stream_id = $1 ORDER BY version")
            .bind(format!("workflow-{id}"))
            .fetch_all(&stack.db.pool)
            .await
            .unwrap();
    let as_of = stack.data(AT, json!({"id": id, "t": times[2].1.to_rfc3339()})).await;
    assert_eq!(
        as_of["workflow"]["at"]["version"],
        times.iter().filter(|(_, t)| *t <= times[2].1).map(|(v, _)| *v).max().unwrap()
    );
    let before_creation = stack.data(AT, json!({"id": id, "t": "2000-01-01T00:00:00Z"})).await;
    assert_eq!(before_creation["workflow"]["at"], Value::Null);

    let (_, body) = stack.query_as(&stack.key, AT, json!({"id": id, "v": 6})).await;
    assert_eq!(error_code(&body), "NO_SUCH_VERSION");
    assert_eq!(body["errors"][0]["extensions"]["latest"], 5);
    let (_, body) = stack.query_as(&stack.key, AT, json!({"id": id, "v": 1, "t": "2020-01-01T00:00:00Z"})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn long_histories_are_answered_from_snapshots_that_are_checked() {
    let mut stack = Stack::start().await;
    let id = stack.create_workflow("Long", &[], None).await;
    for version in 1..250 {
        let actions = 1 + (version as usize % 7);
        let body = json!({"definition": definition(actions), "message": format!("change {version}")});
        let (status, body) = stack.send("PUT", &format!("/workflows/{id}/definition"), Some(body), Some(version)).await;
        assert_eq!(status, 200, "{body}");
    }
    stack.project().await;
    let expected = |version: i64| stored(definition(1 + ((version - 1) as usize % 7)));
    assert_eq!(at(&stack, &id, 250).await["definition"], expected(250));
    let (snapshots,): (i64,) = sqlx::query_as("SELECT count(*) FROM snapshots.workflow_states WHERE stream_id = $1")
        .bind(format!("workflow-{id}"))
        .fetch_one(&stack.db.pool)
        .await
        .unwrap();
    assert_eq!(snapshots, 250 / query_api::time_travel::SNAPSHOT_EVERY, "one every SNAPSHOT_EVERY versions");
    for version in [1, 19, 20, 21, 99, 100, 101, 199, 200, 237, 250] {
        let state = at(&stack, &id, version).await;
        assert_eq!(
            (state["version"].as_i64(), state["definition"].clone()),
            (Some(version), expected(version)),
            "at {version}"
        );
    }

    // The query API keeps the snapshots it folded in memory, and reads no row for them: a forged
    // row (with the right hash) at 235, where version 237 starts from, goes unread.
    forge_snapshot(&stack, &id, 235, None).await;
    assert_eq!(at(&stack, &id, 237).await["name"], "Long");

    // A state kept in memory is trusted only while the event at its version has the recorded
    // hash: with the event at 235 tampered with (another definition, another hash), version 235
    // is folded again from the events, the tampered one included.
    let mut conn = stack.db.pool.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica").execute(&mut *conn).await.unwrap();
    sqlx::query(
        "UPDATE event_store.events SET payload = jsonb_set(payload, '{definition}', $2), hash = repeat('0', 64)
         WHERE stream_id = $1 AND version = 235",
    )
    .bind(format!("workflow-{id}"))
    .bind(definition(9))
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("RESET session_replication_role").execute(&mut *conn).await.unwrap();
    drop(conn);
    assert_ne!(expected(235), stored(definition(9)));
    assert_eq!(at(&stack, &id, 235).await["definition"], stored(definition(9)));

    // A snapshot row that no longer matches the stream is ignored, not trusted: forge the one
    // that version 122 starts from, and ask a query API that holds nothing in memory.
    forge_snapshot(&stack, &id, 120, Some("x")).await;
    stack.restart_query_api().await;
    let state = at(&stack, &id, 122).await;
    assert_eq!((state["name"].as_str(), state["definition"].clone()), (Some("Long"), expected(122)));
}

/// Renames the workflow in its snapshot row at `version` to "forged", and sets the row's event
/// hash to `hash` if given.
async fn forge_snapshot(stack: &Stack, id: &str, version: i64, hash: Option<&str>) {
    let forged = sqlx::query(
        "UPDATE snapshots.workflow_states SET state = jsonb_set(state, '{name}', '\"forged\"'),
                event_hash = coalesce($3, event_hash)
         WHERE stream_id = $1 AND version = $2",
    )
    .bind(format!("workflow-{id}"))
    .bind(version)
    .bind(hash)
    .execute(&stack.db.pool)
    .await
    .unwrap();
    assert_eq!(forged.rows_affected(), 1, "a snapshot row at {version}");
}

#[tokio::test]
async fn verify_finds_a_tampered_event() {
    let stack = Stack::start().await;
    let id = stack.create_workflow("Audited", &[], None).await;
    for version in 1..4 {
        let body = json!({"definition": definition(2), "message": format!("m{version}")});
        stack.send("PUT", &format!("/workflows/{id}/definition"), Some(body), Some(version)).await;
    }
    let query = "query($s: String!) { stream(id: $s) { verify { intact eventsChecked firstBrokenVersion reason } } }";
    let stream = format!("workflow-{id}");
    let intact = stack.data(query, json!({"s": stream})).await;
    assert_eq!(intact["stream"]["verify"]["intact"], true);

    // The envelopes page both ways by version.
    let events = "query($s: String!, $a: String, $b: String, $f: Int, $l: Int) { stream(id: $s) { version
        events(first: $f, after: $a, last: $l, before: $b) { edges { cursor node { version prevHash hash } } pageInfo { endCursor startCursor hasNextPage hasPreviousPage } } } }";
    let page = stack.data(events, json!({"s": stream, "f": 2})).await["stream"].clone();
    assert_eq!(page["version"], 4);
    let edges = page["events"]["edges"].as_array().unwrap().clone();
    assert_eq!(edges.iter().map(|e| e["node"]["version"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(edges[1]["node"]["prevHash"], edges[0]["node"]["hash"], "the chain links");
    let next = stack.data(events, json!({"s": stream, "f": 5, "a": page["events"]["pageInfo"]["endCursor"]})).await;
    let versions: Vec<i64> = next["stream"]["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!((versions, next["stream"]["events"]["pageInfo"]["hasNextPage"].as_bool()), (vec![3, 4], Some(false)));
    let last =
        stack.data(events, json!({"s": stream, "l": 2, "b": next["stream"]["events"]["pageInfo"]["endCursor"]})).await;
    let versions: Vec<i64> = last["stream"]["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!((versions, last["stream"]["events"]["pageInfo"]["hasPreviousPage"].as_bool()), (vec![2, 3], Some(true)));
    let mut conn = stack.db.pool.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica").execute(&mut *conn).await.unwrap();
    sqlx::query("UPDATE event_store.events SET payload = jsonb_set(payload, '{message}', '\"forged\"') WHERE stream_id = $1 AND version = 3")
        .bind(&stream)
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let broken = stack.data(query, json!({"s": stream})).await;
    assert_eq!(broken["stream"]["verify"]["intact"], false, "{broken}");
    assert_eq!(broken["stream"]["verify"]["firstBrokenVersion"], 3);
}
