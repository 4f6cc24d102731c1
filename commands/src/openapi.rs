//! The OpenAPI 3.1 document (`GET /openapi.json`), generated from the routes themselves: every
//! handler is registered through `utoipa_axum::routes!`, so a route cannot be served without
//! being documented. The error responses all routes share are added here, once.

use serde::Serialize;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use uuid::Uuid;

use crate::error::{Problem, ProblemField};

/// The body of most successful commands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommandResult {
    pub id: Uuid,
    /// The stream version after the command: send it back as `If-Match: "<version>"`.
    pub version: i64,
    /// Global position of the last appended event (also in `X-Consistency-Token`).
    pub position: i64,
}

/// A freshly issued or rotated API key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedKey {
    pub id: Uuid,
    /// `ffk_<prefix>_<secret>`: shown once. An idempotent replay of this response has `null` here.
    pub key: Option<String>,
    pub prefix: String,
    pub version: i64,
    pub position: i64,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "FlowFuse command API",
        description = "The write side of FlowFuse. Every change is an event appended to the event store. \
            Errors are RFC 9457 problem documents.",
    ),
    components(schemas(Problem, ProblemField, CommandResult, IssuedKey))
)]
pub struct ApiDoc;

/// Errors any `/v1` route may answer, with when.
const ERRORS: [(&str, &str); 11] = [
    ("400", "Malformed JSON"),
    ("401", "No API key, or an unknown, expired or revoked one"),
    ("403", "The key lacks the permission, or asks to grant more than it holds"),
    ("404", "No such resource in the caller's workspace"),
    ("409", "Conflicts with the current state (a taken name, a lifecycle rule, a request in flight)"),
    ("412", "If-Match names a version that is no longer current"),
    ("413", "Body over 1 MiB"),
    ("415", "Content-Type is not application/json"),
    ("422", "Field validation failed, or an Idempotency-Key was reused with another request"),
    ("428", "If-Match is required"),
    ("500", "Internal error (no details are sent)"),
];

/// Adds the bearer security scheme and the shared problem responses to every `/v1` operation.
pub fn finish(mut api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("ffk_<prefix>_<secret>").build();
    api.components.get_or_insert_with(Default::default).add_security_scheme("bearer", SecurityScheme::Http(scheme));
    for (path, item) in api.paths.paths.iter_mut() {
        if !path.starts_with("/v1/") {
            continue;
        }
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            operation.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
            for (status, description) in ERRORS {
                let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
                let response =
                    ResponseBuilder::new().description(description).content("application/problem+json", content);
                operation.responses.responses.entry(status.to_owned()).or_insert(RefOr::T(response.build()));
            }
        }
    }
    api
}
