//! A consumer that uses none of our code (Python, `confluent-kafka` from PyPI) reads a topic and
//! sees the CloudEvents attributes.

mod support;

use std::process::Command;

use eventstore::testing::TestDatabase;
use support::Api;
use support::broker::Broker;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_python_consumer_reads_cloudevents() {
    let (db, broker) = (TestDatabase::create().await, Broker::start());
    let api = Api::start(&db.pool).await;
    support::spawn_relay(&db, &broker);
    api.workflow_life(1).await; // six workflow events

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/analytics_consumer.py");
    let brokers = broker.addr();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args([
                script,
                "--brokers",
                &brokers,
                "--topic",
                "flowfuse.workflow",
                "--max-records",
                "6",
                "--timeout",
                "60",
            ])
            .output()
    })
    .await
    .unwrap()
    .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "needs `python3 -m pip install confluent-kafka` (scripts/setup.sh does): {stderr}"
    );
    let records: Vec<serde_json::Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(records.len(), 6, "{stderr}");
    let types: Vec<&str> = records.iter().map(|r| r["attributes"]["type"].as_str().unwrap()).collect();
    assert_eq!(types[0], "dev.flowfuse.WorkflowCreated");
    for (record, version) in records.iter().zip(1..) {
        let attributes = &record["attributes"];
        assert_eq!(attributes["specversion"], "1.0");
        assert_eq!(attributes["subject"], record["key"]);
        assert_eq!(attributes["streamversion"], version.to_string());
        assert_eq!(attributes["workspaceid"], api.workspace_id.to_string());
        assert!(attributes["dataschema"].as_str().unwrap().ends_with(".schema.json"));
        assert!(attributes["id"].is_string() && attributes["time"].is_string() && attributes["source"].is_string());
        assert_eq!(record["content_type"], "application/json");
        assert!(record["traceparent"].as_str().unwrap().starts_with("00-"));
        assert!(record["data"].is_object());
    }
}
