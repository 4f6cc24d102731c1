//! End to end through a real broker: commands → event store → relay → Kafka → projector →
//! PostgreSQL read models, with the failures the design must survive.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use eventstore::testing::TestDatabase;
use eventstore::{EventStore, PgEventStore};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message};
use support::broker::Broker;
use support::fold::assert_read_models_match_store;
use support::{Api, spawn_projector, spawn_relay, wait_until_projected, wait_until_relayed};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_reach_their_topics_in_stream_order_with_cloudevents_headers() {
    let (db, broker) = (TestDatabase::create().await, Broker::start());
    let api = Api::start(&db.pool).await;
    spawn_relay(&db, &broker);
    api.mixed_commands(6).await;
    let total =
        PgEventStore::new(db.pool.clone()).read_all(eventstore::LogCheckpoint::START, 10_000).await.unwrap().len();
    // Read once the relay has everything acknowledged (a subscription to a topic not created yet
    // fails).
    wait_until_relayed(&db.pool, Duration::from_secs(30)).await;

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("group.id", "test-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["flowfuse.workspace", "flowfuse.apikey", "flowfuse.workflow"]).unwrap();
    let mut last_version: HashMap<String, i64> = HashMap::new();
    let mut seen = 0;
    while seen < total {
        let message =
            tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("records arrive").unwrap();
        let headers = message.headers().expect("headers");
        let header = |name: &str| {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8(v.to_vec()).unwrap())
                .unwrap_or_else(|| panic!("missing header {name}"))
        };
        for name in [
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "ce_dataschema",
            "content-type",
            "ce_partitionkey",
            "ce_workspaceid",
            "ce_position",
            "ce_correlationid",
            "ce_causationid",
            "traceparent",
        ] {
            header(name);
        }
        let stream = header("ce_subject");
        assert_eq!(message.key(), Some(stream.as_bytes()), "key = stream id");
        assert_eq!(message.topic(), format!("flowfuse.{}", stream.split('-').next().unwrap()));
        assert_eq!(header("ce_specversion"), "1.0");
        assert!(header("ce_type").starts_with("dev.flowfuse."));
        let traceparent = header("traceparent");
        assert_eq!(traceparent.split('-').map(str::len).collect::<Vec<_>>(), [2, 32, 16, 2]);
        let version: i64 = header("ce_streamversion").parse().unwrap();
        let previous = last_version.insert(stream.clone(), version).unwrap_or(0);
        assert_eq!(version, previous + 1, "{stream} arrives in order, each version once");
        let payload: serde_json::Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        assert!(payload.is_object());
        seen += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_models_equal_a_fold_of_the_event_store() {
    let (db, broker) = (TestDatabase::create().await, Broker::start());
    let api = Api::start(&db.pool).await;
    spawn_relay(&db, &broker);
    spawn_projector(&db, &broker);
    api.mixed_commands(8).await;
    wait_until_projected(&db.pool, Duration::from_secs(60)).await;
    assert_read_models_match_store(&db.pool).await;
    let search: (i64,) =
        sqlx::query_as("SELECT count(*) FROM read_model.workflows WHERE search @@ to_tsquery('simple', 'flow')")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(search.0, 8, "full-text search over names, descriptions and tags");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_under_traffic_leaves_the_read_models_consistent() {
    let (db, broker) = (TestDatabase::create().await, Broker::start());
    let api = Api::start(&db.pool).await;
    spawn_relay(&db, &broker);
    spawn_projector(&db, &broker);
    api.mixed_commands(6).await;
    wait_until_projected(&db.pool, Duration::from_secs(60)).await;

    let traffic = api.mixed_commands(12);
    let rebuilds = async {
        let all = projections::rebuild::rebuild(&db.pool, &projections::PROJECTIONS).await.unwrap();
        let one = projections::rebuild::rebuild(&db.pool, &["workflows"]).await.unwrap();
        (all, one)
    };
    let ((), (all, one)) = tokio::join!(traffic, rebuilds);
    assert_eq!(all.projections.len(), 5);
    assert_eq!(one.projections, ["workflows"]);
    assert!(all.events > 0);
    wait_until_projected(&db.pool, Duration::from_secs(60)).await;
    assert_read_models_match_store(&db.pool).await;

    let unknown = projections::rebuild::rebuild(&db.pool, &["nope"]).await.unwrap_err();
    assert!(unknown.to_string().contains("unknown projection"));
}
