-- The event store: streams (one row per stream: its version, hash-chain head and tombstone) and
-- events (the immutable log). See ARCHITECTURE.md decisions 1-4.

CREATE SCHEMA IF NOT EXISTS event_store;

CREATE TABLE event_store.streams (
    stream_id    text PRIMARY KEY,
    category     text NOT NULL,
    workspace_id uuid NOT NULL,
    -- Version of the last event; 0 only inside the transaction that creates the stream.
    version      bigint NOT NULL CHECK (version >= 0),
    -- Hash of the last event: the head of the chain, so truncation is detectable.
    last_hash    text NOT NULL,
    deleted_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX streams_workspace_category_idx ON event_store.streams (workspace_id, category);

CREATE TABLE event_store.events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The appending transaction. Readers of the global log only read below
    -- pg_snapshot_xmin(pg_current_snapshot()) and order by (tx_id, global_position): positions
    -- come from a sequence and commit out of order, transaction ids below xmin never change.
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text NOT NULL REFERENCES event_store.streams (stream_id),
    version         bigint NOT NULL CHECK (version >= 1),
    event_id        uuid NOT NULL,
    event_type      text NOT NULL,
    schema_version  integer NOT NULL CHECK (schema_version >= 1),
    workspace_id    uuid NOT NULL,
    occurred_at     timestamptz NOT NULL,
    actor           jsonb NOT NULL,
    correlation_id  text,
    causation_id    text,
    payload         jsonb NOT NULL,
    metadata        jsonb NOT NULL,
    prev_hash       text NOT NULL,
    hash            text NOT NULL,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

CREATE INDEX events_log_order_idx ON event_store.events (tx_id, global_position);
CREATE INDEX events_workspace_idx ON event_store.events (workspace_id, global_position);

-- The log is append-only. A superuser can still bypass this (session_replication_role), which
-- is what the hash chain is for: `flowfuse events verify` finds any such change.
CREATE FUNCTION event_store.reject_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event_store.events is append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON event_store.events
    FOR EACH ROW EXECUTE FUNCTION event_store.reject_event_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON event_store.events
    FOR EACH STATEMENT EXECUTE FUNCTION event_store.reject_event_change();
