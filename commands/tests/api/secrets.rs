//! No API key appears in plaintext anywhere: not in any table, not in the events, not in the logs.

use serde_json::json;

use crate::helpers::{LOGS, TestApp, definition};

#[tokio::test]
async fn no_key_is_stored_or_logged_in_plaintext() {
    let app = TestApp::spawn().await;
    let mut keys = vec![app.admin_key.clone()];
    let (developer, developer_id) = app.issue_key("developer").await;
    keys.push(developer.clone());
    let rotated =
        app.admin("POST", &format!("/api-keys/{developer_id}/rotate"), None, &[("Idempotency-Key", "rot")]).await;
    keys.push(rotated.body["key"].as_str().unwrap().to_owned());
    let body = json!({"name": "With key", "definition": definition(1)});
    app.send("POST", &app.path("/workflows"), Some(&keys[2]), Some(body), &[("Idempotency-Key", "k1")]).await;
    app.send("POST", &app.path("/workflows"), Some(&developer), Some(json!({})), &[]).await; // the old key: 401
    let issued = app
        .admin("POST", "/api-keys", Some(json!({"name": "idem", "role": "viewer"})), &[("Idempotency-Key", "i")])
        .await;
    keys.push(issued.body["key"].as_str().unwrap().to_owned());

    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema, table_name FROM information_schema.tables
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(tables.len() >= 7, "{tables:?}");
    let mut dump = String::new();
    for (schema, table) in &tables {
        let rows: Vec<(String,)> =
            sqlx::query_as(&format!("SELECT row_to_json(t)::text FROM \"{schema}\".\"{table}\" t"))
                .fetch_all(&app.db.pool)
                .await
                .unwrap();
        dump.extend(rows.into_iter().map(|(row,)| row));
    }
    let bodies: Vec<(String,)> =
        sqlx::query_as("SELECT convert_from(body, 'UTF8') FROM commands.idempotency_keys WHERE body IS NOT NULL")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert!(bodies.len() >= 3, "the idempotent responses were stored");
    let idempotency: String = bodies.into_iter().map(|(body,)| body).collect();
    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned();
    assert!(!logs.is_empty(), "the logs were captured");
    assert!(dump.contains("ApiKeyIssued"), "the events were scanned");
    for key in &keys {
        let secret = key.rsplit('_').next().unwrap();
        for (place, text) in [("tables", &dump), ("idempotency bodies", &idempotency), ("logs", &logs)] {
            assert!(!text.contains(key.as_str()) && !text.contains(secret), "a key appears in the {place}");
        }
    }
}
