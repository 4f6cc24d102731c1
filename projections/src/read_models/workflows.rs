//! The workflows projection, set-wise: a batch reads the workflows it touches with one statement,
//! folds every event into them in memory, in stream order, and writes the changed rows and the new
//! version rows with one statement each. Per-event statements cost a round trip per event; this
//! costs three per batch, whatever its size.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use event_schemas::WorkflowEvent;
use lru::LruCache;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::statement::BatchStatement;

use crate::cloudevents::ProjectedEvent;

/// A row of `workflows`, as the fold sees it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
struct WorkflowRow {
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
type Key = (Uuid, Uuid);

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

/// The workflow rows a batch wrote, once it committed: see [`WorkflowMemory`].
#[derive(Debug, Default)]
pub struct WrittenWorkflows(Vec<(WorkflowRow, usize)>);

/// Workflow rows a projector committed, so that its next batch need not read them back. A row
/// is recalled only for a stream whose version guard the batch takes from the projector's own
/// memory too, and the batch's statement checks that guard: if it holds, no one else has
/// written the row since (a row changes only with its stream's guard, in one transaction).
pub struct WorkflowMemory {
    rows: LruCache<Key, (WorkflowRow, usize)>,
    bytes: usize,
    budget: usize,
}

impl WorkflowMemory {
    /// Keeps rows up to about `budget` bytes of their JSON, least recently written out first.
    pub fn new(budget: usize) -> Self {
        Self { rows: LruCache::unbounded(), bytes: 0, budget }
    }

    /// The rows `written` wrote, as committed.
    pub fn remember(&mut self, written: WrittenWorkflows) {
        for (row, size) in written.0 {
            let key = (row.workspace_id, row.workflow_id);
            self.bytes += size;
            if let Some((_, old)) = self.rows.put(key, (row, size)) {
                self.bytes -= old;
            }
        }
        while self.bytes > self.budget {
            let Some((_, (_, size))) = self.rows.pop_lru() else { break };
            self.bytes -= size;
        }
    }

