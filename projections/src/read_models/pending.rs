//! Rows collected over a batch: the workflows, the audit log, the daily activity counts, the
//! positions reached and, for the projector, the version guard and the Kafka offsets, written
//! with one statement (see `statement`).

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::PgConnection;

use super::memory::{WorkflowMemory, WrittenWorkflows};
use super::statement::BatchStatement;
use super::workflows::Workflows;
use crate::cloudevents::ProjectedEvent;

/// Rows collected over a batch, written by [`Pending::flush`].
#[derive(Default)]
pub struct Pending {
    pub(super) workflows: Workflows,
    audit: Vec<AuditRow>,
    activity: HashMap<(uuid::Uuid, NaiveDate), i64>,
    positions: HashMap<&'static str, i64>,
    guard: Vec<GuardRow>,
    offsets: Option<Offsets>,
}

/// An event's row of `audit_log`: its envelope without the payload.
pub(super) struct AuditRow {
    workspace_id: uuid::Uuid,
    position: i64,
    occurred_at: chrono::DateTime<chrono::Utc>,
    actor_kind: &'static str,
    actor_id: String,
    event_type: String,
    stream_id: String,
    version: i64,
    correlation_id: Option<String>,
    summary: String,
}

impl AuditRow {
    pub(super) fn of(event: &ProjectedEvent, summary: String) -> Self {
        Self {
            workspace_id: event.workspace_id,
            position: event.global_position,
            occurred_at: event.occurred_at,
            actor_kind: event.actor.kind.as_str(),
            actor_id: event.actor.id.clone(),
            event_type: event.event_type.clone(),
            stream_id: event.stream_id.to_string(),
            version: event.version,
            correlation_id: event.correlation_id.clone(),
            summary,
        }
    }
}

impl Pending {
    pub(super) fn push_audit(&mut self, row: AuditRow) {
        self.audit.push(row);
    }

    pub(super) fn count_activity(&mut self, event: &ProjectedEvent) {
        *self.activity.entry((event.workspace_id, event.occurred_at.date_naive())).or_default() += 1;
    }

    pub(super) fn reached(&mut self, projection: &'static str, position: i64) {
        let entry = self.positions.entry(projection).or_insert(position);
        *entry = (*entry).max(position);
    }

    /// Moves the version guard of the batch's streams: each from the version it was read at
    /// (`applied`, 0 for a stream without a guard row) to `version`. If another transaction moved
    /// any of them meanwhile, [`Pending::flush`] fails with [`GuardMoved`].
    pub fn move_guard(&mut self, mut rows: Vec<GuardRow>) {
        // In stream order, as every writer takes their locks: no two batches wait on each other.
        rows.sort_unstable_by(|a, b| a.stream_id.cmp(&b.stream_id));
        self.guard = rows;
    }

