//! A running command API with a bootstrapped workspace, and a client for it.

use std::io::Write;
use std::sync::{Mutex, Once};

use commands::CommandApi;
use commands::bootstrap::create_workspace;
use event_schemas::RecordedEvent;
use event_schemas::types::Plan;
use eventstore::testing::TestDatabase;
use eventstore::{EventStore, StreamRead};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use uuid::Uuid;

/// Everything the server logged in this test process.
pub static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        tracing_subscriber::fmt().json().with_env_filter("debug").with_writer(|| LogWriter).init();
    });
}

pub struct TestApp {
    pub db: TestDatabase,
    pub base: String,
    pub client: reqwest::Client,
    pub workspace_id: Uuid,
    pub admin_key: String,
}

pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The version of `ETag: "<n>"`.
    pub fn etag(&self) -> i64 {
        let etag = self.header("etag").expect("an ETag");
        etag.trim_matches('"').parse().expect("a numeric ETag")
    }

    pub fn id(&self) -> Uuid {
        self.body["id"].as_str().and_then(|id| id.parse().ok()).expect("a body with an id")
    }

    /// Asserts an RFC 9457 problem with this status and code.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.body);
        assert_eq!(self.body["code"], code, "{}", self.body);
        assert_eq!(self.body["status"], status);
        for field in ["type", "title", "detail", "request_id"] {
            assert!(self.body[field].is_string(), "problem without {field}: {}", self.body);
        }
    }

    /// The `field`s of a validation problem.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| errors.iter().map(|e| e["field"].as_str().unwrap_or_default().to_owned()).collect())
            .unwrap_or_default()
    }
}

/// A minimal valid definition: a trigger and `actions` actions in a chain.
pub fn definition(actions: usize) -> Value {
    let mut nodes = vec![json!({"id": "start", "type": "trigger", "name": "Start", "position": {"x": 0, "y": 0}})];
    let mut edges = Vec::new();
    for i in 0..actions {
        nodes.push(json!({"id": format!("a{i}"), "type": "action", "name": format!("Step {i}"),
            "position": {"x": 100 * (i + 1), "y": 0}, "config": {"retries": i}}));
        let source = if i == 0 { "start".to_owned() } else { format!("a{}", i - 1) };
        edges.push(json!({"id": format!("e{i}"), "source": source, "target": format!("a{i}")}));
    }
    json!({"nodes": nodes, "edges": edges})
}

impl TestApp {
    pub async fn spawn() -> Self {
        capture_logs();
        let db = TestDatabase::create().await;
        let api = CommandApi::bind(db.pool.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{}", api.local_addr());
        tokio::spawn(api.run_until_stopped(std::future::pending()));
        let created = create_workspace(&db.pool, "Acme", None, Plan::Pro).await.unwrap();
        Self {
            db,
            base,
            client: reqwest::Client::new(),
            workspace_id: created.workspace_id,
            admin_key: created.api_key,
        }
    }

    /// `/v1/workspaces/<this workspace><rest>`.
    pub fn path(&self, rest: &str) -> String {
        format!("/v1/workspaces/{}{rest}", self.workspace_id)
    }

    /// Sends a request; `path` is absolute (starts with `/`).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Response { status, headers, body }
    }

    /// As the admin, to this workspace.
    pub async fn admin(&self, method: &str, rest: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Response {
        self.send(method, &self.path(rest), Some(&self.admin_key.clone()), body, headers).await
    }

    /// Issues a key with `role` (as the admin) and returns (key, key id).
    pub async fn issue_key(&self, role: &str) -> (String, Uuid) {
        let response =
            self.admin("POST", "/api-keys", Some(json!({"name": format!("{role} key"), "role": role})), &[]).await;
        assert_eq!(response.status, 201, "{}", response.body);
        (response.body["key"].as_str().unwrap().to_owned(), response.id())
    }

    pub async fn create_workflow(&self, name: &str) -> Response {
        let body = json!({"name": name, "description": "Moves data", "tags": ["etl"], "definition": definition(1)});
        let response = self.admin("POST", "/workflows", Some(body), &[]).await;
        assert_eq!(response.status, 201, "{}", response.body);
        response
    }

    /// Sends the creates of workflows `Flow 0` … `Flow {count - 1}` to `workspace` all at once;
    /// returns their statuses.
    pub async fn create_concurrently(&self, workspace: Uuid, key: &str, count: usize) -> Vec<u16> {
        let path = format!("/v1/workspaces/{workspace}/workflows");
        let create = |n: usize| json!({"name": format!("Flow {n}"), "definition": definition(0)});
        let attempts = (0..count).map(|n| self.send("POST", &path, Some(key), Some(create(n)), &[]));
        futures::future::join_all(attempts).await.iter().map(|r| r.status).collect()
    }

    /// Another workspace and its admin key.
    pub async fn other_workspace(&self) -> (Uuid, String) {
        let created = create_workspace(&self.db.pool, "Other Corp", None, Plan::Free).await.unwrap();
        (created.workspace_id, created.api_key)
    }

    /// A count or counter of the security index: `sql` selects one `bigint` for the workspace `$1`.
    pub async fn index_number(&self, sql: &str, workspace_id: Uuid) -> i64 {
        let (number,): (i64,) = sqlx::query_as(sql).bind(workspace_id).fetch_one(&self.db.pool).await.unwrap();
        number
    }

    pub async fn events(&self, stream: &str) -> Vec<RecordedEvent> {
        self.db.store().read_stream(&stream.parse().unwrap(), StreamRead::all()).await.unwrap()
    }
}
