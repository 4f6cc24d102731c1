//! The workflow aggregate: a versioned graph of nodes and edges with a lifecycle
//! (draft → published → archived) and promotion to environments.
//!
//! A workflow's version is its stream version. The definition in force at any version is kept in
//! `definitions`, so that a rollback can name any earlier version.

use std::collections::BTreeMap;
use std::sync::Arc;

use event_schemas::WorkflowEvent;
use event_schemas::types::{Environment, WorkflowDefinition};
use event_schemas::workflow::*;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::validation::{CommitMessage, Description, Tags, ValidDefinition, WorkflowName};

#[cfg(test)]
mod tests;

#[derive(Debug, Clone, PartialEq)]
pub enum WorkflowCommand {
    Create {
        workflow_id: Uuid,
        name: WorkflowName,
        description: Option<Description>,
        tags: Tags,
        team_id: Option<Uuid>,
        definition: ValidDefinition,
    },
    ChangeDefinition {
        definition: ValidDefinition,
        message: CommitMessage,
    },
    /// `None` leaves a field as it is; `description: Some(None)` clears the description.
    ChangeDetails {
        name: Option<WorkflowName>,
        description: Option<Option<Description>>,
        tags: Option<Tags>,
    },
    Publish,
    Promote {
        environment: Environment,
    },
    Archive,
    Restore,
    RollBack {
        to_version: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    #[error("the workflow already exists")]
    AlreadyExists,
    #[error("the workflow does not exist")]
    NotFound,
    #[error("the workflow is archived; restore it first")]
    Archived,
    #[error("the workflow is not archived")]
    NotArchived,
    #[error("only a published version can be promoted to prod; publish the current version first")]
    NotPublished,
    #[error("version {requested} does not exist (the latest is {latest})")]
    NoSuchVersion { requested: i64, latest: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowStatus {
    /// Has changes that are not published (or was never published).
    Draft,
    /// The current definition is the published one.
    Published,
    Archived,
}

impl WorkflowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Draft => "draft",
            WorkflowStatus::Published => "published",
            WorkflowStatus::Archived => "archived",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    pub version: i64,
    pub id: Option<Uuid>,
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub team_id: Option<Uuid>,
    pub status: WorkflowStatus,
    /// The status to return to when restored.
    pub status_before_archive: WorkflowStatus,
    pub published_version: Option<i64>,
    pub environments: BTreeMap<Environment, i64>,
    /// Every definition the workflow has had, keyed by the version that set it.
    pub definitions: BTreeMap<i64, Arc<WorkflowDefinition>>,
}

impl Default for Workflow {
    fn default() -> Self {
        Self {
            version: 0,
            id: None,
            name: String::new(),
            description: None,
            tags: Vec::new(),
            team_id: None,
            status: WorkflowStatus::Draft,
            status_before_archive: WorkflowStatus::Draft,
            published_version: None,
            environments: BTreeMap::new(),
            definitions: BTreeMap::new(),
        }
    }
}

impl Workflow {
    /// The definition in force at `version` (the last one set at or before it).
    pub fn definition_at(&self, version: i64) -> Option<&Arc<WorkflowDefinition>> {
        self.definitions.range(..=version).next_back().map(|(_, d)| d)
    }

    /// The current definition.
    pub fn definition(&self) -> Option<&Arc<WorkflowDefinition>> {
        self.definitions.values().next_back()
    }

    fn decide_existing(&self, command: &WorkflowCommand) -> Result<Vec<WorkflowEvent>, WorkflowError> {
        use WorkflowCommand as C;
        let archived = self.status == WorkflowStatus::Archived;
        let event: WorkflowEvent = match command {
            C::Create { .. } => return Err(WorkflowError::AlreadyExists),
            C::Restore if !archived => return Err(WorkflowError::NotArchived),
            C::Restore => WorkflowRestored {}.into(),
            _ if archived => return Err(WorkflowError::Archived),
            C::ChangeDefinition { definition, message } => WorkflowDefinitionChanged {
                definition: definition.as_definition().clone(),
                message: message.clone().into_inner(),
            }
            .into(),
            C::ChangeDetails { name, description, tags } => {
                let changed = WorkflowDetailsChanged {
                    name: name.as_ref().map_or_else(|| self.name.clone(), |n| n.as_str().to_owned()),
                    description: match description {
                        Some(d) => d.clone().map(Description::into_inner),
                        None => self.description.clone(),
                    },
                    tags: tags.clone().map_or_else(|| self.tags.clone(), Tags::into_inner),
                };
                if changed.name == self.name && changed.description == self.description && changed.tags == self.tags {
                    return Ok(vec![]);
                }
                changed.into()
            }
            C::Publish if self.status == WorkflowStatus::Published => return Ok(vec![]),
            C::Publish => WorkflowPublished { version: self.version }.into(),
            C::Promote { environment } => {
                let version = match (environment, self.status, self.published_version) {
                    (Environment::Prod, WorkflowStatus::Published, Some(published)) => published,
                    (Environment::Prod, _, _) => return Err(WorkflowError::NotPublished),
                    _ => self.version,
                };
                if self.environments.get(environment) == Some(&version) {
                    return Ok(vec![]);
                }
                WorkflowPromoted { environment: *environment, version }.into()
            }
            C::Archive => WorkflowArchived {}.into(),
            C::RollBack { to_version } => {
                let no_such = WorkflowError::NoSuchVersion { requested: *to_version, latest: self.version };
                if *to_version < 1 || *to_version > self.version {
                    return Err(no_such);
                }
                let definition = self.definition_at(*to_version).ok_or(no_such)?;
                WorkflowRolledBack { to_version: *to_version, definition: (**definition).clone() }.into()
            }
        };
        Ok(vec![event])
    }

    fn set_definition(&mut self, definition: &WorkflowDefinition) {
        self.definitions.insert(self.version, Arc::new(definition.clone()));
        if self.status == WorkflowStatus::Published {
            self.status = WorkflowStatus::Draft;
        }
    }
}

impl Aggregate for Workflow {
    type Command = WorkflowCommand;
    type Event = WorkflowEvent;
    type Error = WorkflowError;

    fn decide(&self, command: &WorkflowCommand) -> Result<Vec<WorkflowEvent>, WorkflowError> {
        match (self.id, command) {
            (None, WorkflowCommand::Create { workflow_id, name, description, tags, team_id, definition }) => Ok(vec![
                WorkflowCreated {
                    workflow_id: *workflow_id,
                    name: name.as_str().to_owned(),
                    description: description.clone().map(Description::into_inner),
                    tags: tags.clone().into_inner(),
                    team_id: *team_id,
                    definition: definition.as_definition().clone(),
                }
                .into(),
            ]),
            (None, _) => Err(WorkflowError::NotFound),
            (Some(_), command) => self.decide_existing(command),
        }
    }

    fn evolve(&mut self, event: &WorkflowEvent) {
        self.version += 1;
        match event {
            WorkflowEvent::Created(e) => {
                self.id = Some(e.workflow_id);
                self.name = e.name.clone();
                self.description = e.description.clone();
                self.tags = e.tags.clone();
                self.team_id = e.team_id;
                self.set_definition(&e.definition);
            }
            WorkflowEvent::DefinitionChanged(e) => self.set_definition(&e.definition),
            WorkflowEvent::RolledBack(e) => self.set_definition(&e.definition),
            WorkflowEvent::DetailsChanged(e) => {
                self.name = e.name.clone();
                self.description = e.description.clone();
                self.tags = e.tags.clone();
            }
            WorkflowEvent::Published(e) => {
                self.status = WorkflowStatus::Published;
                self.published_version = Some(e.version);
            }
            WorkflowEvent::Promoted(e) => {
                self.environments.insert(e.environment, e.version);
            }
            WorkflowEvent::Archived(_) => {
                self.status_before_archive = self.status;
                self.status = WorkflowStatus::Archived;
            }
            WorkflowEvent::Restored(_) => self.status = self.status_before_archive,
        }
    }

    fn version(&self) -> i64 {
        self.version
    }
}
