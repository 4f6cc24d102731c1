//! Payloads of the `workflow` category. A workflow's version is its stream version: every event
//! makes a new version, and the definition in force at any version can be rebuilt from the stream.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::types::{Environment, WorkflowDefinition};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowCreated {
    pub workflow_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub team_id: Option<Uuid>,
    pub definition: WorkflowDefinition,
}

/// The full new definition and the author's commit message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowDefinitionChanged {
    pub definition: WorkflowDefinition,
    pub message: String,
}

/// The details after the change; a field that did not change is repeated as it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowDetailsChanged {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
}

/// `version` is the workflow version whose definition was published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowPublished {
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowPromoted {
    pub environment: Environment,
    /// The published version that was promoted.
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowArchived {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowRestored {}

/// The definition of `to_version` becomes current again; it is carried in full so that the event
/// stands on its own for projections and auditors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowRolledBack {
    pub to_version: i64,
    pub definition: WorkflowDefinition,
}