    pub fn clear(&mut self) {
        self.rows.clear();
        self.bytes = 0;
    }
}

impl Default for WorkflowMemory {
    fn default() -> Self {
        Self::new(32 * 1024 * 1024)
    }
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
            } else if let Some((row, _)) = memory.rows.get(&k) {
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
            self.rows.insert((row.workspace_id, row.workflow_id), Some(row));
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
mod tests {
    use event_schemas::types::{Environment, WorkflowDefinition};
    use event_schemas::workflow::*;
    use event_schemas::{Actor, Category, StreamId};

    use super::*;

    fn event(
        workspace: Uuid,
        workflow: Uuid,
        version: i64,
        e: impl Into<WorkflowEvent>,
    ) -> (ProjectedEvent, WorkflowEvent) {
        let e = e.into();
        let projected = ProjectedEvent {
            stream_id: StreamId::new(Category::Workflow, workflow),
            version,
            event_id: Uuid::now_v7(),
            event_type: e.event_type().to_owned(),
            schema_version: e.schema_version(),
            workspace_id: workspace,
            global_position: 100 + version,
            occurred_at: Utc::now(),
            actor: Actor::system("test"),
            correlation_id: None,
            causation_id: None,
            payload: serde_json::value::to_raw_value(&e.to_payload()).unwrap(),
        };
        (projected, e)
    }

    fn created(workflow: Uuid) -> WorkflowCreated {
        WorkflowCreated {
            workflow_id: workflow,
            name: "Invoices".into(),
            description: None,
            tags: vec!["finance".into()],
            team_id: None,
            definition: WorkflowDefinition::default(),
        }
    }

    #[test]
    fn folds_a_stream_in_order_and_records_every_version() {
        let (ws, id) = (Uuid::now_v7(), Uuid::now_v7());
        let mut workflows = Workflows::default();
        let details = WorkflowDetailsChanged { name: "Bills".into(), description: Some("d".into()), tags: vec![] };
        let changed = WorkflowDefinitionChanged { definition: WorkflowDefinition::default(), message: "tweak".into() };
        let history: Vec<WorkflowEvent> = vec![
            created(id).into(),
            WorkflowPublished { version: 1 }.into(),
            WorkflowPromoted { environment: Environment::Staging, version: 1 }.into(),
            details.into(),
            changed.into(),
            WorkflowArchived {}.into(),
            WorkflowRestored {}.into(),
        ];
        for (n, e) in history.into_iter().enumerate() {
            let (projected, e) = event(ws, id, n as i64 + 1, e);
            workflows.apply(&projected, &e);
        }
        let row = workflows.rows[&(ws, id)].as_ref().expect("created");
        assert_eq!((row.name.as_str(), row.description.as_deref()), ("Bills", Some("d")));
        // The definition change made the published workflow a draft; archive and restore kept it.
        assert_eq!((row.status.as_str(), row.published_version, row.version), ("draft", Some(1), 7));
        assert_eq!(row.environments, serde_json::json!({"staging": 1}));
        let versions: Vec<(i64, Option<&str>)> =
            workflows.versions.iter().map(|v| (v.version, v.message.as_deref())).collect();
        assert_eq!(versions, [(1, None), (2, None), (3, None), (4, None), (5, Some("tweak")), (6, None), (7, None)]);
        assert_eq!(workflows.changed.len(), 1);
    }

    #[test]
    fn archive_remembers_the_status_it_restores() {
        let (ws, id) = (Uuid::now_v7(), Uuid::now_v7());
        let mut workflows = Workflows::default();
        let history: [WorkflowEvent; 3] =
            [created(id).into(), WorkflowPublished { version: 1 }.into(), WorkflowArchived {}.into()];
        for (n, e) in history.into_iter().enumerate() {
            let (projected, e) = event(ws, id, n as i64 + 1, e);
            workflows.apply(&projected, &e);
        }
        assert_eq!(workflows.rows[&(ws, id)].as_ref().unwrap().status, "archived");
        let (projected, e) = event(ws, id, 4, WorkflowRestored {});
        workflows.apply(&projected, &e);
        assert_eq!(workflows.rows[&(ws, id)].as_ref().unwrap().status, "published");
    }

    #[test]
    fn an_event_reaches_only_its_own_workspace_row() {
        let (ws, other, id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut workflows = Workflows::default();
        let (projected, e) = event(ws, id, 1, created(id));
        workflows.apply(&projected, &e);
        // The same workflow id under another workspace has no row: nothing changes, no version.
        let (projected, e) = event(other, id, 2, WorkflowArchived {});
        workflows.apply(&projected, &e);
        assert_eq!(workflows.rows[&(ws, id)].as_ref().unwrap().status, "draft");
        assert!(workflows.rows[&(other, id)].is_none());
        assert_eq!(workflows.versions.len(), 1);
    }

    /// A batch that creates `ids` and commits: what it wrote, remembered in `memory`.
    fn commit_creations(memory: &mut WorkflowMemory, ws: Uuid, ids: &[Uuid]) {
        let mut workflows = Workflows::default();
        for id in ids {
            let (projected, e) = event(ws, *id, 1, created(*id));
            workflows.apply(&projected, &e);
        }
        workflows.push_into(&mut BatchStatement::new());
        memory.remember(workflows.into_written());
    }

    #[test]
    fn a_committed_row_is_recalled_as_written_and_a_new_stream_as_absent() {
        let (ws, id, fresh, unknown) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut memory = WorkflowMemory::default();
        commit_creations(&mut memory, ws, &[id]);

        let mut next = Workflows::default();
        let events = [event(ws, id, 2, WorkflowArchived {}).0, event(ws, fresh, 1, created(fresh)).0];
        let unknown_event = event(ws, unknown, 5, WorkflowArchived {}).0;
        next.recall(&mut memory, events.iter().chain([&unknown_event]), |e| e.version == 1);
        assert_eq!(next.rows[&(ws, id)].as_ref().map(|r| (r.name.as_str(), r.version)), Some(("Invoices", 1)));
        assert_eq!(next.rows.get(&(ws, fresh)), Some(&None), "a new stream has no row");
        assert!(!next.rows.contains_key(&(ws, unknown)), "a row not in memory is left to `load`");
    }

    #[test]
    fn the_memory_keeps_to_its_budget_dropping_the_least_recently_written() {
        let ws = Uuid::now_v7();
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let mut probe = WorkflowMemory::new(usize::MAX);
        commit_creations(&mut probe, ws, &ids[..1]);
        let one_row = probe.bytes;
        assert!(one_row > 100, "a row's size is its JSON: {one_row} bytes");

        // Room for two rows (their timestamps may differ in length by a few digits).
        let budget = 2 * one_row + 8;
        let mut memory = WorkflowMemory::new(budget);
        commit_creations(&mut memory, ws, &ids);
        let counted = |m: &WorkflowMemory| m.rows.iter().map(|(_, (_, size))| size).sum::<usize>();
        assert_eq!(memory.rows.len(), 2);
        assert!(memory.bytes <= budget && memory.bytes == counted(&memory));
        assert!(!memory.rows.contains(&(ws, ids[0])), "the first written goes first");
        // Writing a remembered row again replaces it, and its size is counted once.
        commit_creations(&mut memory, ws, &ids[2..]);
        assert_eq!(memory.rows.len(), 2);
        assert_eq!(memory.bytes, counted(&memory));
    }
}
