//! Building and running the command API: state, router composition, layers, serving.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use domain::{ApiKey, Workflow, Workspace};
use eventstore::PgEventStore;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::cache::AggregateCache;
use crate::error::{ApiError, ProblemBody};
use crate::extract::{ClientRequestId, MAX_BODY_BYTES, REQUEST_ID};
use crate::{idempotency, observability, openapi, routes};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub store: PgEventStore,
    pub metrics: PrometheusHandle,
    pub(crate) caches: Arc<Caches>,
    openapi: Arc<String>,
}

/// One cache per aggregate type.
pub(crate) struct Caches {
    pub workspaces: AggregateCache<Workspace>,
    pub api_keys: AggregateCache<ApiKey>,
    pub workflows: AggregateCache<Workflow>,
}

impl AppState {
    pub fn new(pool: PgPool) -> Self {
        Self {
            store: PgEventStore::new(pool.clone()),
            pool,
            metrics: observability::prometheus(),
            caches: Arc::new(Caches {
                workspaces: AggregateCache::new(10_000),
                api_keys: AggregateCache::new(10_000),
                workflows: AggregateCache::new(50_000),
            }),
            openapi: Arc::new(String::new()),
        }
    }
}

/// The command API bound to its address, ready to serve.
pub struct CommandApi {
    listener: TcpListener,
    router: Router,
}

impl CommandApi {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(pool: PgPool, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self { listener, router: router(AppState::new(pool)) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        tracing::info!(addr = %self.local_addr(), "command API listening");
        axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await
    }
}

/// The whole HTTP surface: `/v1/…` routes, `/openapi.json`, `/healthz`, `/readyz`, `/metrics`.
pub fn router(mut state: AppState) -> Router {
    let (routes, api) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(routes::router())
        .routes(routes!(openapi_json))
        .routes(routes!(observability::healthz))
        .routes(routes!(observability::readyz))
        .routes(routes!(observability::metrics))
        .split_for_parts();
    state.openapi = Arc::new(openapi::finish(api).to_pretty_json().expect("the OpenAPI document serializes"));
    let security_headers = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    let request_id = HeaderName::from_static(REQUEST_ID);
    routes
        .layer(middleware::from_fn_with_state(state.clone(), idempotency::middleware))
        .layer(middleware::from_fn(observability::track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(remember_client_request_id))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
                    let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
                }))
                .layer(security_headers)
                .layer(middleware::from_fn(stamp_problem_request_id))
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Records whether the client sent its own `X-Request-Id` (a correlation id) before the
/// request-id layer fills one in.
async fn remember_client_request_id(mut request: Request, next: Next) -> Response {
    let client = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned);
    request.extensions_mut().insert(ClientRequestId(client));
    next.run(request).await
}

/// Puts the request id into problem bodies, so that a client can quote it.
async fn stamp_problem_request_id(request: Request, next: Next) -> Response {
    let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let response = next.run(request).await;
    let Some(ProblemBody(problem)) = response.extensions().get::<ProblemBody>().cloned() else {
        return response;
    };
    let mut problem = Arc::unwrap_or_clone(problem);
    problem.request_id = id;
    let (mut parts, _) = response.into_parts();
    parts.extensions.remove::<ProblemBody>();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI 3.1 document")))]
async fn openapi_json(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], state.openapi.as_str().to_owned()).into_response()
}
