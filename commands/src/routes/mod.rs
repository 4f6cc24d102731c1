//! The routes under `/v1/workspaces/{workspace_id}`, one module per resource. Each module owns
//! its `router()`; `app` composes them.

mod api_keys;
mod members;
mod workflows;
mod workspace;

use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(workspace::router())
        .merge(members::router())
        .merge(api_keys::router())
        .merge(workflows::router())
}

/// `"/v1/workspaces/{workspace_id}"` followed by `rest`.
fn location(workspace_id: uuid::Uuid, rest: &str) -> String {
    format!("/v1/workspaces/{workspace_id}{rest}")
}

/// Deserializes a field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}
