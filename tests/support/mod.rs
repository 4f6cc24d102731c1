//! Shared by the end-to-end tests: a Kafka-protocol broker of their own, the command API, and
//! the check that the read models are exactly what the event store implies.

#![allow(dead_code)]

pub mod broker;
pub mod fold;

use std::time::Duration;

use commands::CommandApi;
use commands::bootstrap::create_workspace;
use event_schemas::types::Plan;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

/// The command API in this process, with a workspace and its admin key.
pub struct Api {
    pub pool: PgPool,
    pub base: String,
    pub client: reqwest::Client,
    pub workspace_id: Uuid,
    pub key: String,
}

impl Api {
    pub async fn start(pool: &PgPool) -> Self {
        let api = CommandApi::bind(pool.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{}", api.local_addr());
        tokio::spawn(api.run_until_stopped(std::future::pending()));
        let slug = format!("ws-{}", Uuid::new_v4().simple());
        let created = create_workspace(pool, "Pipeline", Some(&slug[..20]), Plan::Enterprise).await.unwrap();
        Self {
            pool: pool.clone(),
            base,
            client: reqwest::Client::new(),
            workspace_id: created.workspace_id,
            key: created.api_key,
        }
    }

    /// Sends a command; returns (status, body).
    pub async fn send(&self, method: &str, rest: &str, body: Option<Value>, if_match: Option<i64>) -> (u16, Value) {
        let url = format!("{}/v1/workspaces/{}{rest}", self.base, self.workspace_id);
        let mut request =
            self.client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(version) = if_match {
            request = request.header("If-Match", format!("\"{version}\""));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// A mixed run of commands over every aggregate; `n` workflows, each edited a few times.
    pub async fn mixed_commands(&self, n: usize) {
        let (version,): (i64,) = sqlx::query_as("SELECT version FROM event_store.streams WHERE stream_id = $1")
            .bind(format!("workspace-{}", self.workspace_id))
            .fetch_one(&self.pool)
            .await
            .unwrap();
        let name = format!("Pipeline {}", Uuid::new_v4().simple());
        let (status, body) = self.send("PATCH", "", Some(json!({"name": &name[..20]})), Some(version)).await;
        assert_eq!(status, 200, "{body}");
        let (_, member) = self
            .send(
                "POST",
                "/members",
                Some(json!({"email": format!("{}@example.com", Uuid::new_v4().simple()), "role": "developer"})),
                None,
            )
            .await;
        let user = member["id"].as_str().unwrap().to_owned();
        let (_, team) = self
            .send(
                "POST",
                "/teams",
                Some(json!({"name": format!("Team {}", &Uuid::new_v4().simple().to_string()[..8])})),
                None,
            )
            .await;
        let team = team["id"].as_str().unwrap().to_owned();
        self.send("POST", &format!("/teams/{team}/members"), Some(json!({"user_id": user})), None).await;
        self.send("PATCH", &format!("/members/{user}"), Some(json!({"role": "operator"})), None).await;
        let (_, key) = self.send("POST", "/api-keys", Some(json!({"name": "ci", "role": "viewer"})), None).await;
        let key = key["id"].as_str().unwrap().to_owned();
        self.send("POST", &format!("/api-keys/{key}/rotate"), None, None).await;
        self.send("DELETE", &format!("/api-keys/{key}"), None, None).await;
        let workflows = (0..n).map(|i| self.workflow_life(i));
        futures::future::join_all(workflows).await;
        self.send("DELETE", &format!("/members/{user}"), None, None).await;
    }

    /// One workflow through create, edits, publish, promote, archive/restore or rollback.
    pub async fn workflow_life(&self, i: usize) {
        let name = format!("Flow {i} {}", &Uuid::new_v4().simple().to_string()[..8]);
        let (status, created) = self
            .send("POST", "/workflows", Some(json!({"name": name, "tags": ["t"], "definition": definition(1)})), None)
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let path = |rest: &str| format!("/workflows/{id}{rest}");
        let steps: Vec<(&str, String, Option<Value>)> = vec![
            ("PUT", path("/definition"), Some(json!({"definition": definition(2), "message": "two"}))),
            ("POST", path("/publish"), None),
            ("POST", path("/promote"), Some(json!({"environment": "prod"}))),
            ("PATCH", path(""), Some(json!({"description": format!("flow {i}"), "tags": ["t", "x"]}))),
            if i.is_multiple_of(2) {
                ("POST", path("/rollback"), Some(json!({"to_version": 1})))
            } else {
                ("POST", path("/archive"), None)
            },
        ];
        for (version, (method, path, body)) in (1..).zip(steps) {
            let (status, body) = self.send(method, &path, body, Some(version)).await;
            assert_eq!(status, 200, "{method} {path}: {body}");
        }
    }
}

pub fn definition(actions: usize) -> Value {
    let mut nodes = vec![json!({"id": "start", "type": "trigger", "name": "Start", "position": {"x": 0, "y": 0}})];
    let mut edges = Vec::new();
    for i in 0..actions {
        nodes.push(json!({"id": format!("a{i}"), "type": "action", "name": format!("Step {i}"), "position": {"x": 100 * (i + 1), "y": 0.5}}));
        let source = if i == 0 { "start".to_owned() } else { format!("a{}", i - 1) };
        edges.push(json!({"id": format!("e{i}"), "source": source, "target": format!("a{i}")}));
    }
    json!({"nodes": nodes, "edges": edges})
}

/// The relay, in this process, until the test ends.
pub fn spawn_relay(db: &eventstore::testing::TestDatabase, broker: &broker::Broker) {
    let relay = projections::Relay::new(db.url(), projections::KafkaConfig::new(broker.addr()));
    tokio::spawn(async move { relay.run(std::future::pending()).await });
}

/// The projector, in this process, until the test ends.
pub fn spawn_projector(db: &eventstore::testing::TestDatabase, broker: &broker::Broker) {
    let projector = projections::Projector::new(db.pool.clone(), projections::KafkaConfig::new(broker.addr()));
    tokio::spawn(async move { projector.run(std::future::pending()).await });
}

/// Waits until every event of the log is applied (status lag 0 everywhere), or fails the test.
pub async fn wait_until_projected(pool: &PgPool, timeout: Duration) {
    projections::status::wait_until_caught_up(pool, timeout).await.unwrap();
}

/// Waits until the relay has every event of the log acknowledged by the broker (its topics exist
/// by then), or fails the test.
pub async fn wait_until_relayed(pool: &PgPool, timeout: Duration) {
    let relayed = |s: &projections::status::Status| s.relay_position >= s.log_head;
    projections::status::wait_for(pool, timeout, "the relay to relay the log", relayed).await.unwrap();
}
