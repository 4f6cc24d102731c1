//! The failures the pipeline must survive: a poison event, a projector killed mid-burst, the
//! leading relay killed, and a broker that restarts empty.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use event_schemas::{Actor, Category, NewEvent, StreamId};
use eventstore::testing::TestDatabase;
use eventstore::{EventStore, ExpectedVersion};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message};
use support::broker::Broker;
use support::fold::assert_read_models_match_store;
use support::{Api, spawn_projector, spawn_relay, wait_until_projected};
use uuid::Uuid;

/// `flowfuse <role>` as a process of its own.
struct Role(Child, &'static str);

impl Role {
    fn start(role: &'static str, db: &TestDatabase, broker: &Broker) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_flowfuse"))
            .arg(role)
            .env("DATABASE_URL", db.url())
            .env("KAFKA_BROKERS", broker.addr())
            .env("RUST_LOG", "info,rdkafka=info")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(format!("/tmp/flowfuse-test-{role}-{}.log", Uuid::now_v7())).unwrap())
            .spawn()
            .unwrap();
        Self(child, role)
    }

    /// What a supervisor (systemd, Kubernetes) does: starts the role again if it died. Returns
    /// whether it had.
    fn revive_if_dead(&mut self, db: &TestDatabase, broker: &Broker) -> bool {
        if matches!(self.0.try_wait(), Ok(None)) {
            return false;
        }
        eprintln!("{} exited ({:?}); starting it again", self.1, self.0.try_wait());
        *self = Role::start(self.1, db, broker);
        true
    }

    fn kill(&mut self) {
        let _ = self.0.kill(); // SIGKILL: no chance to clean up
        let _ = self.0.wait();
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn audit_rows(db: &TestDatabase) -> i64 {
    sqlx::query_as::<_, (i64,)>("SELECT count(*) FROM read_model.audit_log").fetch_one(&db.pool).await.unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_event_is_dead_lettered_and_later_events_still_apply() {
    let (db, broker) = (TestDatabase::create().await, Broker::start());
    let api = Api::start(&db.pool).await;
    spawn_relay(&db, &broker);
    spawn_projector(&db, &broker);

    // An event whose payload does not match its type, written past the command API.
    let poison_stream = StreamId::new(Category::Workflow, Uuid::now_v7());
    let poison = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "WorkflowCreated".into(),
        schema_version: 1,
        workspace_id: api.workspace_id,
        occurred_at: chrono::Utc::now().trunc_subsecs_micros(),
        actor: Actor::system("test"),
        correlation_id: None,
        causation_id: None,
        payload: serde_json::json!({"not": "a workflow"}),
        metadata: serde_json::json!({}),
    };
    db.store().append_to_stream(&poison_stream, ExpectedVersion::NoStream, vec![poison.clone()]).await.unwrap();
    api.workflow_life(1).await;
    wait_until_projected(&db.pool, Duration::from_secs(60)).await;

    let dead: Vec<(String, i64, Uuid)> =
        sqlx::query_as("SELECT stream_id, version, event_id FROM projections.dead_letters")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(dead, [(poison_stream.to_string(), 1, poison.event_id)]);
    let status = projections::status::status(&db.pool).await.unwrap();
    assert!(status.projections.iter().all(|p| p.dead_letters == 1));
    let (workflows,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM read_model.workflows").fetch_one(&db.pool).await.unwrap();
    assert_eq!(workflows, 1, "the healthy workflow is projected, the poison one is not");

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("group.id", "dead-letter-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["flowfuse.deadletter"]).unwrap();
    let record = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await.expect("a dead letter").unwrap();
    assert_eq!(record.key(), Some(poison_stream.to_string().as_bytes()));
    assert!(record.headers().unwrap().iter().any(|h| h.key == "flowfuse_error"));
}

trait TruncMicros {
    fn trunc_subsecs_micros(self) -> Self;
}

impl TruncMicros for chrono::DateTime<chrono::Utc> {
    fn trunc_subsecs_micros(self) -> Self {
        chrono::SubsecRound::trunc_subsecs(self, 6)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_projector_killed_mid_burst_leaves_nothing_lost_or_counted_twice() {
    let (db, broker) = (TestDatabase::create().await, Broker::start());
    let api = Api::start(&db.pool).await;
    spawn_relay(&db, &broker);
    let mut projector = Role::start("projector", &db, &broker);

    let burst = api.mixed_commands(15);
    let killer = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while audit_rows(&db).await < 10 {
            assert!(Instant::now() < deadline, "the projector never started applying");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        projector.kill();
        audit_rows(&db).await
    };
    let ((), applied_when_killed) = tokio::join!(burst, killer);
    // More commands while no projector runs.
    api.mixed_commands(5).await;
    let total: (i64,) = sqlx::query_as("SELECT count(*) FROM event_store.events").fetch_one(&db.pool).await.unwrap();
    assert!(applied_when_killed < total.0, "killed mid-burst ({applied_when_killed} of {} applied)", total.0);
    let _restarted = Role::start("projector", &db, &broker);
    wait_until_projected(&db.pool, Duration::from_secs(90)).await;
    assert_read_models_match_store(&db.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leading_relay_loses_nothing() {
    let (db, broker) = (TestDatabase::create().await, Broker::start());
    let api = Api::start(&db.pool).await;
    let mut relays = [Role::start("relay", &db, &broker), Role::start("relay", &db, &broker)];
    spawn_projector(&db, &broker);

    let leader = || async {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'flowfuse relay %'
               AND a.datname = current_database()",
        )
        .fetch_optional(&db.pool)
        .await
        .unwrap();
        row.map(|(name,)| name.trim_start_matches("flowfuse relay ").parse::<u32>().unwrap())
    };
    let burst = api.mixed_commands(20);
    let failover = async {
        let deadline = Instant::now() + Duration::from_secs(30);
        let pid = loop {
            if let Some(pid) = leader().await
                && audit_rows(&db).await > 10
            {
                break pid;
            }
            assert!(Instant::now() < deadline, "no relay led");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let relay = relays.iter_mut().find(|r| r.0.id() == pid).expect("the leader is one of ours");
        relay.kill();
        pid
    };
    let (_, killed) = tokio::join!(burst, failover);
    api.mixed_commands(5).await;
    wait_until_projected(&db.pool, Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match leader().await {
            Some(pid) if pid != killed => break,
            _ => assert!(Instant::now() < deadline, "the standby did not take over"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_read_models_match_store(&db.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_that_restarts_empty_is_republished_to() {
    let (db, mut broker) = (TestDatabase::create().await, Broker::start());
    let api = Api::start(&db.pool).await;
    // As processes under a supervisor: librdkafka 2.12 can crash a client that outlives Tansu
    // restarting empty (docs/kafka.md), and a crash must lose nothing either.
    let mut roles = [Role::start("relay", &db, &broker), Role::start("projector", &db, &broker)];
    api.mixed_commands(4).await;
    wait_until_projected(&db.pool, Duration::from_secs(60)).await;

    // More events, then the broker forgets everything while they are in flight.
    for i in 0..4 {
        api.workflow_life(100 + i).await;
    }
    broker.restart_empty();
    for i in 0..4 {
        api.workflow_life(200 + i).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for role in &mut roles {
            role.revive_if_dead(&db, &broker);
        }
        if projections::status::wait_until_caught_up(&db.pool, Duration::from_secs(2)).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the read models did not catch up after the broker restarted empty");
    }
    assert_read_models_match_store(&db.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_that_is_not_in_this_event_store_is_never_applied() {
    let (db, broker) = (TestDatabase::create().await, Broker::start());
    let api = Api::start(&db.pool).await;
    spawn_relay(&db, &broker);
    spawn_projector(&db, &broker);
    api.workflow_life(1).await;
    wait_until_projected(&db.pool, Duration::from_secs(60)).await;

    // A stray producer writes an event of a stream this store has never seen, at version 3.
    produce_stray_record(&broker, api.workspace_id).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let dead: Vec<(String,)> =
            sqlx::query_as("SELECT error FROM projections.dead_letters").fetch_all(&db.pool).await.unwrap();
        if let Some((error,)) = dead.first() {
            assert!(error.contains("not in this event store"), "{error}");
            break;
        }
        assert!(Instant::now() < deadline, "the stray record was not dead-lettered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_read_models_match_store(&db.pool).await;
}

/// A record the projector must dead-letter if it ever reads it: an event of a stream this store
/// has never seen, at version 3. Produced to partition 0 of `flowfuse.workflow`; returns its offset.
async fn produce_stray_record(broker: &Broker, workspace_id: Uuid) -> i64 {
    let stray = event_schemas::RecordedEvent {
        global_position: 999_999,
        stream_id: StreamId::new(Category::Workflow, Uuid::now_v7()),
        version: 3,
        event_id: Uuid::now_v7(),
        event_type: "WorkflowArchived".into(),
        schema_version: 1,
        workspace_id,
        occurred_at: chrono::Utc::now(),
        actor: Actor::system("stray"),
        correlation_id: None,
        causation_id: None,
        payload: serde_json::json!({}),
        metadata: serde_json::json!({}),
        prev_hash: String::new(),
        hash: String::new(),
    };
    let producer: rdkafka::producer::FutureProducer =
        ClientConfig::new().set("bootstrap.servers", broker.addr()).create().unwrap();
    let key = stray.stream_id.to_string();
    let record = rdkafka::producer::FutureRecord::to("flowfuse.workflow")
        .partition(0)
        .key(&key)
        .payload("{}")
        .headers(projections::cloudevents::headers(&stray));
    producer.send(record, Duration::from_secs(10)).await.unwrap().offset
}

async fn dead_letters(db: &TestDatabase) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM projections.dead_letters").fetch_one(&db.pool).await.unwrap()
}

/// A projector in this process until the returned sender is dropped or fired.
fn start_projector(db: &TestDatabase, broker: &Broker) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let projector = projections::Projector::new(db.pool.clone(), projections::KafkaConfig::new(broker.addr()));
    tokio::spawn(async move {
        projector
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_projector_starts_where_postgresql_says_and_only_under_the_current_broker_epoch() {
    let (db, broker) = (TestDatabase::create().await, Broker::start());
    let api = Api::start(&db.pool).await;
    projections::kafka::ensure_topics(&projections::KafkaConfig::new(broker.addr())).await.unwrap();
    // The stray record comes first on its partition, and PostgreSQL says the group is past it:
    // a projector that started from Kafka's offsets (none for this group) would read it.
    let stray = produce_stray_record(&broker, api.workspace_id).await;
    sqlx::query(
        "INSERT INTO projections.kafka_offsets (consumer_group, topic, partition, next_offset, epoch)
         VALUES ($1, 'flowfuse.workflow', 0, $2, 0)",
    )
    .bind(projections::projector::DEFAULT_GROUP)
    .bind(stray + 1)
    .execute(&db.pool)
    .await
    .unwrap();
    spawn_relay(&db, &broker);
    let projector = start_projector(&db, &broker);
    for i in 0..3 {
        api.workflow_life(i).await;
    }
    wait_until_projected(&db.pool, Duration::from_secs(60)).await;
    assert_eq!(dead_letters(&db).await, 0, "the record before the stored offset was read");
    assert_read_models_match_store(&db.pool).await;

    // A new broker epoch voids every stored offset: the restarted projector starts from the
    // beginning, so it now meets the stray record (and drops the rest as duplicates).
    let _ = projector.send(());
    sqlx::query("UPDATE projections.broker_epoch SET epoch = epoch + 1").execute(&db.pool).await.unwrap();
    let _projector = start_projector(&db, &broker);
    let deadline = Instant::now() + Duration::from_secs(60);
    while dead_letters(&db).await == 0 {
        assert!(Instant::now() < deadline, "offsets of an old epoch were followed: the stray record was never read");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.workflow_life(9).await;
    wait_until_projected(&db.pool, Duration::from_secs(60)).await;
    assert_read_models_match_store(&db.pool).await;
}
