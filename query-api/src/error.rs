//! The query API's one error type. Every error reaches the client as a GraphQL error with a
//! stable `extensions.code`; database and unexpected errors are logged with their cause and shown
//! only as `INTERNAL`.
//!
//! `QueryError` deliberately does not implement `Display`: async-graphql converts anything that
//! does into an error without extensions, so `?` would silently drop the code (and could show a
//! database message). Without it, `?` goes through the one conversion below.

use std::sync::Arc;

use async_graphql::ErrorExtensions;

#[derive(Debug)]
pub enum QueryError {
    Unauthenticated,
    Forbidden(&'static str),
    BadInput(String),
    NoSuchVersion { requested: i64, latest: i64 },
    ConsistencyTimeout { position: i64, waited_ms: u128 },
    Internal(anyhow::Error),
}

impl QueryError {
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        QueryError::Internal(error.into())
    }

    /// What the client is told.
    pub fn message(&self) -> String {
        match self {
            QueryError::Unauthenticated => "missing or invalid API key".into(),
            QueryError::Forbidden(permission) => format!("this API key lacks the permission {permission}"),
            QueryError::BadInput(message) => message.clone(),
            QueryError::NoSuchVersion { requested, latest } => {
                format!("version {requested} does not exist (the latest is {latest})")
            }
            QueryError::ConsistencyTimeout { position, waited_ms } => {
                format!("the read models did not reach position {position} within {waited_ms} ms; retry later")
            }
            QueryError::Internal(_) => "internal error".into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            QueryError::Unauthenticated => "UNAUTHENTICATED",
            QueryError::Forbidden(_) => "FORBIDDEN",
            QueryError::BadInput(_) => "BAD_USER_INPUT",
            QueryError::NoSuchVersion { .. } => "NO_SUCH_VERSION",
            QueryError::ConsistencyTimeout { .. } => "CONSISTENCY_TIMEOUT",
            QueryError::Internal(_) => "INTERNAL",
        }
    }
}

impl From<sqlx::Error> for QueryError {
    fn from(error: sqlx::Error) -> Self {
        QueryError::internal(error)
    }
}

impl From<eventstore::StoreError> for QueryError {
    fn from(error: eventstore::StoreError) -> Self {
        QueryError::internal(error)
    }
}

impl From<QueryError> for async_graphql::Error {
    fn from(error: QueryError) -> Self {
        if let QueryError::Internal(cause) = &error {
            tracing::error!(error = ?cause, "query failed");
        }
        async_graphql::Error::new(error.message()).extend_with(|_, extensions| {
            extensions.set("code", error.code());
            if let QueryError::NoSuchVersion { latest, .. } = error {
                extensions.set("latest", latest);
            }
        })
    }
}

/// A failed batch load, shared by every field waiting on it (loaders need a cloneable error).
#[derive(Debug, Clone)]
pub struct LoadError(pub Arc<QueryError>);

impl From<LoadError> for async_graphql::Error {
    fn from(error: LoadError) -> Self {
        match &*error.0 {
            QueryError::Internal(cause) => {
                tracing::error!(error = ?cause, "batch load failed");
                async_graphql::Error::new("internal error").extend_with(|_, e| e.set("code", "INTERNAL"))
            }
            other => async_graphql::Error::new(other.message()).extend_with(|_, e| e.set("code", other.code())),
        }
    }
}

/// What resolvers return.
pub type QueryResult<T> = Result<T, async_graphql::Error>;
