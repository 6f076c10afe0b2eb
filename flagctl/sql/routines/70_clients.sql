-- Gate clients: registration, acknowledgement, confirmed kills (schemas 17, 18).
--
-- The current definition of each function; `flagctl db init` re-applies this folder after
-- the migrations whenever it changed (flagctl/sql/README.md). Grants stay in the migrations.

-- A gate registers: the row belongs to the calling backend and database user.
CREATE OR REPLACE FUNCTION flagctl.client_register(p_system text, p_host text, p_pid integer, p_application text)
RETURNS bigint
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    INSERT INTO flagctl.clients (system, host, pid, application, db_user, backend_pid, started_at, seen_at)
    VALUES (p_system, left(p_host, 255), p_pid, left(p_application, 255), session_user, pg_backend_pid(),
            now(), clock_timestamp())
    RETURNING id
$$;

-- Heartbeat and acknowledgement in one, of the caller's own row only: seen now (the
-- server's clock); applied_seq never past the system's newest audit row.
CREATE OR REPLACE FUNCTION flagctl.client_ack(p_id bigint, p_seq bigint) RETURNS boolean
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    WITH newest AS (
        SELECT coalesce(max(a.seq), 0) AS seq FROM flagctl.audit a
         WHERE a.system = (SELECT c.system FROM flagctl.clients c WHERE c.id = p_id)
    ), acked AS (
        UPDATE flagctl.clients c
           SET seen_at = clock_timestamp(), applied_seq = least(p_seq, newest.seq),
               applied_at = CASE WHEN c.applied_seq = least(p_seq, newest.seq) THEN c.applied_at
                                 ELSE clock_timestamp() END
          FROM newest
         WHERE c.id = p_id AND c.db_user = session_user AND c.backend_pid = pg_backend_pid()
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM acked)
$$;

-- A gate leaves: its own row only.
CREATE OR REPLACE FUNCTION flagctl.client_unregister(p_id bigint) RETURNS boolean
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    WITH gone AS (
        DELETE FROM flagctl.clients c
         WHERE c.id = p_id AND c.db_user = session_user AND c.backend_pid = pg_backend_pid()
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM gone)
$$;

-- Wait (on the server, so no client clock or sleep is involved) until every client of the
-- system seen within p_live has applied audit row p_seq, or p_timeout has passed. Returns
-- every live client, whether it acknowledged, and when (seconds after the wait started), and
-- the relay it reads through (NULL: it reads the database). A relay's clients count on
-- their own: the relay having the change is not its clients having fetched it.
CREATE OR REPLACE FUNCTION flagctl.wait_acks(p_system text, p_seq bigint, p_timeout interval, p_live interval)
RETURNS TABLE (id bigint, host text, pid integer, application text, applied_seq bigint,
               acked boolean, after_seconds double precision, relay bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    started timestamptz := clock_timestamp();
BEGIN
    LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM flagctl.clients c
                               WHERE c.system = p_system AND c.seen_at > clock_timestamp() - p_live
                                 AND c.applied_seq < p_seq);
        EXIT WHEN clock_timestamp() - started >= p_timeout;
        PERFORM pg_sleep(0.005);
    END LOOP;
    RETURN QUERY
        SELECT c.id, c.host, c.pid, c.application, c.applied_seq, c.applied_seq >= p_seq,
               greatest(0, extract(epoch FROM c.applied_at - started))::double precision, c.relay
          FROM flagctl.clients c
         WHERE c.system = p_system AND c.seen_at > clock_timestamp() - p_live - (clock_timestamp() - started)
         ORDER BY c.id;
END
$$;
