//! `flowfuse bench commands`: the whole HTTP command path (authentication, validation, loading
//! the aggregate, deciding, appending with the security index) against raw single-row INSERT
//! transactions, from the same number of clients, in the same run.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderValue, Method, StatusCode, header};
use clap::Args;
use commands::CommandApi;
use commands::bootstrap::create_workspace;
use event_schemas::types::Plan;
use event_schemas::workflow::WorkflowDefinitionChanged;
use event_schemas::{Actor, Event, NewEvent, WorkflowEvent};
use serde_json::{Value, json};
use uuid::Uuid;

use super::LoadArgs;
use super::append::{RawInsert, fresh_database, print_ratio, print_row};
use super::http::Connection;
use super::stats::{Workload, alternating};

#[derive(Debug, Args)]
pub struct CommandsArgs {
    #[command(flatten)]
    load: LoadArgs,
}

/// One HTTP client: creates a workflow, then changes its definition with `If-Match`, and again.
/// Bodies are serialized once, up front: the load generator shares the two cores with the
/// server, and what it spends is not what is measured.
struct HttpClient {
    connection: Connection,
    /// `/v1/workspaces/{id}`.
    base: String,
    bodies: Arc<Bodies>,
    /// The workflow being changed, with its version; `None` means create one next.
    current: Option<(String, i64)>,
    created: u64,
}

/// The request bodies: a create's (its name is appended per request) and one per definition.
struct Bodies {
    /// `{"description": …, "tags": […], "definition": {…}, "name": "` without the name's end.
    create_prefix: String,
    /// Definition changes, chosen by the workflow's version.
    changes: Vec<Bytes>,
}

impl Bodies {
    fn new() -> Self {
        let create = json!({"description": "benchmark", "tags": ["bench"], "definition": definition(2)}).to_string();
        let create_prefix = format!("{},\"name\":\"", create.strip_suffix('}').expect("an object"));
        let changes = (0..5)
            .map(|n| Bytes::from(json!({"definition": definition(2 + n), "message": "tune"}).to_string()))
            .collect();
        Self { create_prefix, changes }
    }
}

/// What a command answers that the client needs next.
#[derive(serde::Deserialize)]
struct Answer {
    id: String,
    version: i64,
}

pub(super) fn definition(steps: u64) -> Value {
    let mut nodes = vec![json!({"id": "start", "type": "trigger", "name": "Start", "position": {"x": 0, "y": 0}})];
    let mut edges = Vec::new();
    for i in 0..steps {
        nodes.push(json!({"id": format!("s{i}"), "type": "action", "name": format!("Step {i}"), "position": {"x": 100 * (i + 1), "y": 0}}));
        let source = if i == 0 { "start".to_owned() } else { format!("s{}", i - 1) };
        edges.push(json!({"id": format!("e{i}"), "source": source, "target": format!("s{i}")}));
    }
    json!({"nodes": nodes, "edges": edges})
}

/// The event a definition change over HTTP appends, as the raw baseline's row: the same payload,
/// actor and ids, so that both sides write rows of the same size. Its five events are made once,
/// as the HTTP side's bodies are.
fn command_event(workspace_id: Uuid, n: usize) -> NewEvent {
    static EVENTS: OnceLock<Vec<Event>> = OnceLock::new();
    let events = EVENTS.get_or_init(|| {
        (0..5)
            .map(|n| {
                let definition = serde_json::from_value(definition(2 + n)).expect("a valid definition");
                Event::from(WorkflowEvent::from(WorkflowDefinitionChanged { definition, message: "tune".into() }))
            })
            .collect()
    });
    let event = &events[n % 5];
    NewEvent::now(workspace_id, Actor::api_key(Uuid::now_v7()), event)
        .with_correlation(Some(Uuid::now_v7().to_string()), Some(Uuid::now_v7().to_string()))
}

impl Workload for HttpClient {
    async fn once(&mut self) -> anyhow::Result<u64> {
        let (answer, expected) = match &self.current {
            None => {
                self.created += 1;
                let body =
                    format!("{}Bench {} {}\"}}", self.bodies.create_prefix, Uuid::now_v7().simple(), self.created);
                let path = format!("{}/workflows", self.base);
                let answer = self.connection.send(Method::POST, &path, None, body).await?;
                (answer, StatusCode::CREATED)
            }
            Some((id, version)) => {
                let body = self.bodies.changes[*version as usize % 5].clone();
                let path = format!("{}/workflows/{id}/definition", self.base);
                let if_match = (header::IF_MATCH, HeaderValue::from_str(&format!("\"{version}\""))?);
                let answer = self.connection.send(Method::PUT, &path, Some(if_match), body).await?;
                (answer, StatusCode::OK)
            }
        };
        anyhow::ensure!(
            answer.status == expected,
            "unexpected {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        let Answer { id, version } = serde_json::from_slice(&answer.body)?;
        // Five changes per workflow, then a new one.
        self.current = (version < 6).then_some((id, version));
        Ok(1)
    }
}

pub async fn run(database_url: &str, args: CommandsArgs) -> anyhow::Result<()> {
    let clients = args.load.clients as usize;
    let pool = fresh_database(database_url, args.load.clients + 16).await?;
    let api = CommandApi::bind(pool.clone(), "127.0.0.1:0".parse()?).await?;
    let addr = api.local_addr();
    tokio::spawn(api.run_until_stopped(std::future::pending()));
    let workspace =
        create_workspace(&pool, "Bench", None, Plan::Enterprise).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let base = format!("/v1/workspaces/{}", workspace.workspace_id);
    println!(
        "FlowFuse HTTP command benchmark: {clients} clients, {}s per case after {}s warm-up (create, then 5 definition changes with If-Match, per workflow)",
        args.load.seconds, args.load.warmup_seconds
    );
    let (warmup, duration) = (Duration::from_secs(args.load.warmup_seconds), Duration::from_secs(args.load.seconds));
    let bodies = Arc::new(Bodies::new());
    let http_clients = || -> Vec<HttpClient> {
        (0..clients)
            .map(|_| HttpClient {
                connection: Connection::new(addr, &workspace.api_key)
                    .expect("the address and the key make valid headers"),
                base: base.clone(),
                bodies: bodies.clone(),
                current: None,
                created: 0,
            })
            .collect()
    };
    let raw_clients = || RawInsert::clients_writing(&pool, clients, 1, command_event);
    let (raw, http) = alternating(warmup, duration, raw_clients, http_clients).await?;
    print_row("(a) raw INSERT, 1 row per transaction", &raw, "events/s");
    print_row("(e) HTTP commands, 1 event per command", &http, "events/s");
    print_ratio("e/a", &http, &raw, 0.5);
    Ok(())
}
