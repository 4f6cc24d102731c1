-- The security index (ARCHITECTURE.md decision 7): the state that authentication,
-- authorization and uniqueness need to be strongly consistent. The command API writes it in the
-- same transaction as the events it derives from, so a revoked key or a removed member is refused
-- on the very next request. It can be rebuilt from the event store.

CREATE SCHEMA IF NOT EXISTS security;

CREATE TABLE security.workspaces (
    workspace_id     uuid PRIMARY KEY,
    -- Workspace slugs are unique: a second workspace with the same slug is refused.
    slug             text NOT NULL CONSTRAINT workspaces_slug_key UNIQUE,
    plan             text NOT NULL,
    -- Quotas, counted here so that they hold under concurrency: an increment that would pass
    -- the plan's limit matches no row and the command is refused.
    active_workflows integer NOT NULL DEFAULT 0,
    max_workflows    integer NOT NULL,
    active_api_keys  integer NOT NULL DEFAULT 0,
    max_api_keys     integer NOT NULL
);

CREATE TABLE security.api_keys (
    key_id       uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES security.workspaces (workspace_id),
    -- Only the prefix (to find the key) and the SHA-256 of the whole key are stored.
    prefix       text NOT NULL CONSTRAINT api_keys_prefix_key UNIQUE,
    key_hash     text NOT NULL,
    role         text NOT NULL,
    -- The member the key acts for, if any: the key then never has more than that member.
    user_id      uuid,
    expires_at   timestamptz,
    revoked_at   timestamptz
);

CREATE INDEX api_keys_workspace_idx ON security.api_keys (workspace_id) WHERE revoked_at IS NULL;

CREATE TABLE security.members (
    workspace_id uuid NOT NULL REFERENCES security.workspaces (workspace_id),
    user_id      uuid NOT NULL,
    role         text NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);

-- Workflow names, compared case-insensitively: unique among a workspace's non-archived
-- workflows; archiving frees the name, restoring takes it again (or is refused).
CREATE TABLE security.workflow_names (
    workflow_id  uuid PRIMARY KEY,
    workspace_id uuid NOT NULL REFERENCES security.workspaces (workspace_id),
    name_key     text NOT NULL,
    archived     boolean NOT NULL DEFAULT false
);

CREATE UNIQUE INDEX workflow_names_active_key ON security.workflow_names (workspace_id, name_key)
    WHERE NOT archived;

-- Idempotency-Key: the first response to a POST, replayed to retries by the same caller.
CREATE SCHEMA IF NOT EXISTS commands;

CREATE TABLE commands.idempotency_keys (
    key_id          uuid NOT NULL,
    idempotency_key text NOT NULL,
    -- SHA-256 of method, path and body: the same key with another request is refused.
    fingerprint     text NOT NULL,
    -- NULL while the first request is in flight.
    status          integer,
    headers         jsonb,
    body            bytea,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key_id, idempotency_key)
);

CREATE INDEX idempotency_keys_created_idx ON commands.idempotency_keys (created_at);
