//! The query API service: the router, binding, serving until stopped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::documents::DocumentCache;
use crate::http;
use crate::schema::{self, FlowFuseSchema, Limits};
use crate::snapshot_cache::SnapshotCache;

/// How the query API behaves.
#[derive(Debug, Clone)]
pub struct QueryApiConfig {
    pub limits: Limits,
    /// How long a query with `X-Consistency-Token` waits for the read models at most.
    pub consistency_timeout: Duration,
    /// Where GraphiQL's scripts are loaded from (see [`crate::graphiql`]).
    pub graphiql_assets: String,
}

impl Default for QueryApiConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            consistency_timeout: Duration::from_secs(5),
            graphiql_assets: crate::graphiql::DEFAULT_ASSETS.to_owned(),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub schema: FlowFuseSchema,
    /// For documents already validated in full (see [`crate::documents`]).
    pub prevalidated_schema: FlowFuseSchema,
    pub consistency_timeout: Duration,
    /// Shared, not copied: axum clones the state for every request.
    pub graphiql_assets: Arc<str>,
    pub metrics: PrometheusHandle,
    pub documents: Arc<DocumentCache>,
}

/// A bound query API, ready to serve.
pub struct QueryApi {
    listener: TcpListener,
    router: Router,
}

impl QueryApi {
    /// Binds `addr`. `metrics` renders `/metrics`: the process's Prometheus recorder, shared with
    /// the other roles running in the same process.
    pub async fn bind(
        pool: PgPool,
        addr: SocketAddr,
        config: QueryApiConfig,
        metrics: PrometheusHandle,
    ) -> std::io::Result<Self> {
        let snapshots = Arc::new(SnapshotCache::default());
        let state = AppState {
            schema: schema::build(pool.clone(), config.limits, snapshots.clone()),
            prevalidated_schema: schema::build_prevalidated(pool.clone(), config.limits, snapshots),
            pool,
            consistency_timeout: config.consistency_timeout,
            graphiql_assets: config.graphiql_assets.into(),
            metrics,
            documents: Arc::default(),
        };
        let listener = TcpListener::bind(addr).await?;
        Ok(Self { listener, router: router(state) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr(), "query API listening");
        axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await
    }
}

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .route("/graphql", get(http::get).post(http::post))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))).into_response()
}

/// Ready when the read models and the event store answer.
async fn readyz(State(state): State<AppState>) -> Response {
    let check =
        sqlx::query("SELECT 1 FROM read_model.workspaces, event_store.streams LIMIT 1").execute(&state.pool).await;
    match check {
        Ok(_) => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ready"}))).into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "not ready: the database does not answer");
            let body = serde_json::json!({"status": "unavailable", "reason": "the database does not answer"});
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}
