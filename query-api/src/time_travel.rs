//! A workflow's state at any version or moment, rebuilt from the event store with the domain's
//! own `evolve`, starting from the nearest snapshot (one every [`SNAPSHOT_EVERY`] versions), so
//! that a workflow with 10,000 versions folds at most `SNAPSHOT_EVERY` events per question.
//!
//! Snapshots are a cache written as a side effect of folding: the first question about a long
//! stream folds it from the start and leaves snapshots behind, as rows and in the query API's
//! memory ([`crate::snapshot_cache`]). A snapshot is trusted only if the event at its version
//! still carries the hash recorded with it.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use domain::{Aggregate, Workflow, WorkflowStatus};
use event_schemas::types::{Environment, WorkflowDefinition};
use event_schemas::{StreamId, WorkflowEvent};
use eventstore::postgres::read;
use eventstore::{StoredPayload, StreamRead};
use serde::{Deserialize, Serialize};

use crate::db::RequestDb;
use crate::error::QueryError;
use crate::snapshot_cache::{KeptState, SnapshotCache};

/// How often a snapshot is kept: a question folds fewer than this many events. Each snapshot
/// holds one definition, so even 10,000 versions keep only 2,000 small rows.
pub const SNAPSHOT_EVERY: i64 = 5;

/// A workflow as it was at one version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkflowState {
    pub version: i64,
    /// When the event that made this version happened.
    pub occurred_at: Option<DateTime<Utc>>,
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub team_id: Option<uuid::Uuid>,
    pub status: String,
    pub status_before_archive: String,
    pub published_version: Option<i64>,
    pub environments: BTreeMap<Environment, i64>,
    pub definition: Arc<WorkflowDefinition>,
    /// The version whose definition is in force (the last that set one).
    pub definition_version: i64,
}

impl WorkflowState {
    fn of(workflow: &Workflow, occurred_at: Option<DateTime<Utc>>) -> Self {
        let (definition_version, definition) =
            workflow.definitions.iter().next_back().map(|(v, d)| (*v, d.clone())).unwrap_or_default();
        Self {
            version: workflow.version,
            occurred_at,
            name: workflow.name.clone(),
            description: workflow.description.clone(),
            tags: workflow.tags.clone(),
            team_id: workflow.team_id,
            status: workflow.status.as_str().to_owned(),
            status_before_archive: workflow.status_before_archive.as_str().to_owned(),
            published_version: workflow.published_version,
            environments: workflow.environments.clone(),
            definition,
            definition_version,
        }
    }

    /// The domain state to fold on from. It holds only the definition in force: enough for
    /// `evolve`, which never looks back at older definitions.
    fn to_workflow(&self, id: uuid::Uuid) -> Workflow {
        Workflow {
            version: self.version,
            id: Some(id),
            name: self.name.clone(),
            description: self.description.clone(),
            tags: self.tags.clone(),
            team_id: self.team_id,
            status: parse_status(&self.status),
            status_before_archive: parse_status(&self.status_before_archive),
            published_version: self.published_version,
            environments: self.environments.clone(),
            definitions: BTreeMap::from([(self.definition_version, self.definition.clone())]),
        }
    }
}

fn parse_status(raw: &str) -> WorkflowStatus {
    match raw {
        "published" => WorkflowStatus::Published,
        "archived" => WorkflowStatus::Archived,
        _ => WorkflowStatus::Draft,
    }
}

/// Rebuilds workflow states from the event store, on the connection of the request that asks,
/// with the snapshots the query API keeps in memory.
pub struct TimeTravel<'a> {
    db: &'a RequestDb,
    kept: &'a SnapshotCache,
}

impl<'a> TimeTravel<'a> {
    pub fn new(db: &'a RequestDb, kept: &'a SnapshotCache) -> Self {
        Self { db, kept }
    }

    /// The stream's current version in the store (0 if it does not exist).
    async fn stream_version(&self, stream: &StreamId) -> Result<i64, QueryError> {
        Ok(read::stream_info(&mut *self.db.connection().await?, stream).await?.map_or(0, |info| info.version))
    }

    /// The latest version at or before `at`, or `None` if the workflow did not exist yet.
    pub async fn version_as_of(&self, stream: &StreamId, at: DateTime<Utc>) -> Result<Option<i64>, QueryError> {
        Ok(Some(read::version_at(&mut *self.db.connection().await?, stream, at).await?).filter(|v| *v > 0))
    }

    /// The state after `version`, or `NoSuchVersion` naming the latest.
    #[tracing::instrument(skip_all, fields(stream = %stream, version))]
    pub async fn workflow_at(&self, stream: &StreamId, version: i64) -> Result<WorkflowState, QueryError> {
        if version >= 1 {
            let state = self.fold_to(stream, version).await?;
            if state.version == version {
                return Ok(state);
            }
        }
        // Only a version the stream does not have gets here: the latest is worth a statement now.
        Err(QueryError::NoSuchVersion { requested: version, latest: self.stream_version(stream).await? })
    }

