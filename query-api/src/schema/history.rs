//! A workflow's past: its versions (from the read model), its state at any version or moment and
//! the difference between two versions (both rebuilt from the event store).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::{Json, SimpleObject};
use chrono::{DateTime, Utc};
use event_schemas::types::{Environment, WorkflowDefinition};
use uuid::Uuid;

use crate::diff;
use crate::time_travel::WorkflowState;

/// One version of a workflow: the event that made it and the definition in force after it.
#[derive(SimpleObject, sqlx::FromRow, Clone)]
pub struct WorkflowVersion {
    pub version: i64,
    pub event_type: String,
    /// Who made the change (the actor id: an API key or a user).
    pub author: String,
    /// The commit message, for definition changes.
    pub message: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// The global position of the event in the log.
    pub position: i64,
    pub definition: serde_json::Value,
}

/// An environment and the version promoted to it.
#[derive(SimpleObject, Clone)]
pub struct Promotion {
    pub environment: String,
    pub version: i64,
}

pub fn promotions(environments: &BTreeMap<Environment, i64>) -> Vec<Promotion> {
    environments
        .iter()
        .map(|(environment, version)| Promotion { environment: environment.as_str().to_owned(), version: *version })
        .collect()
}

/// A workflow as it was right after one version, rebuilt from the event store.
#[derive(SimpleObject)]
pub struct WorkflowAtVersion {
    pub version: i64,
    /// When the event that made this version happened.
    pub occurred_at: Option<DateTime<Utc>>,
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub team_id: Option<Uuid>,
    pub status: String,
    pub published_version: Option<i64>,
    pub environments: Vec<Promotion>,
    /// The version that set the definition in force.
    pub definition_version: i64,
    /// Written into the response straight from the folded state: going through a
    /// `serde_json::Value` first was a copy of every node and edge per answer.
    pub definition: Json<WorkflowDefinition>,
}

impl From<WorkflowState> for WorkflowAtVersion {
    fn from(state: WorkflowState) -> Self {
        Self {
            version: state.version,
            occurred_at: state.occurred_at,
            environments: promotions(&state.environments),
            definition: Json(Arc::unwrap_or_clone(state.definition)),
            name: state.name,
            description: state.description,
            tags: state.tags,
            team_id: state.team_id,
            status: state.status,
            published_version: state.published_version,
            definition_version: state.definition_version,
        }
    }
}

#[derive(SimpleObject)]
pub struct ElementChange {
    pub id: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

/// Nodes or edges added, removed and changed (matched by id).
#[derive(SimpleObject)]
pub struct ElementDiff {
    pub added: Vec<serde_json::Value>,
    pub removed: Vec<serde_json::Value>,
    pub changed: Vec<ElementChange>,
}

impl From<diff::ElementDiff> for ElementDiff {
    fn from(d: diff::ElementDiff) -> Self {
        Self {
            added: d.added,
            removed: d.removed,
            changed: d
                .changed
                .into_iter()
                .map(|c| ElementChange { id: c.id, before: c.before, after: c.after })
                .collect(),
        }
    }
}

#[derive(SimpleObject)]
pub struct TextChange {
    pub before: Option<String>,
    pub after: Option<String>,
}

/// What changed from one version to another.
#[derive(SimpleObject)]
pub struct WorkflowDiff {
    pub from_version: i64,
    pub to_version: i64,
    pub nodes: ElementDiff,
    pub edges: ElementDiff,
    pub name: Option<TextChange>,
    pub description: Option<TextChange>,
    pub status: Option<TextChange>,
    pub tags_added: Vec<String>,
    pub tags_removed: Vec<String>,
    /// True when nothing at all differs.
    pub unchanged: bool,
}

impl From<diff::WorkflowDiff> for WorkflowDiff {
    fn from(d: diff::WorkflowDiff) -> Self {
        let text = |c: diff::FieldChange<String>| TextChange { before: Some(c.before), after: Some(c.after) };
        Self {
            unchanged: d.is_empty(),
            from_version: d.from_version,
            to_version: d.to_version,
            name: d.name.map(text),
            status: d.status.map(text),
            description: d.description.map(|c| TextChange { before: c.before, after: c.after }),
            nodes: d.nodes.into(),
            edges: d.edges.into(),
            tags_added: d.tags_added,
            tags_removed: d.tags_removed,
        }
    }
}
