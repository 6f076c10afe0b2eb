-- kill --break-locks: the kill's blockers, and ending them (schema 23).
--
-- The current definition of each function; `flagctl db init` re-applies this folder after
-- the migrations whenever it changed (flagctl/sql/README.md). Grants stay in the migrations.
--
-- The functions run as flagctl's owner: to see every session's query and to signal it, a
-- non-superuser owner needs pg_read_all_stats and pg_signal_backend (without them a blocker is
-- shown as not visible and is not ended, and the audit says so).

-- Whether a backend is one a kill's lock breaker may act for: the caller's own (same user),
-- in this database, and waiting now on a lock a kill itself asks for — on flagctl's tables or
-- a bound table, in a mode a kill's statements take (ACCESS SHARE to read, ROW SHARE to lock
-- rows, ROW EXCLUSIVE to write; never a stronger one a psql session could ask for to make
-- every reader its "blocker"), a row of one (its tuple, or a transaction-id wait while holding
-- such a tuple lock), or one of flagctl's own advisory keys (`SYSTEM/FLAG`, `SYSTEM/*`, for a
-- published system) — not any advisory lock of the application's. (A kill's declaration is
-- not visible to another session before it commits, so the breaker judges the wait itself.)
CREATE OR REPLACE FUNCTION flagctl.kill_waiter(p_waiter integer) RETURNS boolean
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    WITH guarded AS (
        SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'flagctl'::regnamespace
        UNION
        SELECT to_regclass(format('%I.%I', b.table_schema, b.table_name)) FROM flagctl.binding b
    ),
    waits AS (
        SELECT w.*
          FROM pg_stat_activity a
          JOIN pg_locks w ON w.pid = a.pid AND NOT w.granted
         WHERE a.pid = p_waiter
           AND a.usesysid = (SELECT oid FROM pg_roles WHERE rolname = session_user)
           AND a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
    )
    SELECT EXISTS (
        SELECT 1 FROM waits w
         WHERE (w.locktype = 'relation' AND w.relation IN (SELECT oid FROM guarded)
                AND w.mode IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock'))
            OR (w.locktype = 'tuple' AND w.relation IN (SELECT oid FROM guarded))
            OR (w.locktype = 'transactionid'
                AND EXISTS (SELECT 1 FROM pg_locks t
                             WHERE t.pid = w.pid AND t.locktype = 'tuple' AND t.granted
                               AND t.relation IN (SELECT oid FROM guarded)))
            OR (w.locktype = 'advisory'
                AND EXISTS (SELECT 1
                              FROM flagctl.catalogue c,
                                   LATERAL (SELECT c.system || '/*' AS name
                                            UNION ALL
                                            SELECT c.system || '/' || f FROM jsonb_object_keys(c.catalogue->'flags') AS f)
                                           AS k(name),
                                   LATERAL (SELECT hashtextextended(k.name, 0) AS h) AS hk
                             WHERE c.version = (SELECT max(v.version) FROM flagctl.catalogue v WHERE v.system = c.system)
                               AND w.classid::bigint = (hk.h >> 32) & 4294967295
                               AND w.objid::bigint = hk.h & 4294967295)))
$$;

-- Who blocks the waiter (pg_blocking_pids(): whatever the lock — row, MultiXact, ACCESS
-- EXCLUSIVE, advisory), as the database sees them (NULL where not visible to the owner).
-- The security role only, and only for the caller's own kill's waiting backend.
CREATE OR REPLACE FUNCTION flagctl.blockers_of(p_waiter integer)
RETURNS TABLE (pid integer, db_user text, application text, state text, query text,
               xact_start timestamptz, xact_seconds numeric, superuser boolean, same_database boolean)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    IF NOT flagctl.may('kill') THEN
        RAISE EXCEPTION 'flagctl: % may not break a kill''s locks: it needs the role flagctl_security',
            session_user USING ERRCODE = 'insufficient_privilege',
                               HINT = format('flagctl db grant security %s', session_user);
    END IF;
    IF NOT flagctl.kill_waiter(p_waiter) THEN
        RETURN;  -- not (or no longer) this user's, waiting on a kill's lock: nothing to break
    END IF;
    RETURN QUERY
    SELECT b.pid, r.rolname::text, nullif(b.application_name, ''), b.state,
           left(regexp_replace(b.query, '\s+', ' ', 'g'), 200),
           b.xact_start, round(extract(epoch FROM clock_timestamp() - b.xact_start), 1),
           coalesce(r.rolsuper, false),
           b.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
      FROM unnest(pg_blocking_pids(p_waiter)) AS blocking(pid)
      JOIN pg_stat_activity b ON b.pid = blocking.pid
      LEFT JOIN pg_roles r ON r.oid = b.usesysid
     ORDER BY b.xact_start NULLS LAST, b.pid;
END
$$;

-- End one blocker of the waiter (cancel its statement, or terminate its session), if it still
-- blocks it, is in this database and is not a superuser's. Audited as kill.break_lock, with
-- what was seen and done; returns what was done: cancelled, terminated, or "not ended: why".
CREATE OR REPLACE FUNCTION flagctl.end_blocker(p_waiter integer, p_pid integer, p_terminate boolean,
                                    p_system text, p_actor text, p_reason text, p_command text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    b      record;
    done   text;
BEGIN
    IF NOT flagctl.may('kill') THEN
        RAISE EXCEPTION 'flagctl: % may not break a kill''s locks: it needs the role flagctl_security',
            session_user USING ERRCODE = 'insufficient_privilege',
                               HINT = format('flagctl db grant security %s', session_user);
    END IF;
    IF txid_current_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'flagctl: end_blocker runs in a transaction of its own (this one has written already)'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT flagctl.kill_waiter(p_waiter) THEN
        RAISE EXCEPTION 'flagctl: backend % is not %''s, waiting on a lock a kill takes, in this database',
            p_waiter, session_user USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT * INTO b FROM flagctl.blockers_of(p_waiter) AS x WHERE x.pid = p_pid;
    IF NOT FOUND THEN
        RETURN 'not ended: it no longer blocks the kill';
    END IF;
    IF NOT b.same_database THEN
        done := 'not ended: it is in another database';
    ELSIF b.superuser THEN
        done := 'not ended: a superuser''s session (flagctl never ends one)';
    ELSE
        BEGIN
            IF (CASE WHEN p_terminate THEN pg_terminate_backend(p_pid) ELSE pg_cancel_backend(p_pid) END) THEN
                done := CASE WHEN p_terminate THEN 'terminated' ELSE 'cancelled' END;
            ELSE
                done := 'not ended: the signal was not delivered (the session has ended)';
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            done := format('not ended: %s (flagctl''s owner needs pg_signal_backend)', SQLERRM);
        END;
    END IF;
    -- The record is believed (it is the database's own), but the declaration that carries it
    -- is gone before the function returns: it declares nothing else in the caller's transaction.
    INSERT INTO flagctl.change_context (txid, action, actor, reason, command, db_user)
    VALUES (txid_current(), 'kill.break_lock', nullif(p_actor, ''), nullif(p_reason, ''),
            nullif(p_command, ''), session_user);
    INSERT INTO flagctl.audit (action, system, scope, target, after)
    VALUES ('kill.break_lock', p_system, NULL, format('pid %s', p_pid),
            jsonb_build_object('pid', b.pid, 'db_user', b.db_user, 'application', b.application,
                               'state', b.state, 'query', b.query, 'xact_start', b.xact_start,
                               'xact_seconds', b.xact_seconds,
                               'kill_pid', p_waiter, 'done', done));
    DELETE FROM flagctl.change_context WHERE txid = txid_current();
    RETURN done;
END
$$;
