//! The whole system in this process over one fresh database and a broker of its own: command
//! API (with a workspace and its admin key, from the pipeline tests' [`Api`]), relay, projector
//! and query API.

use std::time::Duration;

use commands::bootstrap::create_workspace;
use event_schemas::types::Plan;
use eventstore::testing::TestDatabase;
use query_api::{QueryApi, QueryApiConfig};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::pipeline::broker::Broker;
use crate::pipeline::{Api, spawn_projector, spawn_relay, wait_until_projected};

pub struct Stack {
    pub broker: Broker,
    pub db: TestDatabase,
    pub api: Api,
    /// The command API's base URL.
    pub commands: String,
    pub graphql: String,
    pub client: reqwest::Client,
    pub workspace_id: Uuid,
    pub key: String,
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(QueryApiConfig::default()).await
    }

    pub async fn start_with(config: QueryApiConfig) -> Self {
        let stack = Self::start_without_projector(config).await;
        stack.start_projector();
        stack
    }

    /// Everything but the projector: the read models stay as they are until [`Self::start_projector`].
    pub async fn start_without_projector(config: QueryApiConfig) -> Self {
        let (db, broker) = (TestDatabase::create().await, Broker::start());
        spawn_relay(&db, &broker);
        let api = Api::start(&db.pool).await;
        let graphql = start_query_api(&db, config).await;
        Self {
            broker,
            db,
            commands: api.base.clone(),
            graphql,
            client: reqwest::Client::new(),
            workspace_id: api.workspace_id,
            key: api.key.clone(),
            api,
        }
    }

    /// Sends later queries to a query API started now, which holds nothing in memory yet, as
    /// after a restart (the first one keeps running).
    pub async fn restart_query_api(&mut self) {
        self.graphql = start_query_api(&self.db, QueryApiConfig::default()).await;
    }

    pub fn start_projector(&self) {
        spawn_projector(&self.db, &self.broker);
    }

    /// Another workspace in the same deployment, with its own admin key.
    pub async fn other_workspace(&self) -> (Uuid, String) {
        let slug = format!("ws-{}", &Uuid::new_v4().simple().to_string()[..16]);
        let created = create_workspace(&self.db.pool, "Other", Some(&slug), Plan::Pro).await.unwrap();
        (created.workspace_id, created.api_key)
    }

    /// A command over HTTP as the admin key; returns (status, body).
    pub async fn send(&self, method: &str, rest: &str, body: Option<Value>, if_match: Option<i64>) -> (u16, Value) {
        self.api.send(method, rest, body, if_match).await
    }

    /// Creates a workflow; returns its id.
    pub async fn create_workflow(&self, name: &str, tags: &[&str], description: Option<&str>) -> String {
        let body = json!({"name": name, "tags": tags, "description": description, "definition": definition(1)});
        let (status, created) = self.send("POST", "/workflows", Some(body), None).await;
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().unwrap().to_owned()
    }

    /// Waits until the read models reflect every event in the store.
    pub async fn project(&self) {
        wait_until_projected(&self.db.pool, Duration::from_secs(60)).await;
    }

    /// A GraphQL POST as `key`, with `application/json`; returns (status, body).
    pub async fn query_as(&self, key: &str, query: &str, variables: Value) -> (u16, Value) {
        let response = self
            .client
            .post(&self.graphql)
            .bearer_auth(key)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// A GraphQL query as the admin key that must succeed; returns `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.query_as(&self.key, query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
        body["data"].clone()
    }
}

/// A query API over `db`, serving until the test ends; returns its GraphQL URL.
async fn start_query_api(db: &TestDatabase, config: QueryApiConfig) -> String {
    let query =
        QueryApi::bind(db.pool.clone(), "127.0.0.1:0".parse().unwrap(), config, commands::prometheus()).await.unwrap();
    let graphql = format!("http://{}/graphql", query.local_addr());
    tokio::spawn(query.run_until_stopped(std::future::pending()));
    graphql
}

pub use crate::pipeline::definition;

/// A definition as the system stores and serves it (numbers as their schema types make them).
pub fn stored(definition: Value) -> Value {
    let typed: event_schemas::types::WorkflowDefinition = serde_json::from_value(definition).unwrap();
    serde_json::to_value(typed).unwrap()
}

/// The first error's `extensions.code`.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body}"))
}
