-- How every service finds an API key for authentication: the key's record in the security index
-- by its public prefix, with the role of the member it acts for (NULL if it acts for nobody, or
-- for a member who is gone). One definition, used by the command API and the query API alike.

CREATE FUNCTION security.api_key_by_prefix(p_prefix text)
RETURNS TABLE (
    key_id       uuid,
    workspace_id uuid,
    key_hash     text,
    role         text,
    user_id      uuid,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    member_role  text
)
LANGUAGE sql STABLE AS $$
    SELECT k.key_id, k.workspace_id, k.key_hash, k.role, k.user_id, k.expires_at, k.revoked_at, m.role
    FROM security.api_keys k
    LEFT JOIN security.members m ON m.workspace_id = k.workspace_id AND m.user_id = k.user_id
    WHERE k.prefix = p_prefix
$$;
