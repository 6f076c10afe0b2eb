-- flagctl schema, version 17: confirmed kills.
--
-- Every gate (flagctl.gate) registers here and, whenever it has applied the state up to an
-- audit row, says so (applied_seq, applied_at) — and heartbeats (seen_at) while it runs.
-- `flagctl kill --wait-ack` then waits, on the server, until every live client has applied
-- the kill, and names the ones that have not.
CREATE TABLE flagctl.clients (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system      text        NOT NULL,
    host        text        NOT NULL,
    pid         integer     NOT NULL,
    application text        NOT NULL,
    db_user     text        NOT NULL DEFAULT session_user,
    started_at  timestamptz NOT NULL DEFAULT now(),
    seen_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    applied_seq bigint      NOT NULL DEFAULT 0,
    applied_at  timestamptz
);
CREATE INDEX clients_by_system ON flagctl.clients (system, seen_at);

-- Wait (on the server, so no client clock or sleep is involved) until every client of the
-- system seen within p_live has applied audit row p_seq, or p_timeout has passed. Returns
-- every live client, whether it acknowledged, and when (seconds after the wait started).
CREATE FUNCTION flagctl.wait_acks(p_system text, p_seq bigint, p_timeout interval, p_live interval)
RETURNS TABLE (id bigint, host text, pid integer, application text, applied_seq bigint,
               acked boolean, after_seconds double precision)
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
               greatest(0, extract(epoch FROM c.applied_at - started))::double precision
          FROM flagctl.clients c
         WHERE c.system = p_system AND c.seen_at > clock_timestamp() - p_live - (clock_timestamp() - started)
         ORDER BY c.id;
END
$$;

REVOKE ALL ON flagctl.clients FROM PUBLIC;
DO $$
BEGIN
    IF to_regrole('flagctl_viewer') IS NOT NULL THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON flagctl.clients TO flagctl_viewer;  -- gates register
    END IF;
    IF to_regrole('flagctl_operator') IS NOT NULL THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON flagctl.clients TO flagctl_operator;
    END IF;
EXCEPTION
    WHEN insufficient_privilege OR undefined_object THEN
        RAISE NOTICE 'grants on clients not given (%)', SQLERRM;
END
$$;
