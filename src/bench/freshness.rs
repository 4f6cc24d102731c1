//! (c) of `flowfuse bench pipeline`: freshness, from a command accepted over HTTP to its event
//! visible in the read models, at a steady command rate.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Method, header};
use commands::CommandApi;
use commands::bootstrap::create_workspace;
use event_schemas::types::Plan;
use serde_json::json;
use sqlx::{Connection as _, PgPool};

use super::commands::definition;
use super::http::Connection;

/// Which of the positions `$2` of workspace `$1` are in the read models: by the audit log's key
/// (workspace, position), a probe per position, where a filter on the position alone would scan
/// the whole log and load the server it measures.
const SEEN: &str = "SELECT position FROM read_model.audit_log WHERE workspace_id = $1 AND position = ANY($2)";

/// Definition changes a workflow gets after its creation in the freshness load, as in
/// `bench commands`: one create in six commands.
const CHANGES_PER_WORKFLOW: i64 = 5;

/// Steady `rate` commands per second over HTTP with the relay and projector running: workflow
/// creates, and definition changes (with `If-Match`) of workflows no other command is changing;
/// returns p50 and p99 of accepted-to-visible in milliseconds, of the commands sent after
/// `warmup` at that rate (the connection pools fill up meanwhile, and the server's statement
/// caches).
pub(super) async fn measure(
    pool: &PgPool,
    rate: u32,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Freshness> {
    let api = CommandApi::bind(pool.clone(), "127.0.0.1:0".parse()?).await?;
    let api_addr = api.local_addr();
    tokio::spawn(api.run_until_stopped(std::future::pending()));
    let workspace =
        create_workspace(pool, "Freshness", None, Plan::Enterprise).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let base = format!("/v1/workspaces/{}", workspace.workspace_id);
    // Steady state: the projector has applied everything before the first command is sent, and
    // has joined its group (seconds on Tansu): a first command has gone all the way through.
    projections::status::wait_until_caught_up(pool, Duration::from_secs(60)).await?;
    probe(api_addr, &workspace.api_key, &base, pool, workspace.workspace_id).await?;
    // The load generator shares the two cores with what it measures: requests go out on kept
    // HTTP/1.1 connections (`http.rs`), each taken by one request at a time, more opened while
    // every one is busy.
    let idle_connections: Arc<Mutex<Vec<Connection>>> = Arc::default();
    let tracked: Arc<Mutex<Tracked>> = Arc::default();
    // Workflows whose last command has been answered, with their version.
    let idle: Arc<Mutex<VecDeque<(String, i64)>>> = Arc::default();

    // The watcher: when does each accepted position appear in the read models? (Positions reach
    // the read models out of order, across partitions: it asks for each one still missing.) It
    // has a connection of its own, so that it never queues behind the load's requests.
    let mut watch_conn = sqlx::PgConnection::connect_with(&pool.connect_options()).await?;
    let watcher = {
        let tracked = tracked.clone();
        let workspace_id = workspace.workspace_id;
        tokio::spawn(async move {
            loop {
                let pending = tracked.lock().unwrap().unseen();
                let rows: Vec<i64> = sqlx::query_scalar(SEEN)
                    .bind(workspace_id)
                    .bind(&pending)
                    .fetch_all(&mut watch_conn)
                    .await
                    .unwrap_or_default();
                let now = Instant::now();
                tracked.lock().unwrap().saw(rows, now);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let measured_from = Instant::now() + warmup;
    let deadline = measured_from + duration;
    let mut sent = 0usize;
    let mut tasks = Vec::new();
    let base = Arc::new(base);
    while Instant::now() < deadline {
        ticker.tick().await;
        let (base, key, connections) = (base.clone(), workspace.api_key.clone(), idle_connections.clone());
        let (tracked, idle) = (tracked.clone(), idle.clone());
        let counted = Instant::now() >= measured_from;
        sent += usize::from(counted);
        let n = tasks.len();
        let next = idle.lock().unwrap().pop_front();
        tasks.push(tokio::spawn(async move {
            let (method, path, if_match, body) = match &next {
                Some((id, version)) => (
                    Method::PUT,
                    format!("{base}/workflows/{id}/definition"),
                    HeaderValue::from_str(&format!("\"{version}\"")).ok().map(|v| (header::IF_MATCH, v)),
                    json!({"definition": definition(version.unsigned_abs()), "message": format!("step {version}")}),
                ),
                None => (
                    Method::POST,
                    format!("{base}/workflows"),
                    None,
                    json!({"name": format!("Fresh {n}"), "definition": definition(0)}),
                ),
            };
            let taken = connections.lock().unwrap().pop();
            let Some(mut connection) = taken.or_else(|| Connection::new(api_addr, &key).ok()) else { return };
            // A request that never completes must not stall the benchmark: it counts as not accepted.
            let sending = connection.send(method, &path, if_match, body.to_string());
            let Ok(Ok(reply)) = tokio::time::timeout(Duration::from_secs(10), sending).await else { return };
            let at = Instant::now();
            connections.lock().unwrap().push(connection);
            let header = |name: &str| reply.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let Some(position) = header("x-consistency-token").and_then(|v| v.parse::<i64>().ok()) else { return };
            if counted {
                tracked.lock().unwrap().accept(position, at);
            }
            let version = header("etag").and_then(|v| v.trim_matches('"').parse::<i64>().ok());
            let id = match next {
                Some((id, _)) => Some(id),
                None => serde_json::from_slice::<serde_json::Value>(&reply.body)
                    .ok()
                    .and_then(|b| b["id"].as_str().map(str::to_owned)),
            };
            if let (Some(id), Some(version)) = (id, version)
                && version <= CHANGES_PER_WORKFLOW
            {
                idle.lock().unwrap().push_back((id, version));
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let settle = Instant::now() + Duration::from_secs(30);
    while Instant::now() < settle {
        if tracked.lock().unwrap().unseen().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watcher.abort();
    let tracked = tracked.lock().unwrap();
    let mut latencies: Vec<f64> = tracked
        .accepted
        .iter()
        .map(|(position, at)| {
            let seen = tracked.seen.get(position);
            seen.map_or(30_000.0, |visible| visible.saturating_duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pick =
        |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    Ok(Freshness { p50: pick(0.5), p99: pick(0.99), sent, accepted: latencies.len() })
}

/// Creates a workflow and waits until it is in the read models: the relay and the projector are
/// at work.
async fn probe(
    api: std::net::SocketAddr,
    key: &str,
    base: &str,
    pool: &PgPool,
    workspace_id: uuid::Uuid,
) -> anyhow::Result<()> {
    let body = json!({"name": "Probe", "definition": definition(0)}).to_string();
    let reply = Connection::new(api, key)?.send(Method::POST, &format!("{base}/workflows"), None, body).await?;
    let position: i64 =
        reply.headers.get("x-consistency-token").and_then(|v| v.to_str().ok()?.parse().ok()).ok_or_else(|| {
            anyhow::anyhow!("the probe command was refused: {} {}", reply.status, String::from_utf8_lossy(&reply.body))
        })?;
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until {
        let seen: Vec<i64> = sqlx::query_scalar(SEEN).bind(workspace_id).bind(vec![position]).fetch_all(pool).await?;
        if !seen.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("the probe command did not reach the read models within 60 s")
}

/// When each accepted position was answered, and when it was seen in the read models. One lock
/// for all of it: two locks taken in different orders once deadlocked the watcher and the settle
/// loop.
#[derive(Default)]
struct Tracked {
    accepted: HashMap<i64, Instant>,
    seen: HashMap<i64, Instant>,
    /// Accepted and not seen yet, kept as they come and go: the watcher asks for them every 2 ms,
    /// and filtering every accepted position each time cost the load generator more the longer it
    /// ran.
    unseen: HashSet<i64>,
}

impl Tracked {
    fn accept(&mut self, position: i64, at: Instant) {
        self.accepted.insert(position, at);
        self.unseen.insert(position);
    }

    /// Accepted positions not seen yet.
    fn unseen(&self) -> Vec<i64> {
        self.unseen.iter().copied().collect()
    }

    fn saw(&mut self, positions: Vec<i64>, at: Instant) {
        for position in positions {
            self.unseen.remove(&position);
            self.seen.entry(position).or_insert(at);
        }
    }
}

pub(super) struct Freshness {
    pub p50: f64,
    pub p99: f64,
    pub sent: usize,
    pub accepted: usize,
}
