//! The GraphQL schema: one root made of one query object per area, each in its own file.
//!
//! - `workspace`: the workspace, members, teams and API keys;
//! - `workflows`: the workflow list and each workflow's versions, time travel and diff;
//! - `stored_fields`: objects whose stored fields are resolved in one step (list pages);
//! - `history`: the types of versions, past states and diffs;
//! - `audit`: the audit trail; `stream`: raw streams and their hash-chain check;
//! - `loaders`: batched lookups behind every nested field; `page`: Relay connections;
//! - `variable_types`: whether variable values have their declared types (validation remembered).

mod audit;
mod history;
pub mod loaders;
mod page;
mod stored_fields;
mod stream;
pub mod variable_types;
mod workflow_cursor;
mod workflows;
mod workspace;

use std::sync::Arc;

use async_graphql::{EmptyMutation, EmptySubscription, MergedObject, Schema, SchemaBuilder, ValidationMode};
use eventstore::PgEventStore;
use sqlx::PgPool;

use crate::snapshot_cache::SnapshotCache;

#[derive(MergedObject, Default)]
pub struct QueryRoot(workspace::WorkspaceQuery, workflows::WorkflowQuery, audit::AuditQuery, stream::StreamQuery);

pub type FlowFuseSchema = Schema<QueryRoot, EmptyMutation, EmptySubscription>;

/// Limits on what one query may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_depth: 12, max_complexity: 5_000, introspection: true }
    }
}

/// The schema; `snapshots` is shared with [`build_prevalidated`]'s, so that both keep one memory.
pub fn build(pool: PgPool, limits: Limits, snapshots: Arc<SnapshotCache>) -> FlowFuseSchema {
    builder(pool, limits, snapshots).finish()
}

/// The same schema with async-graphql's fast validation (the depth and complexity limits, not the
/// rest), only for documents that passed the full validation before, with variable values that
/// pass it too (`crate::documents`, [`variable_types`]).
pub fn build_prevalidated(pool: PgPool, limits: Limits, snapshots: Arc<SnapshotCache>) -> FlowFuseSchema {
    builder(pool, limits, snapshots).validation_mode(ValidationMode::Fast).finish()
}

fn builder(
    pool: PgPool,
    limits: Limits,
    snapshots: Arc<SnapshotCache>,
) -> SchemaBuilder<QueryRoot, EmptyMutation, EmptySubscription> {
    // `JSON` is one scalar with two Rust types: `serde_json::Value` and, for definitions folded
    // from the event store, `Json<WorkflowDefinition>` (written without a `Value` in between).
    let builder =
        Schema::build_with_ignore_name_conflicts(QueryRoot::default(), EmptyMutation, EmptySubscription, ["JSON"])
            .data(PgEventStore::new(pool))
            .data(snapshots)
            .limit_depth(limits.max_depth)
            .limit_complexity(limits.max_complexity);
    if limits.introspection { builder } else { builder.disable_introspection() }
}
