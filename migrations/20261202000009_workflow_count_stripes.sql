-- A workspace's active workflows, counted in stripes so that creates in one workspace do not
-- queue on one row.
--
-- The count was a column of the workspace's index row: every create, archive and restore
-- updated that row, so they ran one at a time per workspace, each holding the row until its
-- commit had reached the disk. Now the count is the sum of `security.workflow_stripes` (N rows
-- per workspace, `security.workflow_stripe_count()`, made with the workspace), and a create,
-- archive or restore updates the one stripe its workflow's id hashes to.
--
-- The quota still holds exactly, by `security.count_workflow`:
-- * Far from the limit, a create increments its stripe, and only then (a new snapshot, taken
--   while it holds that stripe) sums the stripes. Of the creates it cannot see yet, each holds a
--   stripe of its own until it commits, so at most N - 1 of them can commit besides it: if its
--   sum plus N - 1 is within the limit, every outcome is. If not (creates raced it to
--   the limit since it looked), it raises serialization_failure (40001) and the command API runs
--   the transaction again, which then takes the exact way.
-- * Near the limit, a create locks every stripe of the workspace, in stripe order (so that two
--   such creates cannot deadlock; the fast way waits for no other lock while it holds its
--   stripe), counts exactly, and increments one stripe or reports the quota exhausted.

CREATE TABLE security.workflow_stripes (
    workspace_id uuid NOT NULL REFERENCES security.workspaces (workspace_id),
    stripe       smallint NOT NULL,
    -- Creates and restores add one, archives subtract one, each on a stripe of its own choice:
    -- one stripe may go negative; the sum is the count.
    active       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, stripe)
);

-- How many stripes each workspace has: more than the creates one workspace runs at once.
CREATE FUNCTION security.workflow_stripe_count() RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT 16';

INSERT INTO security.workflow_stripes (workspace_id, stripe, active)
SELECT w.workspace_id, s, CASE WHEN s = 0 THEN w.active_workflows ELSE 0 END
FROM security.workspaces w, generate_series(0, security.workflow_stripe_count() - 1) AS s;

ALTER TABLE security.workspaces DROP COLUMN active_workflows;

-- Adds `p_delta` (+1 or -1) to the workspace's active workflows, on the stripe of workflow
-- `p_workflow_id`. Returns false, and changes nothing, when +1 would pass the plan's limit.
-- Raises 40001 when a race near the limit means the transaction must run again.
CREATE FUNCTION security.count_workflow(p_workspace_id uuid, p_workflow_id uuid, p_delta integer)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_stripes integer := security.workflow_stripe_count();
    v_stripe  smallint := (hashtext(p_workflow_id::text) % v_stripes + v_stripes) % v_stripes;
    v_max     integer;
    v_total   bigint;
BEGIN
    IF p_delta <= 0 THEN
        UPDATE security.workflow_stripes SET active = active + p_delta
        WHERE workspace_id = p_workspace_id AND stripe = v_stripe;
        RETURN true;
    END IF;

    SELECT max_workflows INTO v_max FROM security.workspaces WHERE workspace_id = p_workspace_id;
    SELECT coalesce(sum(active), 0) INTO v_total FROM security.workflow_stripes WHERE workspace_id = p_workspace_id;

    IF v_total + p_delta + 2 * v_stripes <= v_max THEN
        UPDATE security.workflow_stripes SET active = active + p_delta
        WHERE workspace_id = p_workspace_id AND stripe = v_stripe;
        -- A statement of its own, so that its snapshot is taken while this stripe is held.
        SELECT sum(active) INTO v_total FROM security.workflow_stripes WHERE workspace_id = p_workspace_id;
        IF v_total + v_stripes - 1 <= v_max THEN
            RETURN true;
        END IF;
        RAISE EXCEPTION 'creates raced this one to the workflow quota of workspace %', p_workspace_id
            USING ERRCODE = 'serialization_failure';
    END IF;

    PERFORM 1 FROM security.workflow_stripes WHERE workspace_id = p_workspace_id ORDER BY stripe FOR UPDATE;
    SELECT sum(active) INTO v_total FROM security.workflow_stripes WHERE workspace_id = p_workspace_id;
    IF v_total + p_delta > v_max THEN
        RETURN false;
    END IF;
    UPDATE security.workflow_stripes SET active = active + p_delta
    WHERE workspace_id = p_workspace_id AND stripe = v_stripe;
    RETURN true;
END;
$$;