    /// The state after `version`, or after the last version if the stream is shorter: from the
    /// snapshot kept in memory if there is one, else from the nearest snapshot row, else from the
    /// start.
    async fn fold_to(&self, stream: &StreamId, version: i64) -> Result<WorkflowState, QueryError> {
        // Snapshots are made at every multiple of SNAPSHOT_EVERY a fold passes through.
        let nearest = version - version % SNAPSHOT_EVERY;
        if nearest > 0
            && let Some(kept) = self.kept.get(stream.id(), nearest)
        {
            if let Some(later) = self.events_after_snapshot(stream, nearest, &kept.hash, version).await? {
                return self.fold_on(stream, kept.state.to_workflow(stream.id()), later, kept.state.occurred_at).await;
            }
            self.kept.forget(stream.id(), nearest);
        }
        let snapshot: Option<(i64, String, String)> = sqlx::query_as(
            "SELECT version, event_hash, state::text FROM snapshots.workflow_states
             WHERE stream_id = $1 AND version <= $2 ORDER BY version DESC LIMIT 1",
        )
        .bind(stream.to_string())
        .bind(version)
        .fetch_optional(&mut *self.db.connection().await?)
        .await?;
        if let Some((snapshot_version, hash, json)) = snapshot
            && let Some(later) = self.events_after_snapshot(stream, snapshot_version, &hash, version).await?
        {
            let state: WorkflowState = serde_json::from_str(&json).map_err(QueryError::internal)?;
            let (workflow, occurred_at) = (state.to_workflow(stream.id()), state.occurred_at);
            self.kept.keep(stream.id(), KeptState { hash, state, bytes: json.len() as u64 });
            return self.fold_on(stream, workflow, later, occurred_at).await;
        }
        let range = StreamRead::between(1, Some(version));
        let events = read::read_payloads(&mut *self.db.connection().await?, stream, range).await?;
        self.fold_on(stream, Workflow::default(), events, None).await
    }

    /// The events after a snapshot at `snapshot_version` up to `version`, if the event at the
    /// snapshot's version still carries `hash` (the snapshot still describes this stream).
    async fn events_after_snapshot(
        &self,
        stream: &StreamId,
        snapshot_version: i64,
        hash: &str,
        version: i64,
    ) -> Result<Option<impl Iterator<Item = StoredPayload> + use<>>, QueryError> {
        let range = StreamRead::between(snapshot_version, Some(version));
        let events = read::read_payloads(&mut *self.db.connection().await?, stream, range).await?;
        if events.first().is_some_and(|e| e.version == snapshot_version && e.hash == hash) {
            return Ok(Some(events.into_iter().skip(1)));
        }
        tracing::warn!(%stream, snapshot_version, "snapshot does not match the stream; not trusted");
        Ok(None)
    }

    async fn fold_on(
        &self,
        stream: &StreamId,
        mut workflow: Workflow,
        events: impl IntoIterator<Item = StoredPayload>,
        mut occurred_at: Option<DateTime<Utc>>,
    ) -> Result<WorkflowState, QueryError> {
        let mut snapshots = Vec::new();
        for recorded in events {
            // From the stored JSON text straight into the event: no `Value` tree per event.
            let StoredPayload { event_type, schema_version, payload, occurred_at: at, hash, .. } = recorded;
            let event =
                WorkflowEvent::decode_json(&event_type, schema_version, &payload).map_err(QueryError::internal)?;
            workflow.evolve(&event);
            // Older definitions are never needed again: keep memory flat on long streams.
            while workflow.definitions.len() > 1 {
                workflow.definitions.pop_first();
            }
            occurred_at = Some(at);
            if workflow.version % SNAPSHOT_EVERY == 0 {
                snapshots.push((hash, WorkflowState::of(&workflow, occurred_at)));
            }
        }
        self.save_snapshots(stream, snapshots).await;
        Ok(WorkflowState::of(&workflow, occurred_at))
    }

    /// Keeps the snapshots in memory and writes them, best effort: a snapshot that cannot be
    /// written costs only speed, never an answer.
    async fn save_snapshots(&self, stream: &StreamId, snapshots: Vec<(String, WorkflowState)>) {
        if snapshots.is_empty() {
            return;
        }
        let (mut versions, mut hashes, mut states) = (Vec::new(), Vec::new(), Vec::new());
        for (hash, state) in snapshots {
            let json = serde_json::to_string(&state).expect("states serialize");
            versions.push(state.version);
            hashes.push(hash.clone());
            self.kept.keep(stream.id(), KeptState { hash, state, bytes: json.len() as u64 });
            states.push(json);
        }
        let insert = sqlx::query(
            "INSERT INTO snapshots.workflow_states (stream_id, version, event_hash, state)
             SELECT $1, v, h, s::jsonb FROM unnest($2::bigint[], $3::text[], $4::text[]) AS t(v, h, s)
             ON CONFLICT DO NOTHING",
        )
        .bind(stream.to_string())
        .bind(versions)
        .bind(hashes)
        .bind(states);
        let written = match self.db.connection().await {
            Ok(mut connection) => insert.execute(&mut *connection).await,
            Err(error) => Err(error),
        };
        if let Err(error) = written {
            tracing::warn!(%stream, error = %error, "could not write workflow snapshots");
        }
    }
}
