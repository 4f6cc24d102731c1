//! The workflows projection, set-wise: a batch reads the workflows it touches with one statement,
//! folds every event into them in memory, in stream order, and writes the changed rows and the new
//! version rows with one statement each. Per-event statements cost a round trip per event; this
//! costs three per batch, whatever its size.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use event_schemas::WorkflowEvent;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::memory::{WorkflowMemory, WrittenWorkflows};
use super::statement::BatchStatement;

use crate::cloudevents::ProjectedEvent;

/// A row of `workflows`, as the fold sees it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub(super) struct WorkflowRow {
    workspace_id: Uuid,
    workflow_id: Uuid,
    name: String,
    description: Option<String>,
    tags: Vec<String>,
    team_id: Option<Uuid>,
    status: String,
    status_before_archive: String,
    definition: Value,
    version: i64,
    published_version: Option<i64>,
    environments: Value,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A row of `workflow_versions`: every event of a workflow is a version.
#[derive(Debug, Clone, PartialEq)]
struct VersionRow {
    workspace_id: Uuid,
    workflow_id: Uuid,
    version: i64,
    event_type: String,
    author: String,
    message: Option<String>,
    occurred_at: DateTime<Utc>,
    position: i64,
    definition: Value,
}

/// The rows of one key: the workspace comes first, so no event reaches another tenant's row.
pub(super) type Key = (Uuid, Uuid);

impl WorkflowRow {
    pub(super) fn key(&self) -> Key {
        (self.workspace_id, self.workflow_id)
    }
}

/// The workflows a batch touches, and what it did to them.
#[derive(Debug, Default)]
pub(super) struct Workflows {
    /// Rows as read, then as folded; `None` for a workflow that has no row (yet).
    rows: HashMap<Key, Option<WorkflowRow>>,
    /// In key order, so that concurrent writers lock rows in one order.
    changed: BTreeSet<Key>,
    versions: Vec<VersionRow>,
    /// The rows the batch's statement writes, with the size of each in it.
    written: Vec<(Key, usize)>,
}

fn key(event: &ProjectedEvent) -> Key {
    (event.workspace_id, event.stream_id.id())
}

