-- event_store.append_events, writing the stream's row once per append instead of twice.
--
-- The first version took the stream's row lock with an upsert (`ON CONFLICT DO UPDATE SET
-- version = s.version`), which writes a new row version only to lock it, and then wrote the row
-- again with the new head. Now an existing stream (expected version > 0) is locked with
-- `SELECT … FOR NO KEY UPDATE`, which writes no row version (and does not block the foreign-key
-- checks of other appends, which take KEY SHARE); a new stream (expected version 0) is inserted
-- with `ON CONFLICT DO NOTHING`, and a stream that exists already is then locked and reported.
-- Errors, results and idempotent replays are those of the first version (see its migration).

CREATE OR REPLACE FUNCTION event_store.append_events(
    p_stream_id        text,
    p_category         text,
    p_workspace_id     uuid,
    p_expected_version bigint,
    p_event_ids        uuid[],
    p_event_types      text[],
    p_schema_versions  integer[],
    p_occurred_at      timestamptz[],
    p_actors           jsonb[],
    p_correlation_ids  text[],
    p_causation_ids    text[],
    p_payloads         jsonb[],
    p_metadata         jsonb[],
    p_canonical        bytea[]
) RETURNS TABLE (first_version bigint, last_version bigint, first_position bigint, last_position bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_count     integer := cardinality(p_event_ids);
    v_version   bigint;
    v_hash      text;
    v_deleted   boolean;
    v_workspace uuid;
    v_prev      text[] := '{}';
    v_hashes    text[] := '{}';
    v_stored       integer;
    v_same_stream  boolean;
    v_offsets      integer;
BEGIN
    IF p_expected_version = 0 THEN
        INSERT INTO event_store.streams (stream_id, category, workspace_id, version, last_hash)
        VALUES (p_stream_id, p_category, p_workspace_id, 0, repeat('0', 64))
        ON CONFLICT (stream_id) DO NOTHING
        RETURNING 0, repeat('0', 64), false, p_workspace_id
        INTO v_version, v_hash, v_deleted, v_workspace;
    END IF;
    IF v_version IS NULL THEN
        SELECT s.version, s.last_hash, s.deleted_at IS NOT NULL, s.workspace_id
        INTO v_version, v_hash, v_deleted, v_workspace
        FROM event_store.streams s
        WHERE s.stream_id = p_stream_id
        FOR NO KEY UPDATE;
        -- No such stream: as the first version, which created it at version 0 and rolled back.
        v_version := coalesce(v_version, 0);
        v_deleted := coalesce(v_deleted, false);
        v_workspace := coalesce(v_workspace, p_workspace_id);
    END IF;

    IF v_deleted THEN
        RAISE EXCEPTION 'stream % is deleted', p_stream_id USING ERRCODE = 'FF002';
    END IF;
    IF v_workspace <> p_workspace_id THEN
        RAISE EXCEPTION 'stream % belongs to another workspace', p_stream_id USING ERRCODE = 'FF003';
    END IF;

    IF v_version <> p_expected_version THEN
        -- Perhaps this very append was stored before and is being retried: then every event id
        -- is stored, in this stream, at consecutive versions in this order.
        SELECT count(*)::integer, coalesce(bool_and(e.stream_id = p_stream_id), false),
               count(DISTINCT e.version - ids.ord)::integer,
               min(e.version), max(e.version), min(e.global_position), max(e.global_position)
        INTO v_stored, v_same_stream, v_offsets, first_version, last_version, first_position, last_position
        FROM unnest(p_event_ids) WITH ORDINALITY AS ids(id, ord)
        JOIN event_store.events e ON e.event_id = ids.id;
        IF v_stored = v_count AND v_same_stream AND v_offsets = 1 THEN
            RETURN NEXT;
            RETURN;
        ELSIF v_stored > 0 THEN
            RAISE EXCEPTION 'event ids of this append are already stored, but not as this append'
                USING ERRCODE = 'FF004';
        END IF;
        RAISE EXCEPTION 'stream % is at version %, expected %', p_stream_id, v_version, p_expected_version
            USING ERRCODE = 'FF001', DETAIL = v_version::text;
    END IF;

    FOR i IN 1 .. v_count LOOP
        v_prev[i] := v_hash;
        v_hash := encode(sha256(convert_to(v_hash, 'UTF8') || p_canonical[i]), 'hex');
        v_hashes[i] := v_hash;
    END LOOP;

    RETURN QUERY
    WITH appended AS (
        INSERT INTO event_store.events (stream_id, version, event_id, event_type, schema_version, workspace_id,
            occurred_at, actor, correlation_id, causation_id, payload, metadata, prev_hash, hash)
        SELECT p_stream_id, p_expected_version + e.ord, e.event_id, e.event_type, e.schema_version, p_workspace_id,
               e.occurred_at, e.actor, e.correlation_id, e.causation_id, e.payload, e.metadata,
               v_prev[e.ord], v_hashes[e.ord]
        FROM unnest(p_event_ids, p_event_types, p_schema_versions, p_occurred_at, p_actors, p_correlation_ids,
                    p_causation_ids, p_payloads, p_metadata)
             WITH ORDINALITY AS e(event_id, event_type, schema_version, occurred_at, actor, correlation_id,
                                  causation_id, payload, metadata, ord)
        ORDER BY e.ord
        RETURNING global_position
    )
    SELECT p_expected_version + 1, p_expected_version + v_count, min(a.global_position), max(a.global_position)
    FROM appended a;

    UPDATE event_store.streams SET version = p_expected_version + v_count, last_hash = v_hash
    WHERE stream_id = p_stream_id;
END;
$$;
