-- flagctl schema, version 18: the database believes who acts, and as what, only from
-- flagctl's own functions.
--
-- Until now flagctl declared actor, action and reason with set_config('flagctl.*'), and the
-- audit believed them from any member of a writing role: a release member could set
-- flagctl.action = 'approve' and flagctl.actor = 'bob' in psql, UPDATE a bound table, and be
-- recorded as bob approving a request. Session settings are anyone's to set.
--
-- Now a change is declared by calling flagctl.begin_change (SECURITY DEFINER): it checks that
-- the session's user holds the role the action needs, and records the declaration in
-- flagctl.change_context, keyed by the transaction, which no flagctl role can write. The
-- audit believes a declaration only from there; a write in a transaction without one is
-- recorded as sql.insert / update / delete under its database user, whatever the session's
-- settings claimed (kept in `claimed`). The security role's guard reads the action there too.
--
-- Gate clients (flagctl.clients) register, acknowledge and leave only through functions
-- that tie a row to the backend and database user that registered it.

CREATE TABLE flagctl.change_context (
    txid       bigint      PRIMARY KEY,
    action     text        NOT NULL,
    actor      text,
    reason     text,
    command    text,
    request_id text,
    forced     boolean     NOT NULL DEFAULT false,
    db_user    text        NOT NULL,
    begun_at   timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON flagctl.change_context FROM PUBLIC;

-- The flagctl role an action needs (flagctl.store.roles.role_for says the same).
CREATE FUNCTION flagctl.role_for(p_action text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT CASE
        WHEN base IN ('kill', 'release') THEN 'flagctl_security'
        WHEN base LIKE 'freeze%' THEN 'flagctl_ops'
        ELSE 'flagctl_release' END
      FROM (SELECT regexp_replace(regexp_replace(p_action, '\.refused$', ''), '^drill\.', '') AS base) AS a
$$;

-- Whether the session's user may act as this action: the schema's owner, flagctl_operator
-- and flagctl_admin may do everything; a review is for any writing role; else the action's role.
CREATE FUNCTION flagctl.may(p_action text) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER')
        OR EXISTS (SELECT 1
                     FROM unnest(CASE WHEN p_action IN ('review', 'review.refused')
                                      THEN ARRAY['flagctl_release', 'flagctl_security', 'flagctl_ops']
                                      ELSE ARRAY[flagctl.role_for(p_action)] END
                                 || ARRAY['flagctl_operator', 'flagctl_admin']) AS r(name)
                    WHERE to_regrole(r.name) IS NOT NULL
                      AND pg_has_role(session_user, to_regrole(r.name), 'MEMBER'))
$$;

-- Declare the change this transaction makes: who acts, as what, why. Refused (insufficient
-- privilege) unless the session's user holds the action's role. Transaction-local: the
-- declaration ends with the transaction.
CREATE FUNCTION flagctl.begin_change(p_action text, p_actor text, p_reason text, p_command text,
                                     p_request_id text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    needed text := flagctl.role_for(p_action);
BEGIN
    IF p_action IS NULL OR p_action !~ '^[a-z][a-z0-9_.:-]*$' OR p_action LIKE 'sql.%' THEN
        RAISE EXCEPTION 'flagctl: % is not an action flagctl records', coalesce(p_action, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_action IN ('approve', 'approve.refused', 'manifest.publish') THEN
        RAISE EXCEPTION 'flagctl: % is recorded only by flagctl''s own function for it', p_action
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT flagctl.may(p_action) THEN
        RAISE EXCEPTION 'flagctl: % may not %: it needs the role %', session_user, p_action, needed
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('flagctl db grant %s %s', substr(needed, 9), session_user);
    END IF;
    INSERT INTO flagctl.change_context (txid, action, actor, reason, command, request_id, db_user)
    VALUES (txid_current(), p_action, nullif(p_actor, ''), nullif(p_reason, ''), nullif(p_command, ''),
            nullif(p_request_id, ''), session_user)
    ON CONFLICT (txid) DO UPDATE
       SET action = excluded.action, actor = excluded.actor, reason = excluded.reason,
           command = excluded.command, request_id = excluded.request_id, forced = false;
    -- The same, readable by the statements that record who set a freeze or an exemption.
    PERFORM set_config('flagctl.actor', coalesce(p_actor, ''), true),
            set_config('flagctl.reason', coalesce(p_reason, ''), true),
            set_config('flagctl.action', p_action, true),
            set_config('flagctl.command', coalesce(p_command, ''), true),
            set_config('flagctl.request_id', coalesce(p_request_id, ''), true);
    RETURN txid_current();
END
$$;

-- The change declared for this transaction is forced (it overrode a rule): the audit says so,
-- and a forced change needs a post-action review. Only ever adds scrutiny.
CREATE FUNCTION flagctl.mark_forced() RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    UPDATE flagctl.change_context SET forced = true WHERE txid = txid_current();
$$;

-- The declaration of this transaction, if flagctl.begin_change made one.
CREATE FUNCTION flagctl.current_change() RETURNS flagctl.change_context
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    SELECT * FROM flagctl.change_context WHERE txid = txid_current_if_assigned()
$$;

-- Believe a declaration only from flagctl.change_context; keep any other claim in `claimed`.
CREATE OR REPLACE FUNCTION flagctl.audit_chain() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    declared boolean;
    ctx flagctl.change_context;
BEGIN
    NEW.seq := nextval('flagctl.audit_seq_gen');
    NEW.at := now();
    NEW.txid := txid_current();
    NEW.db_user := session_user;
    NEW.prev_hash := NULL;
    NEW.claimed := NULL;
    NEW.request_id := nullif(current_setting('flagctl.request_id', true), '');
    SELECT * INTO ctx FROM flagctl.change_context c WHERE c.txid = NEW.txid;
    IF FOUND THEN  -- declared through begin_change, by a user it allowed: believed, as declared there
        NEW.actor := ctx.actor;
        NEW.reason := ctx.reason;
        NEW.command := ctx.command;
        NEW.request_id := ctx.request_id;
        NEW.forced := ctx.forced;
        NEW.action := ctx.action;
    ELSE
        declared := NEW.actor IS NOT NULL OR NEW.reason IS NOT NULL OR NEW.command IS NOT NULL
                    OR NEW.forced OR NEW.action NOT LIKE 'sql.%' OR NEW.request_id IS NOT NULL;
        IF declared THEN
            NEW.claimed := jsonb_strip_nulls(jsonb_build_object(
                'actor', NEW.actor, 'reason', NEW.reason, 'command', NEW.command,
                'action', CASE WHEN NEW.action NOT LIKE 'sql.%' THEN NEW.action END,
                'forced', CASE WHEN NEW.forced THEN true END, 'request_id', NEW.request_id));
            NEW.actor := NULL;
            NEW.reason := NULL;
            NEW.command := NULL;
            NEW.forced := false;
            NEW.request_id := NULL;
            IF NEW.action NOT LIKE 'sql.%' THEN  -- what the row images say happened
                NEW.action := CASE
                    WHEN NEW.before IS NULL AND NEW.after IS NOT NULL THEN 'sql.insert'
                    WHEN NEW.before IS NOT NULL AND NEW.after IS NULL THEN 'sql.delete'
                    WHEN NEW.before IS NOT NULL THEN 'sql.update'
                    ELSE 'sql.truncate' END;
            END IF;
        END IF;
    END IF;
    NEW.hash := flagctl.audit_digest(NEW);
    INSERT INTO flagctl.audit_unsealed (seq) VALUES (NEW.seq);
    RETURN NEW;
END
$$;

-- A security-only session writes flag values only to kill or to release — as declared
-- through begin_change, never as a session setting says.
CREATE OR REPLACE FUNCTION flagctl.guard_flag_write() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    action text := coalesce((SELECT c.action FROM flagctl.change_context c WHERE c.txid = txid_current()),
                            'sql.' || lower(TG_OP));
BEGIN
    IF pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER')
       OR coalesce(pg_has_role(session_user, to_regrole('flagctl_operator'), 'MEMBER'), false)
       OR coalesce(pg_has_role(session_user, to_regrole('flagctl_release'), 'MEMBER'), false) THEN
        RETURN coalesce(NEW, OLD);
    END IF;
    IF coalesce(pg_has_role(session_user, to_regrole('flagctl_security'), 'MEMBER'), false)
       AND action IN ('kill', 'release', 'drill.kill', 'drill.release') THEN
        RETURN coalesce(NEW, OLD);
    END IF;
    RAISE EXCEPTION 'flagctl: % may not change flag values (%): it needs the role flagctl_release', session_user, action
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'flagctl db grant release ' || session_user;
END
$$;

-- Gate clients: a row belongs to the backend and database user that registered it.
ALTER TABLE flagctl.clients ADD COLUMN backend_pid integer;

CREATE FUNCTION flagctl.client_register(p_system text, p_host text, p_pid integer, p_application text)
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
CREATE FUNCTION flagctl.client_ack(p_id bigint, p_seq bigint) RETURNS boolean
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

CREATE FUNCTION flagctl.client_unregister(p_id bigint) RETURNS boolean
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

REVOKE ALL ON FUNCTION flagctl.begin_change(text, text, text, text, text), flagctl.mark_forced(),
    flagctl.current_change(), flagctl.client_register(text, text, integer, text),
    flagctl.client_ack(bigint, bigint), flagctl.client_unregister(bigint) FROM PUBLIC;
DO $$
BEGIN
    IF to_regrole('flagctl_viewer') IS NOT NULL THEN
        REVOKE INSERT, UPDATE, DELETE ON flagctl.clients FROM flagctl_viewer;
        GRANT EXECUTE ON FUNCTION flagctl.client_register(text, text, integer, text),
              flagctl.client_ack(bigint, bigint), flagctl.client_unregister(bigint),
              flagctl.current_change() TO flagctl_viewer;
        GRANT EXECUTE ON FUNCTION flagctl.begin_change(text, text, text, text, text), flagctl.mark_forced()
            TO flagctl_release, flagctl_security, flagctl_ops, flagctl_admin;
    END IF;
    IF to_regrole('flagctl_operator') IS NOT NULL THEN
        REVOKE INSERT, UPDATE, DELETE ON flagctl.clients FROM flagctl_operator;
        GRANT EXECUTE ON FUNCTION flagctl.client_register(text, text, integer, text),
              flagctl.client_ack(bigint, bigint), flagctl.client_unregister(bigint),
              flagctl.current_change(), flagctl.begin_change(text, text, text, text, text),
              flagctl.mark_forced() TO flagctl_operator;
    END IF;
EXCEPTION
    WHEN insufficient_privilege OR undefined_object THEN
        RAISE NOTICE 'grants on the change functions not given (%)', SQLERRM;
END
$$;