    /// Takes the workflow rows of `events` from `memory` (see [`Workflows::recall`]); `new`: the
    /// events whose streams have none applied yet.
    pub fn recall_workflows<'a>(
        &mut self,
        memory: &mut WorkflowMemory,
        events: impl Iterator<Item = &'a ProjectedEvent>,
        new: impl Fn(&ProjectedEvent) -> bool,
    ) {
        self.workflows.recall(memory, events, new);
    }

    /// Records how far the batch got in each partition, in the same statement as its effects.
    pub fn store_offsets(&mut self, offsets: Offsets) {
        self.offsets = Some(offsets);
    }

    /// Writes the audit rows and activity counts, and returns the positions reached, without
    /// recording them (a rebuild records them when it swaps).
    pub async fn flush_into(mut self, conn: &mut PgConnection) -> anyhow::Result<HashMap<&'static str, i64>> {
        let positions = std::mem::take(&mut self.positions);
        self.flush(conn).await?;
        Ok(positions)
    }

    /// Writes everything collected so far, in one statement; returns the workflow rows written.
    pub async fn flush(mut self, conn: &mut PgConnection) -> anyhow::Result<WrittenWorkflows> {
        let mut statement = BatchStatement::new();
        let guarded = self.guard.len() as i64;
        push_guard(&mut statement, std::mem::take(&mut self.guard));
        if let Some(offsets) = self.offsets.take() {
            push_offsets(&mut statement, offsets);
        }
        self.workflows.push_into(&mut statement);
        push_audit(&mut statement, std::mem::take(&mut self.audit));
        // Rows that every batch of a workspace writes (its day, the positions) come last, in key
        // order, so that concurrent batches queue on them briefly and never deadlock.
        if !self.activity.is_empty() {
            let mut activity: Vec<_> = self.activity.into_iter().collect();
            activity.sort_unstable();
            let q = statement.part("activity_counted");
            q.push("INSERT INTO activity_daily (workspace_id, day, events) SELECT * FROM UNNEST(");
            q.push_bind(activity.iter().map(|((ws, _), _)| *ws).collect::<Vec<_>>()).push("::uuid[], ");
            q.push_bind(activity.iter().map(|((_, day), _)| *day).collect::<Vec<_>>()).push("::date[], ");
            q.push_bind(activity.iter().map(|(_, n)| *n).collect::<Vec<_>>()).push(
                "::bigint[]) ON CONFLICT (workspace_id, day) DO UPDATE SET events = activity_daily.events + EXCLUDED.events",
            );
            statement.end(None);
        }
        if !self.positions.is_empty() {
            let mut positions: Vec<_> = self.positions.into_iter().collect();
            positions.sort_unstable();
            let q = statement.part("positions_reached");
            q.push("INSERT INTO projections.positions (projection, position) SELECT * FROM UNNEST(");
            q.push_bind(positions.iter().map(|(name, _)| (*name).to_owned()).collect::<Vec<_>>()).push("::text[], ");
            q.push_bind(positions.iter().map(|(_, p)| *p).collect::<Vec<_>>()).push(
                "::bigint[]) ON CONFLICT (projection) DO UPDATE
                 SET position = GREATEST(positions.position, EXCLUDED.position), updated_at = now()",
            );
            statement.end(None);
        }
        let moved = statement.execute(conn).await?;
        if moved != guarded {
            return Err(GuardMoved { streams: guarded - moved }.into());
        }
        Ok(self.workflows.into_written())
    }
}

/// A stream's version guard, moved by a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardRow {
    pub stream_id: String,
    /// The version the batch read (0: the stream had no guard row).
    pub applied: i64,
    pub version: i64,
}

/// The next offset of each partition of a batch, under the broker epoch it was positioned in.
#[derive(Debug, Default)]
pub struct Offsets {
    pub group: String,
    pub topics: Vec<String>,
    pub partitions: Vec<i32>,
    pub next: Vec<i64>,
    pub epochs: Vec<i64>,
}

/// Another transaction moved the version guard of some of a batch's streams after the batch read
/// it (a projector that has not yet noticed that its partition moved to another): the batch is
/// rolled back and read again, and what the other applied is then dropped as duplicates.
#[derive(Debug, thiserror::Error)]
#[error("the version guard of {streams} stream(s) moved while the batch was applied")]
pub struct GuardMoved {
    pub streams: i64,
}

