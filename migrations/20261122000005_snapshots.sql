-- Snapshots of workflow state for time travel (GraphQL `workflow.at`), written by the query API
-- every few versions (query_api::time_travel::SNAPSHOT_EVERY) as it folds streams. A cache: it can be dropped at any time, and a snapshot
-- is only used when the event at its version still has the hash recorded with it.

CREATE SCHEMA IF NOT EXISTS snapshots;

CREATE TABLE snapshots.workflow_states (
    stream_id  text NOT NULL,
    version    bigint NOT NULL,
    event_hash text NOT NULL,
    state      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, version)
);
