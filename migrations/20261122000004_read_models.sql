-- Read models (schema read_model), built by the projector from the Kafka topics, and the
-- bookkeeping of the relay and the projector (schema projections). Everything here can be
-- dropped and rebuilt from the event store. Every read-model row carries workspace_id.

CREATE SCHEMA IF NOT EXISTS read_model;
CREATE SCHEMA IF NOT EXISTS projections;

CREATE TABLE read_model.workspaces (
    workspace_id uuid PRIMARY KEY,
    name         text NOT NULL,
    slug         text NOT NULL,
    plan         text NOT NULL,
    settings     jsonb NOT NULL DEFAULT '{}',
    version      bigint NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE read_model.members (
    workspace_id uuid NOT NULL,
    user_id      uuid NOT NULL,
    email        text NOT NULL,
    name         text,
    role         text NOT NULL,
    added_at     timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);

CREATE TABLE read_model.teams (
    workspace_id uuid NOT NULL,
    team_id      uuid NOT NULL,
    name         text NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, team_id)
);

CREATE TABLE read_model.team_members (
    workspace_id uuid NOT NULL,
    team_id      uuid NOT NULL,
    user_id      uuid NOT NULL,
    PRIMARY KEY (workspace_id, team_id, user_id)
);

-- No key material here: neither the key nor its hash.
CREATE TABLE read_model.api_keys (
    workspace_id uuid NOT NULL,
    key_id       uuid NOT NULL,
    name         text NOT NULL,
    role         text NOT NULL,
    prefix       text NOT NULL,
    user_id      uuid,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    rotated_at   timestamptz,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, key_id)
);

-- array_to_string is only STABLE in general (element types have output functions); for text[]
-- it is immutable, which a generated column needs.
CREATE FUNCTION read_model.tags_text(tags text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT array_to_string(tags, ' ') $$;

CREATE TABLE read_model.workflows (
    workspace_id      uuid NOT NULL,
    workflow_id       uuid NOT NULL,
    name              text NOT NULL,
    description       text,
    tags              text[] NOT NULL DEFAULT '{}',
    team_id           uuid,
    status            text NOT NULL,
    status_before_archive text NOT NULL DEFAULT 'draft',
    definition        jsonb NOT NULL,
    version           bigint NOT NULL,
    published_version bigint,
    environments      jsonb NOT NULL DEFAULT '{}',
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    search            tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', name), 'A')
        || setweight(to_tsvector('simple', coalesce(description, '')), 'B')
        || setweight(to_tsvector('simple', read_model.tags_text(tags)), 'A')
    ) STORED,
    PRIMARY KEY (workspace_id, workflow_id)
);

CREATE INDEX workflows_search_idx ON read_model.workflows USING gin (search);
CREATE INDEX workflows_updated_idx ON read_model.workflows (workspace_id, updated_at DESC);
CREATE INDEX workflows_name_idx ON read_model.workflows (workspace_id, name);

-- One row per version of each workflow (every event of its stream), with the definition in force.
CREATE TABLE read_model.workflow_versions (
    workspace_id uuid NOT NULL,
    workflow_id  uuid NOT NULL,
    version      bigint NOT NULL,
    event_type   text NOT NULL,
    author       text NOT NULL,
    message      text,
    occurred_at  timestamptz NOT NULL,
    position     bigint NOT NULL,
    definition   jsonb NOT NULL,
    PRIMARY KEY (workspace_id, workflow_id, version)
);

CREATE TABLE read_model.audit_log (
    workspace_id   uuid NOT NULL,
    position       bigint NOT NULL,
    occurred_at    timestamptz NOT NULL,
    actor_kind     text NOT NULL,
    actor_id       text NOT NULL,
    event_type     text NOT NULL,
    stream_id      text NOT NULL,
    version        bigint NOT NULL,
    correlation_id text,
    summary        text NOT NULL,
    PRIMARY KEY (workspace_id, position)
);

CREATE INDEX audit_log_time_idx ON read_model.audit_log (workspace_id, occurred_at);

CREATE TABLE read_model.activity_daily (
    workspace_id uuid NOT NULL,
    day          date NOT NULL,
    events       bigint NOT NULL,
    PRIMARY KEY (workspace_id, day)
);

-- Per projected stream, the last version applied: duplicates are dropped, gaps are repaired.
CREATE TABLE read_model.stream_versions (
    stream_id text PRIMARY KEY,
    version   bigint NOT NULL
);

-- The global position each projection has reached (the highest applied).
CREATE TABLE projections.positions (
    projection text PRIMARY KEY,
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Kafka offsets of the projector's consumer group, written in the same transaction as the
-- read-model changes they account for.
CREATE TABLE projections.kafka_offsets (
    consumer_group text NOT NULL,
    topic          text NOT NULL,
    partition      integer NOT NULL,
    next_offset    bigint NOT NULL,
    PRIMARY KEY (consumer_group, topic, partition)
);

-- Events whose projection failed for good.
CREATE TABLE projections.dead_letters (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id      text NOT NULL,
    version        bigint NOT NULL,
    event_id       uuid NOT NULL,
    global_position bigint NOT NULL,
    event_type     text NOT NULL,
    error          text NOT NULL,
    failed_at      timestamptz NOT NULL DEFAULT now()
);

-- The relay: where it is in the global log, and the last offset the broker acknowledged per
-- partition (a broker whose high watermark falls below it has lost data).
CREATE TABLE projections.relay_checkpoint (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    tx_id     bigint NOT NULL,
    position  bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO projections.relay_checkpoint (tx_id, position) VALUES (0, 0);

CREATE TABLE projections.relay_partitions (
    topic       text NOT NULL,
    partition   integer NOT NULL,
    last_offset bigint NOT NULL,
    PRIMARY KEY (topic, partition)
);
