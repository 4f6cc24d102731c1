//! The auditor's CLI end to end: `flowfuse migrate` and `flowfuse events read | tail | verify`
//! run as a separate process against a fresh PostgreSQL database.

use std::process::{Command, Output};

use event_schemas::RecordedEvent;
use event_schemas::chain::recompute_hash;
use eventstore::conformance::{new_stream, sample_event};
use eventstore::testing::TestDatabase;
use eventstore::{EventStore, ExpectedVersion};
use uuid::Uuid;

fn flowfuse(db: &TestDatabase, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowfuse"))
        .args(args)
        .env("DATABASE_URL", db.url())
        .env("LOG_FORMAT", "json")
        .output()
        .expect("run flowfuse")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// Two streams of 3 and 2 events; returns their ids.
async fn seed(db: &TestDatabase) -> (String, String) {
    let store = db.store();
    let ws = Uuid::now_v7();
    let (first, second) = (new_stream(), new_stream());
    let events = |range: std::ops::Range<usize>| range.map(|n| sample_event(ws, n)).collect::<Vec<_>>();
    store.append_to_stream(&first, ExpectedVersion::NoStream, events(0..3)).await.unwrap();
    store.append_to_stream(&second, ExpectedVersion::NoStream, events(3..5)).await.unwrap();
    (first.to_string(), second.to_string())
}

#[tokio::test]
async fn verify_passes_untouched_and_names_a_tampered_event() {
    let db = TestDatabase::create().await;
    let (first, second) = seed(&db).await;

    let intact = flowfuse(&db, &["events", "verify", "--all"]);
    assert_eq!(intact.status.code(), Some(0), "{}", stdout(&intact));
    assert!(stdout(&intact).contains("OK: 2 streams, 5 events"), "{}", stdout(&intact));

    // Change one byte of one stored payload, bypassing the append-only trigger as only a
    // superuser can.
    let mut conn = db.pool.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica").execute(&mut *conn).await.unwrap();
    let changed = sqlx::query(
        "UPDATE event_store.events SET payload = replace(payload::text, 'revision 1', 'revision 7')::jsonb
         WHERE stream_id = $1 AND version = 2",
    )
    .bind(&first)
    .execute(&mut *conn)
    .await
    .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    drop(conn);

    let tampered = flowfuse(&db, &["events", "verify", "--all"]);
    assert_eq!(tampered.status.code(), Some(1), "{}", stdout(&tampered));
    let report = stdout(&tampered);
    assert!(report.contains(&format!("BROKEN {first} at version 2")), "{report}");
    assert!(!report.contains(&second), "{report}");

    assert_eq!(flowfuse(&db, &["events", "verify", &second]).status.code(), Some(0));
    assert_eq!(flowfuse(&db, &["events", "verify", &first]).status.code(), Some(1));
}

#[tokio::test]
async fn the_log_is_append_only_for_ordinary_sessions() {
    let db = TestDatabase::create().await;
    seed(&db).await;
    let refused = sqlx::query("UPDATE event_store.events SET payload = '{}'").execute(&db.pool).await;
    assert!(refused.unwrap_err().to_string().contains("append-only"));
    let refused = sqlx::query("DELETE FROM event_store.events").execute(&db.pool).await;
    assert!(refused.unwrap_err().to_string().contains("append-only"));
}

#[tokio::test]
async fn read_prints_a_stream_as_ndjson_an_auditor_can_rehash() {
    let db = TestDatabase::create().await;
    let (first, _) = seed(&db).await;

    let output = flowfuse(&db, &["events", "read", &first]);
    assert!(output.status.success());
    let events: Vec<RecordedEvent> = stdout(&output).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(events.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2, 3]);
    for event in &events {
        assert_eq!(recompute_hash(event), event.hash, "the printed envelope is exactly what was hashed");
    }
    assert_eq!(events[1].prev_hash, events[0].hash);

    let middle = flowfuse(&db, &["events", "read", &first, "--from-version", "2", "--to-version", "2"]);
    let lines: Vec<&str> = std::str::from_utf8(&middle.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("\"version\":2"));

    let missing = flowfuse(&db, &["events", "read", &new_stream().to_string()]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
}

/// Waits until the global log shows `count` events: an open transaction anywhere on the server
/// (another test's) holds its visibility fence back for a moment.
async fn wait_for_log(db: &TestDatabase, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while db.store().read_all(eventstore::LogCheckpoint::START, 1_000).await.unwrap().len() < count {
        assert!(std::time::Instant::now() < deadline, "the global log never showed {count} events");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn tail_prints_the_global_log_with_limit_and_position() {
    let db = TestDatabase::create().await;
    seed(&db).await;
    wait_for_log(&db, 5).await;

    let all = flowfuse(&db, &["events", "tail"]);
    let positions: Vec<i64> =
        stdout(&all).lines().map(|line| serde_json::from_str::<RecordedEvent>(line).unwrap().global_position).collect();
    assert_eq!(positions.len(), 5);
    assert!(String::from_utf8_lossy(&all.stderr).contains("checkpoint: "));

    let limited = flowfuse(&db, &["events", "tail", "--limit", "2"]);
    assert_eq!(stdout(&limited).lines().count(), 2);

    let from = positions[3].to_string();
    let later = flowfuse(&db, &["events", "tail", "--from-position", &from]);
    assert_eq!(stdout(&later).lines().count(), 2);
}

#[tokio::test]
async fn migrate_creates_the_database_and_is_harmless_twice() {
    let db = TestDatabase::create().await;
    // A database that does not exist yet, on the same server.
    let name = format!("flowfuse_test_{}", Uuid::new_v4().simple());
    let url = db.url().replace(db.name(), &name);
    for _ in 0..2 {
        let output =
            Command::new(env!("CARGO_BIN_EXE_flowfuse")).args(["migrate", "--database-url", &url]).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let mut created = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let tables: (bool, i64) =
        sqlx::query_as("SELECT to_regclass('event_store.events') IS NOT NULL, (SELECT count(*) FROM _sqlx_migrations)")
            .fetch_one(&mut created)
            .await
            .unwrap();
    assert_eq!(tables, (true, eventstore::MIGRATOR.iter().count() as i64));
    drop(created);
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&db.pool).await.unwrap();
}

/// An auditor's own script (Python, standard library only, none of our code) recomputes every
/// hash from `flowfuse events read` output, floats and non-ASCII text included, and finds a
/// tampered event.
#[tokio::test]
async fn an_independent_python_script_verifies_the_chain() {
    use event_schemas::types::{Edge, Node, NodeType, Position, WorkflowDefinition};
    use event_schemas::workflow::WorkflowCreated;
    use event_schemas::{Actor, Event, NewEvent, WorkflowEvent};

    let db = TestDatabase::create().await;
    let (ws, stream) = (Uuid::now_v7(), new_stream());
    let node = |id: &str, x: f64, y: f64, node_type| Node {
        id: id.into(),
        node_type,
        name: format!("Nœud {id} 🚀"),
        position: Position { x, y },
        config: serde_json::json!({"zeta": 1, "alpha": [0.1, 1e-7, 1e21, -0.0], "ключ": "значение"})
            .as_object()
            .unwrap()
            .clone(),
    };
    let created = Event::from(WorkflowEvent::from(WorkflowCreated {
        workflow_id: stream.id(),
        name: "Floats".into(),
        description: Some("tab\there, quote \" and backslash \\".into()),
        tags: vec![],
        team_id: None,
        definition: WorkflowDefinition {
            nodes: vec![node("t", 100.0, -2.25, NodeType::Trigger), node("a", 123.456, 1e-6, NodeType::Action)],
            edges: vec![Edge { id: "e".into(), source: "t".into(), target: "a".into(), condition: None }],
        },
    }));
    let mut events = vec![NewEvent::now(ws, Actor::system("audit-test"), &created)];
    events.extend((0..3).map(|n| sample_event(ws, n)));
    db.store().append_to_stream(&stream, ExpectedVersion::NoStream, events).await.unwrap();

    let audit = |ndjson: &[u8]| {
        use std::io::Write;
        let mut child = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/audit_verify.py"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 is needed for this test (scripts/setup.sh installs it)");
        child.stdin.take().unwrap().write_all(ndjson).unwrap();
        child.wait_with_output().unwrap()
    };
    let read = flowfuse(&db, &["events", "read", &stream.to_string()]);
    let verdict = audit(&read.stdout);
    assert_eq!(verdict.status.code(), Some(0), "{}", stdout(&verdict));
    assert!(stdout(&verdict).contains("OK: 1 streams, 4 events"), "{}", stdout(&verdict));

    let tampered = String::from_utf8(read.stdout).unwrap().replacen("revision 1", "revision 2", 1);
    let verdict = audit(tampered.as_bytes());
    assert_eq!(verdict.status.code(), Some(1), "{}", stdout(&verdict));
    assert!(stdout(&verdict).contains(&format!("BROKEN {stream} at version 3")), "{}", stdout(&verdict));
}