fn push_guard(statement: &mut BatchStatement, rows: Vec<GuardRow>) {
    if rows.is_empty() {
        return;
    }
    let (known, new): (Vec<GuardRow>, Vec<GuardRow>) = rows.into_iter().partition(|r| r.applied > 0);
    // Each row moves only from the version the batch read: under READ COMMITTED an UPDATE that
    // waited for another writer re-checks its condition against what that writer committed.
    let q = statement.part("guard_moved");
    q.push("UPDATE read_model.stream_versions s SET version = g.version FROM UNNEST(");
    q.push_bind(known.iter().map(|r| r.stream_id.clone()).collect::<Vec<_>>()).push("::text[], ");
    q.push_bind(known.iter().map(|r| r.applied).collect::<Vec<_>>()).push("::bigint[], ");
    q.push_bind(known.iter().map(|r| r.version).collect::<Vec<_>>()).push(
        "::bigint[]) AS g(stream_id, applied, version)
         WHERE s.stream_id = g.stream_id AND s.version = g.applied RETURNING 1",
    );
    statement.end(Some("guard_moved"));
    let q = statement.part("guard_created");
    q.push("INSERT INTO read_model.stream_versions (stream_id, version) SELECT * FROM UNNEST(");
    q.push_bind(new.iter().map(|r| r.stream_id.clone()).collect::<Vec<_>>()).push("::text[], ");
    q.push_bind(new.iter().map(|r| r.version).collect::<Vec<_>>())
        .push("::bigint[]) ON CONFLICT (stream_id) DO NOTHING RETURNING 1");
    statement.end(Some("guard_created"));
}

fn push_offsets(statement: &mut BatchStatement, offsets: Offsets) {
    if offsets.topics.is_empty() {
        return;
    }
    let q = statement.part("offsets_stored");
    q.push("INSERT INTO projections.kafka_offsets (consumer_group, topic, partition, next_offset, epoch) SELECT ");
    q.push_bind(offsets.group).push("::text, * FROM UNNEST(");
    q.push_bind(offsets.topics).push("::text[], ");
    q.push_bind(offsets.partitions).push("::int[], ");
    q.push_bind(offsets.next).push("::bigint[], ");
    q.push_bind(offsets.epochs).push(
        "::bigint[]) ON CONFLICT (consumer_group, topic, partition)
         DO UPDATE SET next_offset = EXCLUDED.next_offset, epoch = EXCLUDED.epoch",
    );
    statement.end(None);
}

fn push_audit(statement: &mut BatchStatement, mut rows: Vec<AuditRow>) {
    if rows.is_empty() {
        return;
    }
    let q = statement.part("audit_written");
    q.push(
        "INSERT INTO audit_log (workspace_id, position, occurred_at, actor_kind, actor_id,
             event_type, stream_id, version, correlation_id, summary)
         SELECT * FROM UNNEST(",
    );
    q.push_bind(rows.iter().map(|r| r.workspace_id).collect::<Vec<_>>()).push("::uuid[], ");
    q.push_bind(rows.iter().map(|r| r.position).collect::<Vec<_>>()).push("::bigint[], ");
    q.push_bind(rows.iter().map(|r| r.occurred_at).collect::<Vec<_>>()).push("::timestamptz[], ");
    q.push_bind(rows.iter().map(|r| r.actor_kind).collect::<Vec<_>>()).push("::text[], ");
    q.push_bind(rows.iter_mut().map(|r| std::mem::take(&mut r.actor_id)).collect::<Vec<_>>()).push("::text[], ");
    q.push_bind(rows.iter_mut().map(|r| std::mem::take(&mut r.event_type)).collect::<Vec<_>>()).push("::text[], ");
    q.push_bind(rows.iter_mut().map(|r| std::mem::take(&mut r.stream_id)).collect::<Vec<_>>()).push("::text[], ");
    q.push_bind(rows.iter().map(|r| r.version).collect::<Vec<_>>()).push("::bigint[], ");
    q.push_bind(rows.iter_mut().map(|r| r.correlation_id.take()).collect::<Vec<_>>()).push("::text[], ");
    // No ON CONFLICT: the version guard lets each event through once, and an audit row that
    // exists already means another batch applied it (a stale projector racing its partition's
    // new owner): that batch must fail and be read again, as its workflow versions (no ON
    // CONFLICT either) make it. Speculative insertion also cost a third of this insert's time.
    q.push_bind(rows.into_iter().map(|r| r.summary).collect::<Vec<_>>()).push("::text[])");
    statement.end(None);
}
