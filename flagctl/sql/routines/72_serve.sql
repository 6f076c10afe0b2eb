-- flagctl serve (schema 35): the tokens a relay accepts, and the clients behind a relay.

-- A token created (tokens.create, which needs flagctl_admin): only its hash is kept. One
-- live token per application of a system.
CREATE OR REPLACE FUNCTION flagctl.token_create(p_system text, p_name text, p_hash text) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('a token', ARRAY['tokens.create']);
    new_id bigint;
BEGIN
    INSERT INTO flagctl.token (system, name, hash, created_by, reason)
    VALUES (p_system, p_name, p_hash, coalesce(ctx.actor, session_user), ctx.reason)
    RETURNING id INTO new_id;
    RETURN new_id;
EXCEPTION
    WHEN unique_violation THEN
        RAISE EXCEPTION 'flagctl: % already has a live token in %', p_name, p_system
            USING ERRCODE = 'unique_violation',
                  HINT = format('revoke it first: flagctl tokens revoke %s', p_name);
END
$$;

-- A token revoked (tokens.revoke): a relay refuses it from its next reload on. Whether one
-- was live.
CREATE OR REPLACE FUNCTION flagctl.token_revoke(p_system text, p_name text) RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('revoking a token', ARRAY['tokens.revoke']);
BEGIN
    UPDATE flagctl.token SET revoked_at = now(), revoked_by = coalesce(ctx.actor, session_user)
     WHERE system = p_system AND name = p_name AND revoked_at IS NULL;
    RETURN FOUND;
END
$$;

-- A client behind a relay, registered by the relay's own backend under the relay's own row
-- (NULL: p_relay is not a relay row of this backend and database user).
CREATE OR REPLACE FUNCTION flagctl.client_register_behind(p_relay bigint, p_host text, p_application text)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    INSERT INTO flagctl.clients (system, host, pid, application, db_user, backend_pid, started_at, seen_at, relay)
    SELECT r.system, left(p_host, 255), 0, left(p_application, 255), session_user, pg_backend_pid(),
           now(), clock_timestamp(), r.id
      FROM flagctl.clients r
     WHERE r.id = p_relay AND r.relay IS NULL AND r.db_user = session_user AND r.backend_pid = pg_backend_pid()
    RETURNING id
$$;

-- Heartbeats and acknowledgements of many clients of this backend in one statement (a
-- relay's clients): each seen now, applied_seq never past its system's newest audit row.
-- The ids of the rows that are this backend's (the others are gone: re-register them).
CREATE OR REPLACE FUNCTION flagctl.client_ack_many(p_ids bigint[], p_seqs bigint[]) RETURNS SETOF bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    WITH given AS (
        SELECT g.id, least(g.seq, (SELECT coalesce(max(a.seq), 0) FROM flagctl.audit a WHERE a.system = c.system)) AS seq
          FROM unnest(p_ids, p_seqs) AS g(id, seq)
          JOIN flagctl.clients c ON c.id = g.id
         WHERE c.db_user = session_user AND c.backend_pid = pg_backend_pid()
    )
    UPDATE flagctl.clients c
       SET seen_at = clock_timestamp(), applied_seq = given.seq,
           applied_at = CASE WHEN c.applied_seq = given.seq THEN c.applied_at ELSE clock_timestamp() END
      FROM given
     WHERE c.id = given.id
    RETURNING c.id
$$;

REVOKE ALL ON FUNCTION flagctl.token_create(text, text, text), flagctl.token_revoke(text, text),
    flagctl.client_register_behind(bigint, text, text), flagctl.client_ack_many(bigint[], bigint[]) FROM PUBLIC;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['flagctl_viewer', 'flagctl_operator'] LOOP
        IF to_regrole(r) IS NOT NULL THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION flagctl.token_create(text, text, text),
                flagctl.token_revoke(text, text), flagctl.client_register_behind(bigint, text, text),
                flagctl.client_ack_many(bigint[], bigint[]) TO %I', r);
        END IF;
    END LOOP;
END
$$;
