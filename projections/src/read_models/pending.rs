//! Rows collected over a batch: the workflows, the audit log, the daily activity counts and the
//! positions reached, written with one statement each.

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::PgConnection;

use super::workflows::Workflows;
use crate::cloudevents::ProjectedEvent;

/// Rows collected over a batch, written by [`Pending::flush`].
#[derive(Default)]
pub struct Pending {
    pub(super) workflows: Workflows,
    audit: Vec<AuditRow>,
    activity: HashMap<(uuid::Uuid, NaiveDate), i64>,
    positions: HashMap<&'static str, i64>,
}

pub(super) struct AuditRow {
    pub workspace_id: uuid::Uuid,
    pub position: i64,
    pub event: ProjectedEvent,
    pub summary: String,
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

    /// Writes the audit rows and activity counts, and returns the positions reached, without
    /// recording them (a rebuild records them when it swaps).
    pub async fn flush_into(mut self, conn: &mut PgConnection) -> Result<HashMap<&'static str, i64>, sqlx::Error> {
        let positions = std::mem::take(&mut self.positions);
        self.flush(conn).await?;
        Ok(positions)
    }

    /// Writes the audit rows, activity counts and positions collected so far.
    pub async fn flush(mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        self.workflows.flush(conn).await?;
        if !self.audit.is_empty() {
            let rows = &self.audit;
            sqlx::query(
                "INSERT INTO audit_log (workspace_id, position, occurred_at, actor_kind, actor_id,
                     event_type, stream_id, version, correlation_id, summary)
                 SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[],
                     $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[])
                 ON CONFLICT (workspace_id, position) DO NOTHING",
            )
            .bind(rows.iter().map(|r| r.workspace_id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.event.occurred_at).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.event.actor.kind.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.event.actor.id.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.event.event_type.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.event.stream_id.to_string()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.event.version).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.event.correlation_id.as_deref()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.summary.as_str()).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        if !self.activity.is_empty() {
            let (keys, counts): (Vec<_>, Vec<i64>) = self.activity.into_iter().unzip();
            sqlx::query(
                "INSERT INTO activity_daily (workspace_id, day, events)
                 SELECT * FROM UNNEST($1::uuid[], $2::date[], $3::bigint[])
                 ON CONFLICT (workspace_id, day) DO UPDATE SET events = activity_daily.events + EXCLUDED.events",
            )
            .bind(keys.iter().map(|(ws, _)| *ws).collect::<Vec<_>>())
            .bind(keys.iter().map(|(_, day)| *day).collect::<Vec<_>>())
            .bind(counts)
            .execute(&mut *conn)
            .await?;
        }
        if !self.positions.is_empty() {
            let (names, positions): (Vec<&str>, Vec<i64>) = self.positions.into_iter().unzip();
            sqlx::query(
                "INSERT INTO projections.positions (projection, position)
                 SELECT * FROM UNNEST($1::text[], $2::bigint[])
                 ON CONFLICT (projection) DO UPDATE
                 SET position = GREATEST(positions.position, EXCLUDED.position), updated_at = now()",
            )
            .bind(names)
            .bind(positions)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