impl Workflows {
    /// Takes the rows of `events`' workflows from `memory` where it has them, or as absent where
    /// `new` says their streams have no events applied yet; [`Workflows::load`] reads the rest.
    pub(super) fn recall<'a>(
        &mut self,
        memory: &mut WorkflowMemory,
        events: impl Iterator<Item = &'a ProjectedEvent>,
        new: impl Fn(&ProjectedEvent) -> bool,
    ) {
        for event in events {
            let k = key(event);
            if self.rows.contains_key(&k) {
                continue;
            }
            if new(event) {
                self.rows.insert(k, None);
            } else if let Some(row) = memory.recall(&k) {
                self.rows.insert(k, Some(row.clone()));
            }
        }
    }

    /// The rows this batch wrote, for [`WorkflowMemory::remember`] after its commit.
    pub(super) fn into_written(mut self) -> WrittenWorkflows {
        let rows = self.written.into_iter().filter_map(|(k, size)| Some((self.rows.remove(&k)??, size)));
        WrittenWorkflows(rows.collect())
    }

    /// Reads the rows of the workflows of `events` that this batch has not read yet.
    pub(super) async fn load<'a>(
        &mut self,
        conn: &mut PgConnection,
        events: impl Iterator<Item = &'a ProjectedEvent>,
    ) -> Result<(), sqlx::Error> {
        let mut wanted: Vec<Key> = events.map(key).filter(|k| !self.rows.contains_key(k)).collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return Ok(());
        }
        let (workspaces, ids): (Vec<Uuid>, Vec<Uuid>) = wanted.iter().copied().unzip();
        let found: Vec<WorkflowRow> = sqlx::query_as(
            "SELECT w.workspace_id, w.workflow_id, name, description, tags, team_id, status, status_before_archive,
                    definition, version, published_version, environments, created_by, created_at, updated_at
             FROM workflows w
             JOIN UNNEST($1::uuid[], $2::uuid[]) AS k(workspace_id, workflow_id)
               ON w.workspace_id = k.workspace_id AND w.workflow_id = k.workflow_id",
        )
        .bind(workspaces)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
        for k in wanted {
            self.rows.insert(k, None);
        }
        for row in found {
            self.rows.insert(row.key(), Some(row));
        }
        Ok(())
    }

    /// Folds one event into its workflow (read by [`Workflows::load`] before). An event for a
    /// workflow without a row (its creation was dead-lettered) changes nothing, as an UPDATE of
    /// no row would not.
    pub(super) fn apply(&mut self, event: &ProjectedEvent, e: &WorkflowEvent) {
        let k = key(event);
        let slot = self.rows.entry(k).or_default();
        let json = |v| serde_json::to_value(v).unwrap_or_default();
        let message = match (e, slot.as_mut()) {
            (WorkflowEvent::Created(c), _) => {
                *slot = Some(WorkflowRow {
                    workspace_id: event.workspace_id,
                    workflow_id: k.1,
                    name: c.name.clone(),
                    description: c.description.clone(),
                    tags: c.tags.clone(),
                    team_id: c.team_id,
                    status: "draft".into(),
                    status_before_archive: "draft".into(),
                    definition: json(&c.definition),
                    version: event.version,
                    published_version: None,
                    environments: Value::Object(Default::default()),
                    created_by: event.actor.id.clone(),
                    created_at: event.occurred_at,
                    updated_at: event.occurred_at,
                });
                None
            }
            (_, None) => {
                tracing::warn!(stream_id = %event.stream_id, version = event.version, "event for a workflow without a row");
                return;
            }
            (WorkflowEvent::DefinitionChanged(d), Some(row)) => {
                set_definition(row, json(&d.definition));
                Some(d.message.clone())
            }
            (WorkflowEvent::RolledBack(r), Some(row)) => {
                set_definition(row, json(&r.definition));
                Some(format!("rolled back to version {}", r.to_version))
            }
            (WorkflowEvent::DetailsChanged(d), Some(row)) => {
                row.name.clone_from(&d.name);
                row.description.clone_from(&d.description);
                row.tags.clone_from(&d.tags);
                None
            }
            (WorkflowEvent::Published(p), Some(row)) => {
                row.status = "published".into();
                row.published_version = Some(p.version);
                None
            }
            (WorkflowEvent::Promoted(p), Some(row)) => {
                if let Value::Object(environments) = &mut row.environments {
                    environments.insert(p.environment.as_str().to_owned(), p.version.into());
                }
                None
            }
            (WorkflowEvent::Archived(_), Some(row)) => {
                row.status_before_archive = std::mem::replace(&mut row.status, "archived".into());
                None
            }
            (WorkflowEvent::Restored(_), Some(row)) => {
                row.status.clone_from(&row.status_before_archive);
                None
            }
        };
        let row = slot.as_mut().expect("the row exists or was just created");
        row.version = event.version;
        row.updated_at = event.occurred_at;
        // Every event is a version: record it with the definition then in force.
        self.versions.push(VersionRow {
            workspace_id: k.0,
            workflow_id: k.1,
            version: event.version,
            event_type: event.event_type.clone(),
            author: event.actor.id.clone(),
            message,
            occurred_at: event.occurred_at,
            position: event.global_position,
            definition: row.definition.clone(),
        });
        self.changed.insert(k);
    }

    /// Adds the changed rows and the version rows to the batch's statement.
    pub(super) fn push_into(&mut self, statement: &mut BatchStatement) {
        let changed = std::mem::take(&mut self.changed);
        let changed: Vec<(Key, &WorkflowRow)> =
            changed.iter().filter_map(|k| Some((*k, self.rows.get(k)?.as_ref()?))).collect();
        if !changed.is_empty() {
            // jsonb_to_recordset rather than UNNEST: `tags` is an array per row, and UNNEST would
            // flatten an array of arrays. In key order (`changed` is), as every writer locks them.
            let mut rows = vec![b'['];
            for (k, row) in changed {
                if rows.len() > 1 {
                    rows.push(b',');
                }
                let start = rows.len();
                serde_json::to_writer(&mut rows, row).expect("workflow rows serialize");
                self.written.push((k, rows.len() - start));
            }
            rows.push(b']');
            let rows = String::from_utf8(rows).expect("serde_json writes UTF-8");
            statement
                .part("workflows_written")
                .push(
                    "INSERT INTO workflows (workspace_id, workflow_id, name, description, tags, team_id, status,
                         status_before_archive, definition, version, published_version, environments, created_by,
                         created_at, updated_at)
                     SELECT * FROM jsonb_to_recordset(",
                )
                .push_bind(rows)
                .push(
                    "::text::jsonb) AS r(workspace_id uuid, workflow_id uuid, name text,
                         description text, tags text[], team_id uuid, status text, status_before_archive text,
                         definition jsonb, version bigint, published_version bigint, environments jsonb,
                         created_by text, created_at timestamptz, updated_at timestamptz)
                     ON CONFLICT (workspace_id, workflow_id) DO UPDATE SET
                         name = EXCLUDED.name, description = EXCLUDED.description, tags = EXCLUDED.tags,
                         team_id = EXCLUDED.team_id, status = EXCLUDED.status,
                         status_before_archive = EXCLUDED.status_before_archive, definition = EXCLUDED.definition,
                         version = EXCLUDED.version, published_version = EXCLUDED.published_version,
                         environments = EXCLUDED.environments, updated_at = EXCLUDED.updated_at",
                );
            statement.end(None);
        }
        let versions = std::mem::take(&mut self.versions);
        if !versions.is_empty() {
            let q = statement.part("versions_written");
            q.push(
                "INSERT INTO workflow_versions (workspace_id, workflow_id, version, event_type, author, message,
                     occurred_at, position, definition)
                 SELECT * FROM UNNEST(",
            );
            q.push_bind(versions.iter().map(|v| v.workspace_id).collect::<Vec<_>>()).push("::uuid[], ");
            q.push_bind(versions.iter().map(|v| v.workflow_id).collect::<Vec<_>>()).push("::uuid[], ");
            q.push_bind(versions.iter().map(|v| v.version).collect::<Vec<_>>()).push("::bigint[], ");
            q.push_bind(versions.iter().map(|v| v.event_type.clone()).collect::<Vec<_>>()).push("::text[], ");
            q.push_bind(versions.iter().map(|v| v.author.clone()).collect::<Vec<_>>()).push("::text[], ");
            q.push_bind(versions.iter().map(|v| v.message.clone()).collect::<Vec<_>>()).push("::text[], ");
            q.push_bind(versions.iter().map(|v| v.occurred_at).collect::<Vec<_>>()).push("::timestamptz[], ");
            q.push_bind(versions.iter().map(|v| v.position).collect::<Vec<_>>()).push("::bigint[], ");
            q.push_bind(versions.into_iter().map(|v| v.definition).collect::<Vec<_>>()).push("::jsonb[])");
            statement.end(None);
        }
    }
}

/// A new definition; a published workflow becomes a draft again.
fn set_definition(row: &mut WorkflowRow, definition: Value) {
    row.definition = definition;
    if row.status == "published" {
        row.status = "draft".into();
    }
}

#[cfg(test)]
mod tests;
