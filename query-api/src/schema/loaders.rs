//! Batched lookups for nested fields, one SQL statement per field per query level whatever the
//! number of parents (no N+1). One loader per request, scoped to the caller's workspace, so that
//! its cache never crosses requests or tenants, and running on the request's connection.

use std::collections::HashMap;

use async_graphql::dataloader::{DataLoader, Loader};
use uuid::Uuid;

use super::history::WorkflowVersion;
use super::workspace::{Member, Team};
use crate::db::RequestDb;
use crate::error::{LoadError, QueryError};

/// The loaders of one request.
pub struct Loaders {
    pub read_model: DataLoader<ReadModelLoader>,
}

impl Loaders {
    pub fn new(db: RequestDb, workspace_id: Uuid) -> Self {
        // Batches run as tasks of their own: carry the request's span (and its request id) along.
        let spawn = |batch| tokio::spawn(tracing::Instrument::in_current_span(batch));
        Self { read_model: DataLoader::new(ReadModelLoader { db, workspace_id }, spawn) }
    }
}

pub struct ReadModelLoader {
    db: RequestDb,
    workspace_id: Uuid,
}

fn failed(error: sqlx::Error) -> LoadError {
    LoadError(std::sync::Arc::new(QueryError::from(error)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TeamKey(pub Uuid);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TeamMembersKey(pub Uuid);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemberKey(pub Uuid);

/// One page of one workflow's versions: versions strictly between `after` and `before`, the first
/// `limit` of them (or the last, reading backwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionsPage {
    pub workflow_id: Uuid,
    pub after: i64,
    pub before: i64,
    pub limit: i64,
    pub backwards: bool,
}

impl Loader<TeamKey> for ReadModelLoader {
    type Value = Team;
    type Error = LoadError;

    async fn load(&self, keys: &[TeamKey]) -> Result<HashMap<TeamKey, Team>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows: Vec<Team> = sqlx::query_as(
            "SELECT team_id, name, created_at FROM read_model.teams WHERE workspace_id = $1 AND team_id = ANY($2)",
        )
        .bind(self.workspace_id)
        .bind(ids)
        .fetch_all(&mut *self.db.connection().await.map_err(failed)?)
        .await
        .map_err(failed)?;
        Ok(rows.into_iter().map(|t| (TeamKey(t.team_id), t)).collect())
    }
}

impl Loader<TeamMembersKey> for ReadModelLoader {
    type Value = Vec<Member>;
    type Error = LoadError;

    async fn load(&self, keys: &[TeamMembersKey]) -> Result<HashMap<TeamMembersKey, Vec<Member>>, LoadError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            team_id: Uuid,
            #[sqlx(flatten)]
            member: Member,
        }
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT tm.team_id, m.user_id, m.email, m.name, m.role, m.added_at
             FROM read_model.team_members tm
             JOIN read_model.members m ON m.workspace_id = tm.workspace_id AND m.user_id = tm.user_id
             WHERE tm.workspace_id = $1 AND tm.team_id = ANY($2)
             ORDER BY m.email, m.user_id",
        )
        .bind(self.workspace_id)
        .bind(ids)
        .fetch_all(&mut *self.db.connection().await.map_err(failed)?)
        .await
        .map_err(failed)?;
        let mut by_team: HashMap<TeamMembersKey, Vec<Member>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            by_team.entry(TeamMembersKey(row.team_id)).or_default().push(row.member);
        }
        Ok(by_team)
    }
}

impl Loader<MemberKey> for ReadModelLoader {
    type Value = Member;
    type Error = LoadError;

    async fn load(&self, keys: &[MemberKey]) -> Result<HashMap<MemberKey, Member>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows: Vec<Member> = sqlx::query_as(
            "SELECT user_id, email, name, role, added_at FROM read_model.members
             WHERE workspace_id = $1 AND user_id = ANY($2)",
        )
        .bind(self.workspace_id)
        .bind(ids)
        .fetch_all(&mut *self.db.connection().await.map_err(failed)?)
        .await
        .map_err(failed)?;
        Ok(rows.into_iter().map(|m| (MemberKey(m.user_id), m)).collect())
    }
}

impl Loader<VersionsPage> for ReadModelLoader {
    type Value = Vec<WorkflowVersion>;
    type Error = LoadError;

    /// All pages in one statement: a lateral join runs the per-workflow, index-ordered read for
    /// each requested page.
    async fn load(&self, keys: &[VersionsPage]) -> Result<HashMap<VersionsPage, Vec<WorkflowVersion>>, LoadError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            page: i64,
            #[sqlx(flatten)]
            version: WorkflowVersion,
        }
        let column = |f: fn(&VersionsPage) -> i64| keys.iter().map(f).collect::<Vec<i64>>();
        let ids: Vec<Uuid> = keys.iter().map(|k| k.workflow_id).collect();
        let backwards: Vec<bool> = keys.iter().map(|k| k.backwards).collect();
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT k.page, v.*
             FROM unnest($2::uuid[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bool[])
                  WITH ORDINALITY AS k(workflow_id, after_version, before_version, lim, backwards, page)
             CROSS JOIN LATERAL (
                 (SELECT version, event_type, author, message, occurred_at, position, definition
                  FROM read_model.workflow_versions
                  WHERE workspace_id = $1 AND workflow_id = k.workflow_id AND NOT k.backwards
                    AND version > k.after_version AND version < k.before_version
                  ORDER BY version LIMIT k.lim)
                 UNION ALL
                 (SELECT version, event_type, author, message, occurred_at, position, definition
                  FROM read_model.workflow_versions
                  WHERE workspace_id = $1 AND workflow_id = k.workflow_id AND k.backwards
                    AND version > k.after_version AND version < k.before_version
                  ORDER BY version DESC LIMIT k.lim)
             ) v
             ORDER BY k.page, CASE WHEN k.backwards THEN -v.version ELSE v.version END",
        )
        .bind(self.workspace_id)
        .bind(ids)
        .bind(column(|k| k.after))
        .bind(column(|k| k.before))
        .bind(column(|k| k.limit))
        .bind(backwards)
        .fetch_all(&mut *self.db.connection().await.map_err(failed)?)
        .await
        .map_err(failed)?;
        let mut pages: HashMap<VersionsPage, Vec<WorkflowVersion>> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            let key = keys[usize::try_from(row.page - 1).expect("ordinality starts at 1")];
            pages.entry(key).or_default().push(row.version);
        }
        Ok(pages)
    }
}
