-- The flagctl schema of a fresh install: `make schema-dump` writes this file, and a test
-- (tests/db/test_schema_dump.py) checks it is what `flagctl db init` installs. Do not edit.

--
-- PostgreSQL database dump
--


SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: flagctl; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA flagctl;


--
-- Name: approve_request(bigint, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.approve_request(p_id bigint, p_system text, p_actor text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    req flagctl.requests;
BEGIN
    SELECT * INTO req FROM flagctl.requests r WHERE r.id = p_id AND r.system = p_system FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flagctl: no request % for system %', p_id, p_system USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT flagctl.may(req.action) THEN
        RAISE EXCEPTION 'flagctl: % may not approve %: it needs the role %', session_user, req.action,
            flagctl.role_for(req.action)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- The guard on the table refuses the requester, an expired and a decided request.
    UPDATE flagctl.requests SET status = 'approved', approved_actor = nullif(p_actor, '') WHERE id = p_id;
    RETURN p_id;
END
$$;


--
-- Name: approved_here(text, text, text, text, jsonb, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.approved_here(p_system text, p_flag text, p_scope text, p_type text, p_before jsonb, p_after jsonb) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    SELECT EXISTS (
        SELECT 1 FROM flagctl.requests r, jsonb_array_elements(r.changes) AS c
         WHERE r.txid = txid_current_if_assigned() AND r.status = 'approved' AND r.system = p_system
           AND c->>'flag' = p_flag AND c->>'scope' = p_scope
           AND flagctl.same_value(p_type, c->'before', p_before) AND flagctl.same_value(p_type, c->'after', p_after))
$$;


--
-- Name: audit_append_only(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.audit_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'flagctl.audit is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'audit rows are never changed or removed; record a new change instead';
END
$$;


--
-- Name: audit_appended(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.audit_appended() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    -- ON CONFLICT: a row audit_chain listed already (an upgrade's migrations run with the
    -- routines of the version before them) is listed once.
    INSERT INTO flagctl.audit_unsealed (seq) SELECT a.seq FROM appended a ORDER BY a.seq ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;


--
-- Name: audit_backlog(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.audit_backlog() RETURNS TABLE(rows bigint, oldest timestamp with time zone)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    SELECT count(*), min(a.at)
      FROM flagctl.audit_unsealed u JOIN flagctl.audit a ON a.seq = u.seq
$$;


--
-- Name: audit_chain(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.audit_chain() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'flagctl'
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
    RETURN NEW;  -- listed as unsealed by audit_appended, once for the statement's rows
END
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: audit; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.audit (
    seq bigint NOT NULL,
    at timestamp with time zone NOT NULL,
    txid bigint NOT NULL,
    db_user text NOT NULL,
    actor text,
    action text NOT NULL,
    system text,
    flag text,
    scope text,
    target text NOT NULL,
    key jsonb,
    before jsonb,
    after jsonb,
    reason text,
    command text,
    forced boolean DEFAULT false NOT NULL,
    prev_hash text,
    hash text NOT NULL,
    claimed jsonb,
    request_id text
);


--
-- Name: audit_digest(flagctl.audit); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.audit_digest(a flagctl.audit) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog'
    AS $$
    SELECT encode(sha256(convert_to((jsonb_build_array(
        a.seq, a.prev_hash, extract(epoch FROM a.at)::text, a.txid, a.db_user, a.actor,
        a.action, a.system, a.flag, a.scope, a.target, a.key, a.before, a.after,
        a.reason, a.command, a.forced)
        || CASE WHEN a.claimed IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(a.claimed) END
        || CASE WHEN a.request_id IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(a.request_id) END)::text,
        'UTF8')), 'hex')
$$;


--
-- Name: audit_event(text, text, text, text, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.audit_event(p_action text, p_system text, p_flag text, p_target text, p_detail jsonb) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    -- An event is about no scope (scope NULL): it can never pass for a flag row's image.
    INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, after, reason, command)
    VALUES (nullif(current_setting('flagctl.actor', true), ''), p_action, p_system, p_flag,
            NULL, p_target, p_detail,
            nullif(current_setting('flagctl.reason', true), ''),
            nullif(current_setting('flagctl.command', true), ''));
$$;


--
-- Name: audit_flag_rows(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.audit_flag_rows() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    v_actor   text := nullif(current_setting('flagctl.actor', true), '');
    v_action  text := coalesce(nullif(current_setting('flagctl.action', true), ''), 'sql.' || lower(TG_OP));
    v_reason  text := nullif(current_setting('flagctl.reason', true), '');
    v_command text := nullif(current_setting('flagctl.command', true), '');
    v_forced  boolean := coalesce(nullif(current_setting('flagctl.forced', true), '')::boolean, false);
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, before, after, reason, command, forced)
        SELECT v_actor, v_action, n.system, n.flag, n.scope, 'flagctl.flag_state', NULL, n.value,
               v_reason, v_command, v_forced
          FROM (SELECT r.*, row_number() OVER () AS i FROM new_rows r) AS n ORDER BY n.i;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, before, after, reason, command, forced)
        SELECT v_actor, v_action, o.system, o.flag, o.scope, 'flagctl.flag_state', o.value, NULL,
               v_reason, v_command, v_forced
          FROM (SELECT r.*, row_number() OVER () AS i FROM old_rows r) AS o ORDER BY o.i;
    ELSE
        INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, before, after, reason, command, forced)
        WITH o AS MATERIALIZED (SELECT r.*, row_number() OVER () AS i FROM old_rows r),
             n AS MATERIALIZED (SELECT r.*, row_number() OVER () AS i FROM new_rows r),
             same_key AS (SELECT o.i, o AS was, n AS now FROM o JOIN n USING (system, flag, scope)),
             moved AS (SELECT o.i, o AS was, n AS now FROM o JOIN n ON n.i = o.i
                        WHERE NOT EXISTS (SELECT 1 FROM n x WHERE (x.system, x.flag, x.scope) = (o.system, o.flag, o.scope))),
             pairs AS (SELECT * FROM same_key UNION ALL SELECT * FROM moved)
        SELECT v_actor, v_action, (p.now).system, (p.now).flag, (p.now).scope, 'flagctl.flag_state',
               (p.was).value, (p.now).value, v_reason, v_command, v_forced
          FROM pairs p
         WHERE to_jsonb(p.was) - 'i' <> to_jsonb(p.now) - 'i'  -- nothing changed: nothing to record
         ORDER BY p.i;
    END IF;
    RETURN NULL;
END
$$;


--
-- Name: audit_notify(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.audit_notify() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    PERFORM pg_notify('flagctl', json_build_object('system', n.system, 'txid', n.txid)::text)
       FROM (SELECT a.system, a.txid, min(a.seq) AS first FROM appended a WHERE a.system IS NOT NULL
              GROUP BY a.system, a.txid) AS n
      ORDER BY n.first;
    RETURN NULL;
END
$$;


--
-- Name: audit_row(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.audit_row() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    any_row jsonb := coalesce(new_row, old_row);
    v_systems text[];
    v_flags   text[];
    v_scope   text := 'global';
    v_key     jsonb;
    v_target  text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
    i integer;
BEGIN
    IF TG_OP = 'UPDATE' AND old_row = new_row THEN
        RETURN NULL;  -- nothing changed: nothing to record
    END IF;
    IF TG_TABLE_SCHEMA = 'flagctl' THEN
        v_systems := ARRAY[any_row->>'system'];
        v_flags := ARRAY[any_row->>'flag'];
        v_scope := coalesce(any_row->>'scope', 'global');
        IF TG_TABLE_NAME = 'engaged_switch' THEN
            v_target := 'kill_switch:' || (any_row->>'switch');
        ELSIF TG_TABLE_NAME = 'exemption' THEN
            v_target := 'exemption:' || (any_row->>'scope');
        ELSIF TG_TABLE_NAME = 'safe_point' THEN
            v_target := 'safe_point:' || (any_row->>'name');
        ELSIF TG_TABLE_NAME = 'token' THEN
            v_target := 'token:' || (any_row->>'name');
        END IF;
    ELSE
        SELECT jsonb_object_agg(k, any_row->k) INTO v_key FROM unnest(TG_ARGV) AS k;
        SELECT array_agg(b.system ORDER BY b.system, b.flag), array_agg(b.flag ORDER BY b.system, b.flag)
          INTO v_systems, v_flags
          FROM flagctl.binding b
         WHERE b.table_schema = TG_TABLE_SCHEMA AND b.table_name = TG_TABLE_NAME
           AND any_row @> b.key
           AND (TG_OP <> 'UPDATE' OR EXISTS (
                SELECT 1 FROM jsonb_each(b.columns) AS c
                 WHERE (old_row -> (c.value #>> '{}')) IS DISTINCT FROM (new_row -> (c.value #>> '{}'))));
        IF v_systems IS NULL THEN
            SELECT ARRAY[b.system], ARRAY[b.flag] INTO v_systems, v_flags
              FROM flagctl.binding b
             WHERE b.table_schema = TG_TABLE_SCHEMA AND b.table_name = TG_TABLE_NAME AND any_row @> b.key
             ORDER BY b.system, b.flag LIMIT 1;
        END IF;
        IF v_systems IS NULL THEN
            v_systems := ARRAY[NULL]::text[];
            v_flags := ARRAY[NULL]::text[];
        END IF;
    END IF;
    FOR i IN 1 .. array_length(v_systems, 1) LOOP
        INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, key,
                                   before, after, reason, command, forced)
        VALUES (nullif(current_setting('flagctl.actor', true), ''),
                coalesce(nullif(current_setting('flagctl.action', true), ''), 'sql.' || lower(TG_OP)),
                v_systems[i], v_flags[i], v_scope, v_target, v_key, old_row, new_row,
                nullif(current_setting('flagctl.reason', true), ''),
                nullif(current_setting('flagctl.command', true), ''),
                coalesce(nullif(current_setting('flagctl.forced', true), '')::boolean, false));
    END LOOP;
    RETURN NULL;
END
$$;


--
-- Name: audit_seal(boolean, bigint); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.audit_seal(wait boolean DEFAULT false, max_rows bigint DEFAULT NULL::bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    last_pos  bigint;
    last_hash text;
    sealed    bigint := 0;
    seqs      bigint[];
    digests   text[];
    prevs     text[];
    hashes    text[];
    n         integer;
    i         integer;
    chunk     integer;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN NULL;
    END IF;
    IF wait THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('flagctl.audit_seal', 0));
    ELSIF NOT pg_try_advisory_xact_lock(hashtextextended('flagctl.audit_seal', 0)) THEN
        RETURN NULL;
    END IF;
    SELECT s.pos, s.hash INTO last_pos, last_hash FROM flagctl.audit_seal s ORDER BY s.pos DESC LIMIT 1;
    last_pos := coalesce(last_pos, 0);
    last_hash := coalesce(last_hash, 'genesis');
    LOOP
        chunk := least(10000, max_rows - sealed);  -- max_rows NULL: 10,000
        EXIT WHEN chunk <= 0;
        -- The rows waiting, then each one by its key: never a join over the whole trail
        -- (after a large backlog was sealed, the planner's stale count of it chose a hash
        -- join that read every audit row: a kill's commit grew with the history).
        SELECT array_agg(u.seq ORDER BY u.seq), array_agg(coalesce(a.hash, flagctl.audit_digest(a)) ORDER BY u.seq)
          INTO seqs, digests
          FROM (SELECT w.seq FROM flagctl.audit_unsealed w ORDER BY w.seq LIMIT chunk) AS u
          CROSS JOIN LATERAL (SELECT * FROM flagctl.audit x WHERE x.seq = u.seq LIMIT 1) AS a;
        n := coalesce(array_length(seqs, 1), 0);
        EXIT WHEN n = 0;
        prevs := '{}';
        hashes := '{}';
        FOR i IN 1 .. n LOOP
            prevs[i] := last_hash;
            last_hash := encode(sha256(convert_to(last_hash || digests[i], 'UTF8')), 'hex');
            hashes[i] := last_hash;
        END LOOP;
        INSERT INTO flagctl.audit_seal (pos, seq, prev_hash, hash)
        SELECT last_pos + t.i, t.seq, t.prev, t.hash
          FROM unnest(seqs, prevs, hashes) WITH ORDINALITY AS t(seq, prev, hash, i);
        DELETE FROM flagctl.audit_unsealed w WHERE w.seq = ANY(seqs);
        last_pos := last_pos + n;
        sealed := sealed + n;
        EXIT WHEN n < chunk;
    END LOOP;
    RETURN sealed;
END
$$;


--
-- Name: audit_seal_at_commit(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.audit_seal_at_commit() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    own bigint;
BEGIN
    IF current_setting('flagctl.sealed', true) IS DISTINCT FROM 'true' THEN
        PERFORM set_config('flagctl.sealed', 'true', true);
        BEGIN
            SELECT count(*) INTO own FROM flagctl.audit a WHERE a.txid = txid_current();
            PERFORM flagctl.audit_seal(false, own + 1000);
        EXCEPTION WHEN OTHERS THEN
            NULL;  -- the rows stay unsealed; the next sealer (or audit verify) seals them
        END;
    END IF;
    RETURN NULL;
END
$$;


--
-- Name: audit_sign(bigint, text, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.audit_sign(p_pos bigint, p_hash text, p_mac text, p_key_id text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    IF NOT (flagctl.may('set') OR flagctl.may('kill') OR flagctl.may('freeze.set')) THEN
        RAISE EXCEPTION 'flagctl: % may not sign the audit trail: only a role that changes flags signs it', session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM flagctl.audit_seal s WHERE s.pos = p_pos AND s.hash = p_hash) THEN
        RAISE EXCEPTION 'flagctl: no seal % with hash %: only a sealed head is signed', p_pos, p_hash
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO flagctl.audit_signature (pos, hash, mac, key_id) VALUES (p_pos, p_hash, p_mac, p_key_id)
        ON CONFLICT (pos) DO NOTHING;
END
$$;


--
-- Name: audit_truncate(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.audit_truncate() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, reason, command)
    SELECT nullif(current_setting('flagctl.actor', true), ''),
           coalesce(nullif(current_setting('flagctl.action', true), ''), 'sql.truncate'),
           f.system, f.flag, 'global', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
           nullif(current_setting('flagctl.reason', true), ''),
           nullif(current_setting('flagctl.command', true), '')
      FROM (SELECT b.system, b.flag FROM flagctl.binding b
             WHERE b.table_schema = TG_TABLE_SCHEMA AND b.table_name = TG_TABLE_NAME
            UNION ALL
            SELECT NULL, NULL WHERE TG_TABLE_SCHEMA = 'flagctl') AS f;
    RETURN NULL;
END
$$;


--
-- Name: begin_change(text, text, text, text, text, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.begin_change(p_action text, p_actor text, p_reason text, p_command text, p_request_id text, p_system text DEFAULT NULL::text, p_source text DEFAULT NULL::text) RETURNS TABLE(txid bigint, published integer, same boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $_$
DECLARE
    needed text := flagctl.role_for(p_action);
    cat flagctl.catalogue;
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
    ON CONFLICT ON CONSTRAINT change_context_pkey DO UPDATE
       SET action = excluded.action, actor = excluded.actor, reason = excluded.reason,
           command = excluded.command, request_id = excluded.request_id, forced = false;
    -- The same, readable by the statements that record who set a freeze or an exemption.
    PERFORM set_config('flagctl.actor', coalesce(p_actor, ''), true),
            set_config('flagctl.reason', coalesce(p_reason, ''), true),
            set_config('flagctl.action', p_action, true),
            set_config('flagctl.command', coalesce(p_command, ''), true),
            set_config('flagctl.request_id', coalesce(p_request_id, ''), true);
    cat := flagctl.published(p_system);
    RETURN QUERY SELECT txid_current(), cat.version, cat.source = p_source;
END
$_$;


--
-- Name: blockers_of(integer); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.blockers_of(p_waiter integer) RETURNS TABLE(pid integer, db_user text, application text, state text, query text, xact_start timestamp with time zone, xact_seconds numeric, superuser boolean, same_database boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
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


--
-- Name: bound_value(jsonb, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.bound_value(p_columns jsonb, p_row jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog'
    AS $$
    SELECT CASE
        WHEN p_row IS NULL THEN NULL
        WHEN p_columns ? 'value' THEN p_row->(p_columns->>'value')
        ELSE (SELECT jsonb_object_agg(c.key, p_row->(c.value #>> '{}')) FROM jsonb_each(p_columns) AS c)
    END
$$;


--
-- Name: bounded_lock_wait(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.bounded_lock_wait() RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog'
    AS $$
BEGIN
    IF current_setting('lock_timeout') = '0' THEN
        PERFORM set_config('lock_timeout', '5s', true);
    END IF;
END
$$;


--
-- Name: bucket(text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.bucket(salt text, id text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT (flagctl.murmur3_32(convert_to(salt || ':' || id, 'UTF8'), 0) % 100)::integer $$;


--
-- Name: FUNCTION bucket(salt text, id text); Type: COMMENT; Schema: flagctl; Owner: -
--

COMMENT ON FUNCTION flagctl.bucket(salt text, id text) IS 'hash_version 1: murmur3_x86_32(utf8(salt:id), seed 0) % 100; eligible iff enabled and bucket < percent';


--
-- Name: engaged_switch; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.engaged_switch (
    system text NOT NULL,
    switch text NOT NULL,
    scope text DEFAULT 'global'::text NOT NULL,
    level integer NOT NULL,
    seq bigint NOT NULL,
    engaged_at timestamp with time zone DEFAULT now() NOT NULL,
    actor text,
    db_user text DEFAULT SESSION_USER NOT NULL,
    reason text NOT NULL,
    prior jsonb NOT NULL,
    applied jsonb NOT NULL,
    settings jsonb DEFAULT '{}'::jsonb NOT NULL,
    below jsonb DEFAULT '{}'::jsonb NOT NULL
);


--
-- Name: check_bases(flagctl.engaged_switch, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.check_bases(e flagctl.engaged_switch, p_old_below jsonb) RETURNS void
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    f record;
    s record;
BEGIN
    IF p_old_below IS NULL THEN  -- a new engagement: its own bases
        FOR f IN SELECT key, value FROM jsonb_each(coalesce(e.prior, '{}'::jsonb)) LOOP
            IF NOT flagctl.true_base(e.system, e.switch, f.key, e.scope, f.value) THEN
                RAISE EXCEPTION 'flagctl: kill switch % records % as the base of %, which it never was',
                    e.switch, f.value, f.key
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'a kill records the value it replaced; flagctl kill does';
            END IF;
        END LOOP;
    END IF;
    FOR f IN SELECT key, value FROM jsonb_each(coalesce(e.below, '{}'::jsonb)) LOOP
        FOR s IN SELECT key, value FROM jsonb_each(f.value) LOOP
            CONTINUE WHEN p_old_below->f.key->s.key IS NOT DISTINCT FROM s.value;  -- recorded before
            IF NOT flagctl.true_base(e.system, e.switch, f.key, s.key, s.value->'prior') THEN
                RAISE EXCEPTION 'flagctl: kill switch % records % as the base of % at %, which it never was',
                    e.switch, s.value->'prior', f.key, s.key
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'a kill records the value it replaced; flagctl kill does';
            END IF;
        END LOOP;
    END LOOP;
END
$$;


--
-- Name: client_ack(bigint, bigint); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.client_ack(p_id bigint, p_seq bigint) RETURNS boolean
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
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


--
-- Name: client_ack_many(bigint[], bigint[]); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.client_ack_many(p_ids bigint[], p_seqs bigint[]) RETURNS SETOF bigint
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
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


--
-- Name: client_register(text, text, integer, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.client_register(p_system text, p_host text, p_pid integer, p_application text) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    INSERT INTO flagctl.clients (system, host, pid, application, db_user, backend_pid, started_at, seen_at)
    VALUES (p_system, left(p_host, 255), p_pid, left(p_application, 255), session_user, pg_backend_pid(),
            now(), clock_timestamp())
    RETURNING id
$$;


--
-- Name: client_register_behind(bigint, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.client_register_behind(p_relay bigint, p_host text, p_application text) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    INSERT INTO flagctl.clients (system, host, pid, application, db_user, backend_pid, started_at, seen_at, relay)
    SELECT r.system, left(p_host, 255), 0, left(p_application, 255), session_user, pg_backend_pid(),
           now(), clock_timestamp(), r.id
      FROM flagctl.clients r
     WHERE r.id = p_relay AND r.relay IS NULL AND r.db_user = session_user AND r.backend_pid = pg_backend_pid()
    RETURNING id
$$;


--
-- Name: client_unregister(bigint); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.client_unregister(p_id bigint) RETURNS boolean
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    WITH gone AS (
        DELETE FROM flagctl.clients c
         WHERE c.id = p_id AND c.db_user = session_user AND c.backend_pid = pg_backend_pid()
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM gone)
$$;


--
-- Name: create_request(text, text, jsonb, text, text, text, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.create_request(p_system text, p_action text, p_spec jsonb, p_why text, p_reason text, p_actor text, p_changes jsonb) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    rules   jsonb := (flagctl.published(p_system)).catalogue->'approvals';
    summary text;
    made    bigint;
BEGIN
    IF NOT flagctl.may(p_action) THEN
        RAISE EXCEPTION 'flagctl: % may not ask for %: it needs the role %', session_user, p_action,
            flagctl.role_for(p_action)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_changes IS NULL OR jsonb_typeof(p_changes) <> 'array' OR jsonb_array_length(p_changes) = 0 THEN
        RAISE EXCEPTION 'flagctl: a request holds the exact changes it asks for' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(format('%s at %s: %s → %s', c->>'flag', c->>'scope',
                             coalesce(c->'before', 'null'::jsonb), coalesce(c->'after', 'null'::jsonb)), '; '
                      ORDER BY c->>'flag', c->>'scope')
      INTO summary FROM jsonb_array_elements(p_changes) AS c;
    -- The table's own guard fills requested_by, requested_at and the status.
    INSERT INTO flagctl.requests (system, action, summary, spec, why, reason, requested_actor, expires_at, changes)
    VALUES (p_system, p_action, left(p_action || ': ' || summary, 2000), p_spec, p_why, p_reason, nullif(p_actor, ''),
            now() + make_interval(secs => coalesce((rules->>'expire_seconds')::double precision, 86400)), p_changes)
    RETURNING id INTO made;
    RETURN made;
END
$$;


--
-- Name: change_context; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.change_context (
    txid bigint NOT NULL,
    action text NOT NULL,
    actor text,
    reason text,
    command text,
    request_id text,
    forced boolean DEFAULT false NOT NULL,
    db_user text NOT NULL,
    begun_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: current_change(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.current_change() RETURNS flagctl.change_context
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    SELECT * FROM flagctl.change_context WHERE txid = txid_current_if_assigned()
$$;


--
-- Name: drill_finish(bigint, text, jsonb, boolean, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.drill_finish(p_id bigint, p_verdict text, p_steps jsonb, p_restored boolean, p_report text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    IF p_verdict = 'passed' AND NOT EXISTS (
        SELECT 1 FROM flagctl.drills d JOIN flagctl.change_context c
            ON c.action LIKE 'drill.%' AND c.db_user = session_user AND c.begun_at >= d.started_at
         WHERE d.id = p_id) THEN
        RAISE EXCEPTION 'flagctl: drill % ran no drill step: it cannot have passed', p_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE flagctl.drills SET finished_at = now(), verdict = p_verdict, steps = p_steps, restored = p_restored,
           report = p_report
     WHERE id = p_id AND db_user = session_user AND finished_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flagctl: drill % is not a running drill of %', p_id, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;


--
-- Name: drill_start(text, text, text, text, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.drill_start(p_system text, p_kind text, p_subject text, p_scope text, p_actor text, p_reason text) RETURNS TABLE(id bigint, started_at timestamp with time zone)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
#variable_conflict use_column
BEGIN
    IF NOT flagctl.may(CASE WHEN p_kind = 'kill' THEN 'drill.kill' ELSE 'drill.stage' END) THEN
        RAISE EXCEPTION 'flagctl: % may not run a % drill: it needs the role %', session_user, p_kind,
            flagctl.role_for(CASE WHEN p_kind = 'kill' THEN 'drill.kill' ELSE 'drill.stage' END)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF nullif(btrim(coalesce(p_reason, '')), '') IS NULL THEN
        RAISE EXCEPTION 'flagctl: a drill needs a reason' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY INSERT INTO flagctl.drills AS d (system, kind, subject, scope, db_user, actor, reason)
                 VALUES (p_system, p_kind, p_subject, coalesce(p_scope, 'global'), session_user,
                         coalesce(p_actor, session_user), p_reason)
                 RETURNING d.id, d.started_at;
END
$$;


--
-- Name: end_blocker(integer, integer, boolean, text, text, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.end_blocker(p_waiter integer, p_pid integer, p_terminate boolean, p_system text, p_actor text, p_reason text, p_command text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
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


--
-- Name: exposure(text, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.exposure(p_type text, p_value jsonb) RETURNS numeric
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog'
    AS $$
    SELECT CASE
        WHEN p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN NULL
        -- A value not of its type's shape counts as the widest: a string "false" is no
        -- false to flagctl's readers, so it must not pass as one here.
        WHEN p_type = 'rollout' AND (jsonb_typeof(p_value) <> 'object'
                                     OR jsonb_typeof(p_value->'enabled') IS DISTINCT FROM 'boolean'
                                     OR jsonb_typeof(p_value->'percent') IS DISTINCT FROM 'number'
                                     OR coalesce(jsonb_typeof(p_value->'internal'), 'boolean') <> 'boolean') THEN 100.5
        WHEN p_type = 'rollout' THEN
            CASE WHEN (p_value->>'enabled')::boolean AND (p_value->>'percent')::numeric > 0
                 THEN (p_value->>'percent')::numeric ELSE 0 END
            + CASE WHEN (p_value->>'enabled')::boolean AND coalesce((p_value->>'internal')::boolean, false)
                   THEN 0.5 ELSE 0 END
        WHEN p_type = 'bool' THEN CASE WHEN p_value = 'false'::jsonb THEN 0 ELSE 100 END
    END
$$;


--
-- Name: flag_change_declared(text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.flag_change_declared(p_what text) RETURNS flagctl.change_context
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.write_declared(p_what);
BEGIN
    IF flagctl.role_for(ctx.action) = 'flagctl_ops' OR ctx.action = 'review'
       OR ctx.action LIKE '%.refused' OR ctx.action LIKE 'kill.break_lock%' THEN
        RAISE EXCEPTION 'flagctl: % flags is not part of a % (it writes no flag)', p_what, ctx.action
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN ctx;
END
$$;


--
-- Name: flagctl_member(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.flagctl_member() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog'
    AS $$
    SELECT EXISTS (SELECT 1 FROM unnest(ARRAY['flagctl_viewer', 'flagctl_release', 'flagctl_security',
                                              'flagctl_ops', 'flagctl_admin', 'flagctl_operator']) AS r(name)
                    WHERE to_regrole(r.name) IS NOT NULL AND pg_has_role(session_user, to_regrole(r.name), 'MEMBER'))
$$;


--
-- Name: freeze_add(text, text, timestamp with time zone); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.freeze_add(p_system text, p_scope text, p_until timestamp with time zone) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('a freeze', ARRAY['freeze.set']);
BEGIN
    INSERT INTO flagctl.freeze (system, scope, until, reason, actor)
    VALUES (p_system, coalesce(p_scope, 'global'), p_until, ctx.reason, ctx.actor);
END
$$;


--
-- Name: freeze_clear(bigint[]); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.freeze_clear(p_ids bigint[]) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('clearing a freeze', ARRAY['freeze.clear']);
BEGIN
    UPDATE flagctl.freeze SET cleared_at = now(), cleared_by = ctx.actor WHERE id = ANY(p_ids) AND cleared_at IS NULL;
END
$$;


--
-- Name: freeze; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl."freeze" (
    id bigint NOT NULL,
    system text NOT NULL,
    scope text DEFAULT 'global'::text NOT NULL,
    until timestamp with time zone,
    reason text NOT NULL,
    actor text,
    db_user text DEFAULT SESSION_USER NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    cleared_at timestamp with time zone,
    cleared_by text
);


--
-- Name: freezes_in_force(text, timestamp with time zone); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.freezes_in_force(p_system text, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF flagctl."freeze"
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('flagctl.freeze:' || p_system, 0));
    RETURN QUERY SELECT * FROM flagctl.freeze f
                  WHERE f.system = p_system AND f.cleared_at IS NULL
                    AND (f.until IS NULL OR f.until > coalesce(p_now, now()))
                  ORDER BY f.id;
END
$$;


--
-- Name: guard_declared_write(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.guard_declared_write() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context;
    act text;
BEGIN
    IF pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER') THEN
        RETURN coalesce(NEW, OLD);
    END IF;
    SELECT * INTO ctx FROM flagctl.change_context c WHERE c.txid = txid_current();
    act := regexp_replace(coalesce(ctx.action, ''), '^drill\.', '');
    IF TG_TABLE_NAME = 'freeze' THEN
        IF TG_OP = 'INSERT' AND act = 'freeze.set' THEN
            NEW.actor := ctx.actor;
            NEW.reason := coalesce(ctx.reason, NEW.reason);
            NEW.db_user := session_user;
            NEW.created_at := now();
            NEW.cleared_at := NULL;
            NEW.cleared_by := NULL;
            RETURN NEW;
        END IF;
        IF TG_OP = 'UPDATE' AND act = 'freeze.clear' AND OLD.cleared_at IS NULL
           AND to_jsonb(NEW) - 'cleared_at' - 'cleared_by' = to_jsonb(OLD) - 'cleared_at' - 'cleared_by' THEN
            NEW.cleared_at := now();
            NEW.cleared_by := coalesce(ctx.actor, session_user);
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'flagctl: a freeze is only set or cleared, by flagctl freeze set / clear (not % in a %)',
            lower(TG_OP), coalesce(nullif(act, ''), 'undeclared change')
            USING ERRCODE = 'insufficient_privilege', HINT = 'flagctl freeze set|clear -r REASON';
    END IF;
    IF act = 'exempt' THEN
        IF TG_OP <> 'DELETE' THEN
            NEW.actor := ctx.actor;
        END IF;
        RETURN coalesce(NEW, OLD);
    END IF;
    RAISE EXCEPTION 'flagctl: exemptions change only by flagctl exempt (not % in a %)',
        lower(TG_OP), coalesce(nullif(act, ''), 'undeclared change')
        USING ERRCODE = 'insufficient_privilege', HINT = 'flagctl exempt FLAG --scope KIND:VALUE allow|deny -r REASON';
END
$$;


--
-- Name: guard_engaged_write(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.guard_engaged_write() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    act text := regexp_replace(coalesce((SELECT c.action FROM flagctl.change_context c
                                          WHERE c.txid = txid_current()), 'sql'), '^drill\.', '');
BEGIN
    IF pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER') THEN
        RETURN coalesce(NEW, OLD);
    END IF;
    -- a kill, or the manifest's kill run by the rollback machine (watch --auto)
    IF act IN ('kill', 'rollback.auto') AND TG_OP = 'INSERT' THEN
        PERFORM flagctl.check_bases(NEW, NULL);
        RETURN NEW;
    END IF;
    IF act IN ('kill', 'rollback.auto') AND TG_OP = 'UPDATE' AND to_jsonb(NEW) - 'below' = to_jsonb(OLD) - 'below' THEN
        PERFORM flagctl.check_bases(NEW, coalesce(OLD.below, '{}'::jsonb));
        RETURN NEW;
    END IF;
    IF act = 'release' AND TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND (act LIKE 'stage%' OR act LIKE 'rollback%') THEN
        IF flagctl.may('stage.set') AND OLD.scope = 'global'
           AND to_jsonb(NEW) - 'prior' - 'applied' = to_jsonb(OLD) - 'prior' - 'applied'
           AND flagctl.narrows_base(OLD.system, OLD.prior, NEW.prior)
           AND flagctl.narrows_base(OLD.system, OLD.applied, NEW.applied) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'flagctl: a stage move under kill switch % only narrows the stage beneath it (%)',
            OLD.switch, act
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'flagctl stage set / stage rollback move it back; release the kill before moving forward';
    END IF;
    RAISE EXCEPTION 'flagctl: kill switches are engaged and released only by flagctl kill and release (not % of a %)',
        lower(TG_OP), act
        USING ERRCODE = 'insufficient_privilege';
END
$$;


--
-- Name: guard_flag_write(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.guard_flag_write() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    any_row jsonb := coalesce(new_row, old_row);
    b       record;
BEGIN
    IF pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER') THEN
        RETURN coalesce(NEW, OLD);
    END IF;
    IF TG_TABLE_SCHEMA = 'flagctl' AND TG_TABLE_NAME = 'flag_state' THEN
        PERFORM flagctl.judge_flag_write(any_row->>'system', any_row->>'flag', any_row->>'scope',
                                         old_row->'value', new_row->'value', true);
        RETURN coalesce(NEW, OLD);
    END IF;
    FOR b IN SELECT bd.system, bd.flag, bd.columns FROM flagctl.binding bd  -- every flag the row holds
              WHERE bd.table_schema = TG_TABLE_SCHEMA AND bd.table_name = TG_TABLE_NAME AND any_row @> bd.key
              ORDER BY bd.system, bd.flag LOOP
        IF flagctl.bound_value(b.columns, old_row) IS DISTINCT FROM flagctl.bound_value(b.columns, new_row) THEN
            PERFORM flagctl.judge_flag_write(b.system, b.flag, 'global', flagctl.bound_value(b.columns, old_row),
                                             flagctl.bound_value(b.columns, new_row), false);
        END IF;
    END LOOP;
    RETURN coalesce(NEW, OLD);  -- a row that holds no flag is the application's business
END
$$;


--
-- Name: guard_request(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.guard_request() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    -- current_user is the schema's owner inside flagctl's SECURITY DEFINER functions (or for the owner itself)
    IF NOT pg_has_role(current_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER') THEN
        RAISE EXCEPTION 'flagctl: requests are made by flagctl.create_request and approved by flagctl.approve_request'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.requested_by := session_user;
        NEW.requested_at := now();
        NEW.status := 'pending';
        NEW.approved_by := NULL;
        RETURN NEW;
    END IF;
    IF OLD.status <> 'pending' OR NEW.status <> 'approved' OR NEW.spec IS DISTINCT FROM OLD.spec
       OR NEW.changes IS DISTINCT FROM OLD.changes OR NEW.requested_by IS DISTINCT FROM OLD.requested_by THEN
        RAISE EXCEPTION 'flagctl: request % is %; only a pending request can be approved, as it is', OLD.id, OLD.status
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.expires_at <= now() THEN
        RAISE EXCEPTION 'flagctl: request % expired at %', OLD.id, OLD.expires_at
            USING ERRCODE = 'insufficient_privilege', HINT = 'ask for the change again';
    END IF;
    IF session_user = OLD.requested_by THEN
        RAISE EXCEPTION 'flagctl: % requested change % and cannot approve it too (four eyes)', session_user, OLD.id
            USING ERRCODE = 'insufficient_privilege', HINT = 'another database user approves it';
    END IF;
    NEW.approved_by := session_user;
    NEW.approved_at := now();
    NEW.txid := txid_current();
    RETURN NEW;
END
$$;


--
-- Name: guard_review(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.guard_review() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    by_user text;
BEGIN
    SELECT a.db_user INTO by_user FROM flagctl.audit a WHERE a.seq = NEW.audit_seq;
    IF by_user IS NULL THEN
        RAISE EXCEPTION 'flagctl: there is no audit row %', NEW.audit_seq USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF by_user = session_user THEN
        RAISE EXCEPTION 'flagctl: % did audit row % and cannot review it too', session_user, NEW.audit_seq
            USING ERRCODE = 'insufficient_privilege', HINT = 'someone other than the actor reviews it';
    END IF;
    NEW.reviewed_by := session_user;
    NEW.reviewed_at := now();
    RETURN NEW;
END
$$;


--
-- Name: hash_version(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.hash_version() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 1 $$;


--
-- Name: hold_engaged(text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.hold_engaged(p_system text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    PERFORM flagctl.flag_change_declared('flagctl.hold_engaged locks');
    PERFORM flagctl.bounded_lock_wait();
    PERFORM 1 FROM flagctl.engaged_switch e WHERE e.system = p_system ORDER BY e.seq FOR UPDATE;
END
$$;


--
-- Name: hold_flags(text, text[]); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.hold_flags(p_system text, p_flags text[]) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    PERFORM flagctl.flag_change_declared('flagctl.hold_flags locks');
    PERFORM flagctl.bounded_lock_wait();
    PERFORM flagctl.kill_lock_flags(p_system, p_flags);
END
$$;


--
-- Name: hold_rollback_state(text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.hold_rollback_state(p_system text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    PERFORM flagctl.record_declared('flagctl.hold_rollback_state locks', ARRAY['rollback.']);
    PERFORM flagctl.bounded_lock_wait();
    PERFORM 1 FROM flagctl.rollback_state r WHERE r.system = p_system FOR UPDATE;
END
$$;


--
-- Name: interference(regclass); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.interference(p_table regclass) RETURNS SETOF text
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog'
    AS $$
    SELECT format('trigger %s (%s %s, function %s)', t.tgname,
                  CASE WHEN t.tgtype & 64 <> 0 THEN 'INSTEAD OF' WHEN t.tgtype & 2 <> 0 THEN 'BEFORE' ELSE 'AFTER' END,
                  concat_ws(' OR ', CASE WHEN t.tgtype & 4 <> 0 THEN 'INSERT' END,
                            CASE WHEN t.tgtype & 8 <> 0 THEN 'DELETE' END, CASE WHEN t.tgtype & 16 <> 0 THEN 'UPDATE' END),
                  t.tgfoid::regproc)
      FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
     WHERE t.tgrelid = p_table AND NOT t.tgisinternal AND t.tgenabled <> 'D'
       AND p.pronamespace <> 'flagctl'::regnamespace AND t.tgtype & 28 <> 0
    UNION ALL
    SELECT format('rule %s (ON %s%s)', r.rulename,
                  CASE r.ev_type WHEN '2' THEN 'UPDATE' WHEN '3' THEN 'INSERT' WHEN '4' THEN 'DELETE' ELSE 'SELECT' END,
                  CASE WHEN r.is_instead THEN ' DO INSTEAD' ELSE ' DO ALSO' END)
      FROM pg_rewrite r
     WHERE r.ev_class = p_table AND r.rulename <> '_RETURN' AND r.ev_enabled <> 'D'
$$;


--
-- Name: judge_flag_write(text, text, text, jsonb, jsonb, boolean); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.judge_flag_write(v_system text, v_flag text, v_scope text, before jsonb, after jsonb, own boolean) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx      flagctl.change_context;
    cat      jsonb;
    kind     text;
    act      text;
    was      numeric;
    now_     numeric;
    rules    jsonb;
    frozen   flagctl.freeze;
    planned  jsonb := before;  -- the value the row had, as a request records it
BEGIN
    SELECT * INTO ctx FROM flagctl.change_context c WHERE c.txid = txid_current();
    IF NOT FOUND THEN
        IF flagctl.flagctl_member() THEN
            RAISE EXCEPTION 'flagctl: % holds a flagctl role, and changes flag % only as flagctl does, not with plain SQL',
                session_user, v_flag
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'use flagctl (set, stage, kill, release, profile apply); every change is checked and audited';
        END IF;
        RETURN;  -- an application role writing its own data: audited as sql.*
    END IF;
    act := regexp_replace(ctx.action, '^drill\.', '');
    -- Only a change that sets values writes one: a refusal, a review, a lock breaker's or a
    -- freeze's declaration writes no flag; and but for a kill or a release, only a member
    -- who may set values does.
    IF act LIKE '%.refused' OR act IN ('review', 'kill.break_lock', 'manifest.publish') OR act LIKE 'freeze%'
       OR (act NOT IN ('kill', 'release') AND NOT flagctl.may('set')) THEN
        RAISE EXCEPTION 'flagctl: a change declared as % writes no flag value (% at %)', ctx.action, v_flag, v_scope
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'declare what the change is: flagctl set, stage, kill, release, profile apply';
    END IF;
    cat := (flagctl.published(v_system)).catalogue;
    kind := cat->'flags'->v_flag->>'type';
    IF cat IS NOT NULL AND kind IS NULL THEN
        RAISE EXCEPTION 'flagctl: % is no flag of system % as published', v_flag, v_system
            USING ERRCODE = 'insufficient_privilege', HINT = 'publish the manifest that has it: flagctl manifest publish';
    END IF;
    -- What the scope had before. flagctl's own table is written by an upsert, whose INSERT
    -- is judged before the conflict turns it into an UPDATE: the row it will update is the
    -- value before (judged as planned, and for exposure). Else its override, else the global
    -- value (else the default).
    IF before IS NULL AND own THEN
        SELECT f.value INTO planned FROM flagctl.flag_state f
         WHERE f.system = v_system AND f.flag = v_flag AND f.scope = v_scope;
        before := coalesce(
            planned,
            (SELECT f.value FROM flagctl.flag_state f
              WHERE f.system = v_system AND f.flag = v_flag AND f.scope = 'global' AND v_scope <> 'global'),
            cat->'flags'->v_flag->'default');
    END IF;
    was := flagctl.exposure(kind, before);
    now_ := flagctl.exposure(kind, after);

    IF act IN ('kill', 'release') THEN
        -- A kill's or a release's own values pass, frozen or not; anything else it writes
        -- is refused, or — for a member who may set values anyway — judged as a set is:
        -- by the freeze and the approvals below.
        IF act = 'kill' THEN
            -- A rollout's kill settings only ever narrow it; any other type's kill writes a
            -- switch's own value (a safety bool may well be turned on).
            IF kind = 'rollout' AND now_ IS NOT NULL AND was IS NOT NULL AND now_ <= was THEN
                RETURN;
            END IF;
            IF kind IS DISTINCT FROM 'rollout' AND EXISTS (SELECT 1 FROM jsonb_each(cat->'switches') s
                                                            WHERE s.value->'settings'->v_flag = after) THEN
                RETURN;
            END IF;
            IF cat IS NULL AND after IS NOT NULL THEN
                RETURN;  -- nothing published to judge by
            END IF;
            IF NOT flagctl.may('set') THEN
                RAISE EXCEPTION 'flagctl: a kill by % may only lower exposure or set a kill switch''s own value; % at % would go from % to %',
                    session_user, v_flag, v_scope, coalesce(before::text, 'unset'), coalesce(after::text, 'unset')
                    USING ERRCODE = 'insufficient_privilege', HINT = 'flagctl kill SWITCH sets exactly the switch''s values';
            END IF;
        ELSE
            -- A release restores no more than the engaged kills recorded as the base at this scope.
            IF EXISTS (
                SELECT 1
                  FROM flagctl.engaged_switch e,
                       LATERAL (SELECT CASE WHEN e.scope = v_scope THEN e.prior->v_flag
                                            ELSE e.below->v_flag->v_scope->'prior' END AS base,
                                       CASE WHEN e.scope = v_scope THEN e.prior ? v_flag
                                            ELSE coalesce(e.below->v_flag ? v_scope, false) END AS covers) AS b
                 WHERE e.system = v_system AND b.covers
                   AND (after IS NULL AND (b.base IS NULL OR jsonb_typeof(b.base) = 'null')
                        OR after IS NOT NULL AND (after = b.base
                            OR flagctl.exposure(kind, after) <= flagctl.exposure(kind, b.base)
                            OR b.base IS NULL AND now_ IS NOT NULL AND was IS NOT NULL AND now_ <= was)))
            THEN
                RETURN;
            END IF;
            IF NOT flagctl.may('set') THEN
                RAISE EXCEPTION 'flagctl: a release by % restores only what the engaged kills replaced; % at % would become %',
                    session_user, v_flag, v_scope, coalesce(after::text, 'unset')
                    USING ERRCODE = 'insufficient_privilege', HINT = 'flagctl release SWITCH restores exactly the recorded values';
            END IF;
        END IF;
    END IF;

    -- A freeze stops any widening but a rollback's (or a drill putting back what it moved).
    IF ctx.action NOT LIKE 'rollback%' AND ctx.action NOT LIKE 'drill.restore%'
       AND was IS NOT NULL AND (CASE WHEN after IS NULL THEN was < 100 ELSE now_ > was END) THEN
        SELECT * INTO frozen FROM flagctl.freeze f
         WHERE f.system = v_system AND f.cleared_at IS NULL AND (f.until IS NULL OR f.until > now())
           AND (f.scope = 'global' OR f.scope = v_scope OR v_scope = 'global')
         ORDER BY f.id LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'flagctl: frozen: % at % would widen exposure (% → %); freeze % at % by %: %',
                v_flag, v_scope, was, coalesce(now_::text, 'the global value'), frozen.id, frozen.scope,
                coalesce(frozen.actor, frozen.db_user), frozen.reason
                USING HINT = 'wait for the freeze to end, or clear it: flagctl freeze clear';
        END IF;
    END IF;

    -- Four eyes: what the published approvals hold for a second person.
    rules := cat->'approvals';
    IF rules IS NOT NULL AND jsonb_typeof(rules) = 'object'
       AND NOT flagctl.approved_here(v_system, v_flag, v_scope, kind, planned, after)
       AND ((ctx.forced AND coalesce((rules->>'forced')::boolean, false))
            OR (kind = 'rollout' AND rules->>'at_or_above' IS NOT NULL AND after IS NOT NULL
                AND (after->>'enabled')::boolean AND (after->>'percent')::int >= (rules->>'at_or_above')::int
                AND (after->>'percent')::int > CASE WHEN before IS NOT NULL AND (before->>'enabled')::boolean
                                                    THEN (before->>'percent')::int ELSE -1 END)) THEN
        RAISE EXCEPTION 'flagctl: % at % needs a second person (approvals in the published manifest)', v_flag, v_scope
            USING HINT = 'ask for it with flagctl (it waits as a request); another user approves: flagctl approve ID';
    END IF;
    RETURN;
END
$$;


--
-- Name: kill(text, text, text, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill(p_system text, p_switch text, p_reason text, p_scope text DEFAULT 'global'::text, p_actor text DEFAULT NULL::text) RETURNS TABLE(flag text, scope text, before jsonb, after jsonb)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    cat      jsonb := flagctl.kill_declare('kill', p_system, p_switch, p_scope, p_reason, p_actor);
    fc       jsonb := cat->'flags';
    v_settings jsonb := cat->'switches'->p_switch->'settings';
    v_level  integer := (cat->'switches'->p_switch->>'level')::integer;
    v_flags  text[] := ARRAY(SELECT k FROM jsonb_object_keys(v_settings) AS k ORDER BY k COLLATE "C");
    rec      flagctl.engaged_switch;
    mine     flagctl.engaged_switch;  -- this switch's engagement (or the one to be), cut down to the flag
    me       flagctl.engaged_switch;  -- the same without its scopes beneath (below)
    over     jsonb;                   -- the flag's stored overrides
    fl_eng   flagctl.engaged_switch[];
    holders  flagctl.engaged_switch[];
    v_state  jsonb;
    f        text;
    at       text;
    kind     text;
    dflt     jsonb;
    gnow     jsonb;
    cur      jsonb;
    base     jsonb;
    val      jsonb;
    -- Accumulated as arrays (appending is in place) and aggregated once at the end.
    top_flags text[] := '{}';
    top_prior jsonb[] := '{}';
    top_applied jsonb[] := '{}';
    below_flags text[] := '{}';
    below_scopes text[] := '{}';
    below_vals jsonb[] := '{}';
    changes  jsonb[] := '{}';
    fast     text[];                  -- the scopes done in one query (no engagement covers them)
    fast_vals jsonb[];
    fast_changes jsonb[];
    v_below  jsonb;
BEGIN
    IF p_scope <> 'global' THEN
        FOREACH f IN ARRAY v_flags LOOP
            IF fc->f->'table' IS NOT NULL AND jsonb_typeof(fc->f->'table') <> 'null'
               OR NOT coalesce(fc->f->'scopes' ? split_part(p_scope, ':', 1), false) THEN
                RAISE EXCEPTION 'flagctl: flag % has no % scope (as published)', f, split_part(p_scope, ':', 1)
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'scope kinds it accepts: ' || coalesce((SELECT string_agg(s, ', ')
                                  FROM jsonb_array_elements_text(fc->f->'scopes') AS s), 'none (global only)');
            END IF;
        END LOOP;
    END IF;
    PERFORM flagctl.kill_lock(p_system, v_flags);
    SELECT * INTO rec FROM flagctl.engaged_switch e WHERE e.system = p_system AND e.switch = p_switch AND e.scope = p_scope;
    IF FOUND THEN  -- engaged already: the flags it recorded (locked too, should they differ)
        v_flags := ARRAY(SELECT k FROM jsonb_object_keys(rec.settings) AS k ORDER BY k COLLATE "C");
        PERFORM flagctl.kill_lock(p_system, v_flags);
    END IF;
    v_state := flagctl.kill_state(p_system, cat, v_flags);
    FOR f, fl_eng IN SELECT k.flag, k.engaged FROM flagctl.kill_slim(p_system, v_flags) AS k LOOP
        kind := fc->f->>'type';
        dflt := flagctl.kill_norm(kind, fc->f->'default');
        gnow := v_state->f->'global';
        IF rec.switch IS NULL THEN
            mine := ROW(p_system, p_switch, p_scope, v_level, 4611686018427387904, now(), NULL, session_user, p_reason,
                        '{}', '{}', jsonb_build_object(f, v_settings->f), '{}')::flagctl.engaged_switch;
        ELSE
            SELECT * INTO mine FROM unnest(fl_eng) AS e WHERE e.switch = p_switch AND e.scope = p_scope;
        END IF;
        over := v_state->f->'overrides';
        me := mine;
        me.below := '{}';  -- the helpers read its switch, scope and settings; never its every scope
        -- A global kill's overrides that no engagement covers yet, in one query: the kill
        -- overlays the override (kill_with with no holders), recording it as the base. A
        -- global kill over 10,000 overrides called the helpers 10,000 times.
        fast := '{}';
        IF p_scope = 'global' THEN
            WITH covered AS (SELECT e.scope AS s FROM unnest(fl_eng) AS e WHERE e.scope <> 'global'
                             UNION SELECT k FROM unnest(fl_eng) AS e, jsonb_object_keys(coalesce(e.below->f, '{}')) AS k
                              WHERE e.scope = 'global'),
                 o AS MATERIALIZED (SELECT o.key AS s, o.value AS cur, flagctl.kill_overlay(kind, o.value, me.settings->f) AS val
                         FROM jsonb_each(over) AS o WHERE NOT EXISTS (SELECT 1 FROM covered c WHERE c.s = o.key))
            SELECT coalesce(array_agg(o.s), '{}'), coalesce(array_agg(jsonb_build_object('prior', o.cur, 'applied', o.val)), '{}'),
                   coalesce(array_agg(jsonb_build_object('flag', f, 'scope', o.s, 'kind', kind, 'before', o.cur, 'after', o.val))
                                FILTER (WHERE o.val IS DISTINCT FROM o.cur), '{}')
              INTO fast, fast_vals, fast_changes FROM o;
            below_flags := below_flags || array_fill(f, ARRAY[cardinality(fast)]);
            below_scopes := below_scopes || fast;
            below_vals := below_vals || fast_vals;
            changes := changes || fast_changes;
        END IF;
        FOR at, holders IN SELECT k.scope, k.holders FROM flagctl.kill_scopes(f, fl_eng,
                CASE WHEN p_scope <> 'global' THEN ARRAY[p_scope]
                     ELSE ARRAY['global'] || ARRAY(SELECT s FROM (
                              SELECT jsonb_object_keys(over)
                              UNION SELECT jsonb_object_keys(coalesce(mine.below->f, '{}'))
                              EXCEPT SELECT unnest(fast)) AS o(s)
                              ORDER BY s COLLATE "C") END) AS k LOOP
            cur := CASE WHEN at = 'global' THEN gnow ELSE over->at END;
            IF rec.switch IS NULL THEN
                base := CASE WHEN cardinality(holders) > 0 THEN flagctl.kill_base_at(holders, f, at)
                             WHEN at = 'global' AND NOT (v_state->f->>'stored')::boolean THEN NULL
                             ELSE cur END;
                val := flagctl.kill_with(kind, holders, me, f, at, cur, gnow, dflt);
                IF at = p_scope THEN
                    top_flags := array_append(top_flags, f);
                    top_prior := array_append(top_prior, coalesce(base, 'null'));
                    top_applied := array_append(top_applied, coalesce(val, 'null'));
                ELSE
                    below_flags := array_append(below_flags, f);
                    below_scopes := array_append(below_scopes, at);
                    below_vals := array_append(below_vals, jsonb_build_object('prior', base, 'applied', val));
                END IF;
            ELSIF EXISTS (SELECT 1 FROM unnest(holders) AS h WHERE h.switch = rec.switch AND h.scope = rec.scope) THEN
                val := flagctl.kill_left_at(kind, holders, f, at, gnow, dflt);
            ELSE  -- an override that appeared under the kill: it covers that one too
                val := flagctl.kill_with(kind, holders, me, f, at, cur, gnow, dflt);
                base := CASE WHEN cardinality(holders) > 0 THEN flagctl.kill_base_at(holders, f, at) ELSE cur END;
                below_flags := array_append(below_flags, f);
                below_scopes := array_append(below_scopes, at);
                below_vals := array_append(below_vals, jsonb_build_object('prior', base, 'applied', val));
            END IF;
            IF val IS DISTINCT FROM cur THEN
                changes := array_append(changes, jsonb_build_object('flag', f, 'scope', at, 'kind', kind,
                                                                    'before', cur, 'after', val));
            END IF;
        END LOOP;
    END LOOP;
    changes := flagctl.kill_in_order(changes);
    IF rec.switch IS NOT NULL AND cardinality(changes) = 0 THEN
        RAISE NOTICE 'kill switch % is already engaged (scope %) since % by %, and every flag has its values',
            p_switch, p_scope, rec.engaged_at, coalesce(rec.actor, rec.db_user);
        RETURN;
    END IF;
    PERFORM flagctl.kill_write_all(p_system, changes);
    -- The new scopes beneath a global kill, each flag's merged into what the kill recorded there.
    SELECT jsonb_object_agg(n.f, coalesce(rec.below->n.f, '{}') || n.scopes) INTO v_below
      FROM (SELECT u.f, jsonb_object_agg(u.s, u.v) AS scopes
              FROM unnest(below_flags, below_scopes, below_vals) AS u(f, s, v) GROUP BY u.f) AS n;
    IF rec.switch IS NULL THEN
        INSERT INTO flagctl.engaged_switch (system, switch, scope, level, actor, reason, prior, applied, settings, below)
        SELECT p_system, p_switch, p_scope, v_level, x.actor, coalesce(x.reason, p_reason),
               (SELECT coalesce(jsonb_object_agg(u.f, u.v), '{}') FROM unnest(top_flags, top_prior) AS u(f, v)),
               (SELECT coalesce(jsonb_object_agg(u.f, u.v), '{}') FROM unnest(top_flags, top_applied) AS u(f, v)),
               v_settings, coalesce(v_below, '{}')
          FROM flagctl.current_change() AS x;
    ELSIF v_below IS NOT NULL AND rec.below || v_below <> rec.below THEN
        UPDATE flagctl.engaged_switch e SET below = rec.below || v_below
         WHERE e.system = p_system AND e.switch = p_switch AND e.scope = p_scope;
    END IF;
    IF cardinality(changes) > 0 THEN  -- the state it leaves keeps every published constraint
        PERFORM flagctl.kill_check_constraints(p_system, cat);
    END IF;
    RETURN QUERY SELECT c2->>'flag', c2->>'scope', nullif(c2->'before', 'null'::jsonb), nullif(c2->'after', 'null'::jsonb)
                   FROM unnest(changes) AS c2;
END
$$;


--
-- Name: kill_base_at(flagctl.engaged_switch[], text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_base_at(p_holders flagctl.engaged_switch[], p_flag text, p_scope text) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    SELECT flagctl.kill_recorded(h, 'prior', p_flag, p_scope)
      FROM unnest(p_holders) AS h ORDER BY h.seq LIMIT 1
$$;


--
-- Name: kill_check_constraints(text, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_check_constraints(p_system text, p_cat jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    flags text[];
    st    jsonb;
    glob  jsonb;
    sc    text;
    bad   text[];
BEGIN
    flags := ARRAY(SELECT DISTINCT f FROM jsonb_array_elements(coalesce(p_cat->'constraints', '[]')) AS r,
                   LATERAL (SELECT r->'range'->>'flag' UNION ALL SELECT r->'one_of'->>'flag'
                            UNION ALL SELECT jsonb_array_elements_text(CASE WHEN r ? 'exclusive' THEN r->'exclusive' ELSE '[]' END)
                            UNION ALL SELECT jsonb_object_keys(CASE WHEN r ? 'implies' THEN r->'implies'->'if' ELSE '{}' END)
                            UNION ALL SELECT jsonb_object_keys(CASE WHEN r ? 'implies' THEN r->'implies'->'then' ELSE '{}' END)) AS x(f)
                    WHERE f IS NOT NULL);
    IF cardinality(flags) = 0 THEN
        RETURN;
    END IF;
    st := flagctl.kill_state(p_system, p_cat, flags);
    SELECT jsonb_object_agg(k, st->k->'global') INTO glob FROM jsonb_object_keys(st) AS k;
    bad := flagctl.kill_violations(p_cat, glob, 'global');
    FOR sc IN SELECT DISTINCT o.key FROM jsonb_object_keys(st) AS k, jsonb_each(coalesce(st->k->'overrides', '{}')) AS o
               ORDER BY 1 LOOP
        bad := bad || flagctl.kill_violations(p_cat,
                   glob || (SELECT coalesce(jsonb_object_agg(k, st->k->'overrides'->sc), '{}') FROM jsonb_object_keys(st) AS k
                             WHERE st->k->'overrides' ? sc), sc);
    END LOOP;
    IF cardinality(bad) > 0 THEN
        RAISE EXCEPTION 'flagctl: constraint %; nothing was changed', bad[1] || CASE WHEN cardinality(bad) > 1
                                                                             THEN format(' (+%s more)', cardinality(bad) - 1) ELSE '' END
            USING ERRCODE = 'check_violation',
                  DETAIL = array_to_string(bad, '; '),
                  HINT = 'change the values so every constraint in the manifest holds (flagctl status shows the current ones)';
    END IF;
END
$$;


--
-- Name: kill_covers(flagctl.engaged_switch, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_covers(e flagctl.engaged_switch, p_flag text, p_scope text) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog'
    AS $$
    SELECT e.settings ? p_flag
       AND (e.scope = p_scope OR (e.scope = 'global' AND coalesce(e.below->p_flag ? p_scope, false)))
$$;


--
-- Name: kill_declare(text, text, text, text, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_declare(p_action text, p_system text, p_switch text, p_scope text, p_reason text, p_actor text) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $_$
DECLARE
    ctx flagctl.change_context := flagctl.current_change();
    cat jsonb := (flagctl.published(p_system)).catalogue;
BEGIN
    -- Declared already: as this action (by flagctl's CLI, or a drill's step), or, for a kill,
    -- as the rollback machine's automatic rollback (flagctl watch --auto), which may run it.
    IF ctx.action IS NULL OR (regexp_replace(ctx.action, '^drill\.', '') <> p_action
                              AND NOT (p_action = 'kill' AND ctx.action = 'rollback.auto')) THEN
        IF nullif(btrim(coalesce(p_reason, '')), '') IS NULL THEN
            RAISE EXCEPTION 'flagctl: a % needs a reason', p_action
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('SELECT * FROM flagctl.%s(%L, %L, ''INC-123: why'')', p_action, p_system, p_switch);
        END IF;
        PERFORM flagctl.begin_change(p_action, coalesce(p_actor, session_user), p_reason,
                                     format('SELECT flagctl.%s(%L, %L, …, %L)', p_action, p_system, p_switch, p_scope),
                                     NULL, p_system);
    ELSE
        PERFORM flagctl.kill_role(p_action, ctx.action);
    END IF;
    IF cat IS NULL THEN
        RAISE EXCEPTION 'flagctl: system % has no published manifest', p_system
            USING ERRCODE = 'invalid_parameter_value', HINT = 'publish it first: flagctl manifest publish -r …';
    END IF;
    IF NOT cat->'switches' ? p_switch THEN
        RAISE EXCEPTION 'flagctl: system % has no kill switch % (published version %)', p_system, p_switch,
            (flagctl.published(p_system)).version
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'kill switches: ' || (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(cat->'switches') AS k);
    END IF;
    IF p_scope IS NULL OR (p_scope <> 'global' AND p_scope !~ '^[a-z][a-z0-9_-]*:[^[:space:][:cntrl:]]+$') THEN
        RAISE EXCEPTION 'flagctl: invalid scope %', coalesce(p_scope, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'use global, or KIND:VALUE such as workspace:42';
    END IF;
    PERFORM flagctl.bounded_lock_wait();
    RETURN cat;
END
$_$;


--
-- Name: kill_equal(jsonb, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_equal(p_value jsonb, p_expected jsonb) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    SELECT CASE
        WHEN jsonb_typeof(p_value) = 'object' AND p_value ? 'enabled' AND jsonb_typeof(p_expected) = 'boolean'
            THEN flagctl.kill_truthy(p_value) = p_expected::text::boolean
        WHEN jsonb_typeof(p_value) = 'object' AND p_value ? 'enabled'
            THEN (p_value->'percent') = p_expected
        ELSE coalesce(p_value = p_expected, false) END
$$;


--
-- Name: kill_hold(text, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_hold(p_system text, p_switch text, p_scope text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.current_change();
    cat jsonb := (flagctl.published(p_system)).catalogue;
BEGIN
    IF ctx.action IS NULL OR NOT (regexp_replace(ctx.action, '^drill\.', '') IN ('kill', 'release')
                                  OR ctx.action = 'rollback.auto') THEN
        RAISE EXCEPTION 'flagctl: kill_hold takes a kill''s locks only in a change declared as a kill or a release'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('SELECT * FROM flagctl.kill(%L, %L, ''INC-123: why'') takes its own', p_system, p_switch);
    END IF;
    PERFORM flagctl.kill_role(ctx.action, ctx.action);
    PERFORM flagctl.bounded_lock_wait();
    PERFORM flagctl.kill_lock(p_system, ARRAY(
        SELECT DISTINCT k FROM (SELECT jsonb_object_keys(coalesce(cat->'switches'->p_switch->'settings', '{}')) AS k
                                UNION ALL
                                SELECT jsonb_object_keys(e.settings) FROM flagctl.engaged_switch e
                                 WHERE e.system = p_system AND e.switch = p_switch AND e.scope = p_scope) AS u));
END
$$;


--
-- Name: kill_in_order(jsonb[]); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_in_order(p_items jsonb[]) RETURNS jsonb[]
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog'
    AS $$
    SELECT coalesce(array_agg(i ORDER BY i->>'flag' COLLATE "C", i->>'scope' <> 'global', i->>'scope' COLLATE "C"), '{}')
      FROM unnest(p_items) AS i
$$;


--
-- Name: kill_left_at(text, flagctl.engaged_switch[], text, text, jsonb, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_left_at(p_kind text, p_holders flagctl.engaged_switch[], p_flag text, p_scope text, p_global jsonb, p_default jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    base   jsonb := flagctl.kill_base_at(p_holders, p_flag, p_scope);
    latest flagctl.engaged_switch;
BEGIN
    IF p_scope = 'global' THEN
        RETURN flagctl.kill_overlay_all(p_kind, coalesce(base, p_default, p_global), p_flag, p_holders);
    END IF;
    IF base IS NOT NULL THEN
        RETURN flagctl.kill_overlay_all(p_kind, base, p_flag, p_holders);
    END IF;
    SELECT h.* INTO latest FROM unnest(p_holders) AS h WHERE h.scope = p_scope ORDER BY h.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;  -- its scoped kills are gone, and the override with them
    END IF;
    RETURN flagctl.kill_overlay_all(p_kind, flagctl.kill_recorded(latest, 'applied', p_flag, p_scope), p_flag,
                                    ARRAY(SELECT h FROM unnest(p_holders) AS h WHERE h.scope = 'global'));
END
$$;


--
-- Name: kill_lock(text, text[]); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_lock(p_system text, p_flags text[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    PERFORM flagctl.kill_lock_flags(p_system, p_flags);
    PERFORM 1 FROM flagctl.engaged_switch e WHERE e.system = p_system ORDER BY e.seq FOR UPDATE;
END
$$;


--
-- Name: kill_lock_flags(text, text[]); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_lock_flags(p_system text, p_flags text[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $_$
DECLARE
    own text[] := ARRAY(SELECT f FROM unnest(p_flags) AS f
                         WHERE NOT EXISTS (SELECT 1 FROM flagctl.binding b WHERE b.system = p_system AND b.flag = f)
                         ORDER BY f COLLATE "C");
    t   record;
BEGIN
    IF cardinality(own) > 256 THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_system || '/*', 0));
    ELSIF cardinality(own) > 0 THEN
        PERFORM pg_advisory_xact_lock_shared(hashtextextended(p_system || '/*', 0));
        PERFORM pg_advisory_xact_lock(hashtextextended(p_system || '/' || f, 0))
           FROM unnest(own) WITH ORDINALITY AS u(f, n) ORDER BY n;
    END IF;
    PERFORM 1 FROM flagctl.flag_state s WHERE s.system = p_system AND s.flag = ANY(own) FOR UPDATE;
    FOR t IN SELECT b.table_schema, b.table_name, jsonb_agg(b.key ORDER BY b.flag) AS keys,
                    (SELECT string_agg(format('t.%1$I = k.%1$I', c), ' AND ')
                       FROM jsonb_object_keys(min(b.key::text)::jsonb) AS c) AS matching
               FROM flagctl.binding b
              WHERE b.system = p_system AND b.flag = ANY(p_flags)
              GROUP BY b.table_schema, b.table_name
              ORDER BY format('%s.%s', b.table_schema, b.table_name) COLLATE "C" LOOP
        EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %1$I.%2$I AS t'
                       ' JOIN jsonb_populate_recordset(NULL::%1$I.%2$I, $1) AS k ON %3$s FOR UPDATE OF t) AS l',
                       t.table_schema, t.table_name, t.matching)
           USING t.keys;
    END LOOP;
END
$_$;


--
-- Name: kill_norm(text, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_norm(p_kind text, p_value jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog'
    AS $$
    SELECT CASE
        WHEN p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN NULL
        WHEN p_kind = 'rollout' AND jsonb_typeof(p_value) = 'object' THEN
            jsonb_build_object('enabled', coalesce((p_value->>'enabled')::boolean, false),
                               'percent', coalesce((p_value->>'percent')::numeric::integer, 0))
            || CASE WHEN coalesce((p_value->>'internal')::boolean, false)
                    THEN '{"internal": true}'::jsonb ELSE '{}'::jsonb END
        ELSE p_value
    END
$$;


--
-- Name: kill_not_taken(regclass, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_not_taken(p_table regclass, p_what text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    culprits text := (SELECT string_agg(i, ', ') FROM flagctl.interference(p_table) AS i);
    v_schema text;
    v_table text;
BEGIN
    SELECT n.nspname, c.relname INTO v_schema, v_table
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_table;
    RAISE EXCEPTION 'flagctl: the change did not take in %: %; nothing was changed', p_table,
        p_what || CASE WHEN culprits IS NOT NULL THEN '; in the way: ' || culprits ELSE '' END
        USING ERRCODE = 'FL001', SCHEMA = v_schema, TABLE = v_table, DETAIL = p_what,
              HINT = 'a trigger or rule of the table''s own kept, changed or skipped flagctl''s write: let '
                     'flagctl''s writes through (or drop it), then re-run; flagctl db status lists them';
END
$$;


--
-- Name: kill_overlay(text, jsonb, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_overlay(p_kind text, p_value jsonb, p_setting jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog'
    AS $$
    SELECT CASE
        WHEN p_kind IS DISTINCT FROM 'rollout' THEN p_setting
        ELSE flagctl.kill_norm('rollout', jsonb_build_object(
            'enabled', coalesce((p_value->>'enabled')::boolean, false)
                       AND coalesce((p_setting->>'enabled')::boolean, true),
            'percent', least(coalesce((p_value->>'percent')::numeric::integer, 0),
                             coalesce((p_setting->>'percent')::integer, 100)),
            'internal', coalesce((p_value->>'internal')::boolean, false)
                        AND coalesce((p_setting->>'internal')::boolean, true)))
    END
$$;


--
-- Name: kill_overlay_all(text, jsonb, text, flagctl.engaged_switch[]); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_overlay_all(p_kind text, p_start jsonb, p_flag text, p_holders flagctl.engaged_switch[]) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    v jsonb := p_start;
    s jsonb;
BEGIN
    FOR s IN SELECT h.settings->p_flag FROM unnest(p_holders) AS h ORDER BY h.level, h.seq LOOP
        v := flagctl.kill_overlay(p_kind, v, s);
    END LOOP;
    RETURN v;
END
$$;


--
-- Name: kill_recorded(flagctl.engaged_switch, text, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_recorded(e flagctl.engaged_switch, p_what text, p_flag text, p_scope text) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog'
    AS $$
    SELECT nullif(CASE WHEN p_scope = e.scope
                       THEN CASE p_what WHEN 'prior' THEN e.prior->p_flag ELSE e.applied->p_flag END
                       ELSE e.below->p_flag->p_scope->p_what END, 'null'::jsonb)
$$;


--
-- Name: kill_role(text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_role(p_action text, p_declared text) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    IF NOT flagctl.may(p_declared) THEN
        RAISE EXCEPTION 'flagctl: % may not %: it needs the role %', session_user, p_action, flagctl.role_for(p_declared)
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('flagctl db grant %s %s', replace(flagctl.role_for(p_declared), 'flagctl_', ''), session_user);
    END IF;
END
$$;


--
-- Name: kill_scopes(text, flagctl.engaged_switch[], text[]); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_scopes(p_flag text, p_engaged flagctl.engaged_switch[], p_scopes text[]) RETURNS TABLE(scope text, holders flagctl.engaged_switch[])
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    WITH s AS MATERIALIZED (SELECT u.scope, u.n FROM unnest(p_scopes) WITH ORDINALITY AS u(scope, n)),
    e AS MATERIALIZED (SELECT * FROM unnest(p_engaged) AS h WHERE h.settings ? p_flag),
    b AS MATERIALIZED (SELECT e.seq, x.key, x.value FROM e, jsonb_each(coalesce(e.below->p_flag, '{}')) AS x
                        WHERE e.scope = 'global'),
    covering AS (SELECT s.n, e.seq FROM s JOIN e ON e.scope = s.scope
                 UNION
                 SELECT s.n, b.seq FROM s JOIN b ON b.key = s.scope)
    SELECT s.scope,
           coalesce(array_agg(ROW(e.system, e.switch, e.scope, e.level, e.seq, e.engaged_at, e.actor, e.db_user,
                                  e.reason, e.prior, e.applied, e.settings,
                                  CASE WHEN b.seq IS NULL THEN '{}'
                                       ELSE jsonb_build_object(p_flag, jsonb_build_object(s.scope, b.value)) END
                              )::flagctl.engaged_switch ORDER BY e.level, e.seq) FILTER (WHERE e.seq IS NOT NULL), '{}')
      FROM s
      LEFT JOIN covering c ON c.n = s.n
      LEFT JOIN e ON e.seq = c.seq
      LEFT JOIN b ON b.seq = c.seq AND b.key = s.scope
     GROUP BY s.n, s.scope
     ORDER BY s.n
$$;


--
-- Name: kill_slim(text, text[]); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_slim(p_system text, p_flags text[]) RETURNS TABLE(flag text, engaged flagctl.engaged_switch[])
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    WITH e AS MATERIALIZED (SELECT * FROM flagctl.engaged_switch e WHERE e.system = p_system),
    settings AS (SELECT e.seq, x.key, x.value FROM e, jsonb_each(e.settings) AS x),
    prior AS (SELECT e.seq, x.key, x.value FROM e, jsonb_each(e.prior) AS x),
    applied AS (SELECT e.seq, x.key, x.value FROM e, jsonb_each(e.applied) AS x),
    below AS (SELECT e.seq, x.key, x.value FROM e, jsonb_each(e.below) AS x)
    SELECT u.flag,
           coalesce(array_agg(ROW(e.system, e.switch, e.scope, e.level, e.seq, e.engaged_at, e.actor, e.db_user,
                                  e.reason,
                                  CASE WHEN p.seq IS NULL THEN '{}' ELSE jsonb_build_object(u.flag, p.value) END,
                                  CASE WHEN a.seq IS NULL THEN '{}' ELSE jsonb_build_object(u.flag, a.value) END,
                                  jsonb_build_object(u.flag, s.value),
                                  CASE WHEN b.seq IS NULL THEN '{}' ELSE jsonb_build_object(u.flag, b.value) END
                              )::flagctl.engaged_switch ORDER BY e.seq) FILTER (WHERE e.seq IS NOT NULL), '{}')
      FROM unnest(p_flags) AS u(flag)
      LEFT JOIN settings s ON s.key = u.flag
      LEFT JOIN e ON e.seq = s.seq
      LEFT JOIN prior p ON p.seq = s.seq AND p.key = u.flag
      LEFT JOIN applied a ON a.seq = s.seq AND a.key = u.flag
      LEFT JOIN below b ON b.seq = s.seq AND b.key = u.flag
     GROUP BY u.flag
     ORDER BY u.flag COLLATE "C"
$$;


--
-- Name: kill_state(text, jsonb, text[]); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_state(p_system text, p_cat jsonb, p_flags text[]) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $_$
DECLARE
    fc      jsonb := p_cat->'flags';
    own     jsonb;
    bound   jsonb := '{}';
    b       flagctl.binding;
    matched jsonb;
BEGIN
    SELECT jsonb_object_agg(o.flag, jsonb_build_object(
               'global', coalesce(o.g, flagctl.kill_norm(fc->o.flag->>'type', fc->o.flag->'default')),
               'stored', o.g IS NOT NULL, 'overrides', coalesce(o.over, '{}')))
      INTO own
      FROM (SELECT u.flag,
                   flagctl.kill_norm(fc->u.flag->>'type', (array_agg(s.value) FILTER (WHERE s.scope = 'global'))[1]) AS g,
                   jsonb_object_agg(s.scope, flagctl.kill_norm(fc->u.flag->>'type', s.value))
                       FILTER (WHERE s.scope <> 'global') AS over
              FROM unnest(p_flags) AS u(flag)
              LEFT JOIN flagctl.flag_state s ON s.system = p_system AND s.flag = u.flag
             WHERE NOT EXISTS (SELECT 1 FROM flagctl.binding bd WHERE bd.system = p_system AND bd.flag = u.flag)
             GROUP BY u.flag) AS o;
    FOR b IN SELECT bd.* FROM flagctl.binding bd WHERE bd.system = p_system AND bd.flag = ANY(p_flags) LOOP
        EXECUTE format('SELECT jsonb_agg(to_jsonb(t)) FROM %1$I.%2$I AS t'
                       ' JOIN jsonb_populate_record(NULL::%1$I.%2$I, $1) AS k ON %3$s',
                       b.table_schema, b.table_name,
                       (SELECT string_agg(format('t.%1$I = k.%1$I', c), ' AND ') FROM jsonb_object_keys(b.key) AS c))
           INTO matched USING b.key;
        IF coalesce(jsonb_array_length(matched), 0) <> 1 THEN
            RAISE EXCEPTION 'flagctl: flag %: % rows % in bound table %.%', b.flag, coalesce(jsonb_array_length(matched), 0),
                b.key, b.table_schema, b.table_name
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'the key columns must identify exactly one row; the application owns it';
        END IF;
        bound := bound || jsonb_build_object(b.flag, jsonb_build_object(
            'global', flagctl.kill_norm(fc->b.flag->>'type', flagctl.bound_value(b.columns, matched->0)),
            'stored', true, 'overrides', '{}'::jsonb));
    END LOOP;
    RETURN coalesce(own, '{}') || bound;
END
$_$;


--
-- Name: kill_truthy(jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_truthy(p_value jsonb) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog'
    AS $$
    SELECT CASE jsonb_typeof(p_value)
        WHEN 'object' THEN CASE WHEN p_value ? 'enabled'
                                THEN coalesce((p_value->>'enabled')::boolean, false)
                                     AND (coalesce((p_value->>'percent')::numeric, 0) > 0
                                          OR coalesce((p_value->>'internal')::boolean, false))
                                ELSE p_value <> '{}'::jsonb END
        WHEN 'boolean' THEN p_value::text::boolean
        WHEN 'number' THEN (p_value #>> '{}')::numeric <> 0
        WHEN 'string' THEN (p_value #>> '{}') <> ''
        WHEN 'array' THEN jsonb_array_length(p_value) > 0
        ELSE false END
$$;


--
-- Name: kill_violations(jsonb, jsonb, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_violations(p_cat jsonb, p_state jsonb, p_scope text) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    rule  jsonb;
    v     jsonb;
    n     numeric;
    found text[] := '{}';
    ons   text[];
BEGIN
    FOR rule IN SELECT * FROM jsonb_array_elements(coalesce(p_cat->'constraints', '[]')) LOOP
        IF rule ? 'range' THEN
            v := p_state->(rule->'range'->>'flag');
            n := CASE WHEN jsonb_typeof(v) = 'object' THEN (v->>'percent')::numeric ELSE (v #>> '{}')::numeric END;
            IF n < (rule->'range'->>'min')::numeric OR n > (rule->'range'->>'max')::numeric THEN
                found := found || format('%s would be violated at %s: %s = %s is outside %s..%s', rule->>'name', p_scope, rule->'range'->>'flag', n,
                                         coalesce(rule->'range'->>'min', ''), coalesce(rule->'range'->>'max', ''));
            END IF;
        ELSIF rule ? 'one_of' THEN
            v := p_state->(rule->'one_of'->>'flag');
            IF NOT (rule->'one_of'->'values') @> jsonb_build_array(v) THEN
                found := found || format('%s would be violated at %s: %s = %s is not one of %s', rule->>'name', p_scope, rule->'one_of'->>'flag', v,
                                         rule->'one_of'->'values');
            END IF;
        ELSIF rule ? 'exclusive' THEN
            ons := ARRAY(SELECT f FROM jsonb_array_elements_text(rule->'exclusive') AS f
                          WHERE flagctl.kill_truthy(p_state->f));
            IF cardinality(ons) > 1 THEN
                found := found || format('%s would be violated at %s: %s are all true; at most one may be', rule->>'name', p_scope, array_to_string(ons, ' and '));
            END IF;
        ELSIF rule ? 'implies' THEN
            IF NOT EXISTS (SELECT 1 FROM jsonb_each(rule->'implies'->'if') AS c
                            WHERE NOT flagctl.kill_equal(p_state->c.key, c.value)) THEN
                ons := ARRAY(SELECT format('%s = %s (is %s)', c.key, c.value, coalesce(p_state->c.key, 'null'::jsonb))
                               FROM jsonb_each(rule->'implies'->'then') AS c
                              WHERE NOT flagctl.kill_equal(p_state->c.key, c.value) ORDER BY c.key);
                IF cardinality(ons) > 0 THEN
                    found := found || format('%s would be violated at %s: when %s, %s', rule->>'name', p_scope, rule->'implies'->'if', array_to_string(ons, ', '));
                END IF;
            END IF;
        END IF;
    END LOOP;
    RETURN found;
END
$$;


--
-- Name: kill_waiter(integer); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_waiter(p_waiter integer) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
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


--
-- Name: kill_with(text, flagctl.engaged_switch[], flagctl.engaged_switch, text, text, jsonb, jsonb, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_with(p_kind text, p_holders flagctl.engaged_switch[], me flagctl.engaged_switch, p_flag text, p_scope text, p_now jsonb, p_global jsonb, p_default jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    base jsonb;
BEGIN
    IF coalesce(cardinality(p_holders), 0) = 0 THEN
        RETURN flagctl.kill_overlay(p_kind, coalesce(p_now, p_global), me.settings->p_flag);
    END IF;
    base := flagctl.kill_base_at(p_holders, p_flag, p_scope);
    IF p_scope = 'global' THEN
        RETURN flagctl.kill_overlay_all(p_kind, coalesce(base, p_default, p_global), p_flag, p_holders || me);
    END IF;
    IF base IS NULL AND me.scope = 'global' THEN  -- a scoped kill's own override: overlay what it left
        RETURN flagctl.kill_overlay(p_kind, flagctl.kill_left_at(p_kind, p_holders, p_flag, p_scope, p_global, NULL),
                                    me.settings->p_flag);
    END IF;
    RETURN flagctl.kill_overlay_all(p_kind, coalesce(base, p_global), p_flag, p_holders || me);
END
$$;


--
-- Name: kill_without(text, flagctl.engaged_switch[], flagctl.engaged_switch, text, text, jsonb, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_without(p_kind text, p_holders flagctl.engaged_switch[], rec flagctl.engaged_switch, p_flag text, p_scope text, p_global jsonb, p_default jsonb) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    others flagctl.engaged_switch[] := ARRAY(SELECT h FROM unnest(p_holders) AS h
                                              WHERE (h.switch, h.scope) <> (rec.switch, rec.scope)
                                              ORDER BY h.level, h.seq);
    base   jsonb := flagctl.kill_base_at(p_holders, p_flag, p_scope);
BEGIN
    IF cardinality(others) = 0 THEN
        RETURN base;
    END IF;
    IF p_scope = 'global' THEN
        RETURN flagctl.kill_overlay_all(p_kind, coalesce(base, p_default, p_global), p_flag, others);
    END IF;
    IF base IS NOT NULL THEN
        RETURN flagctl.kill_overlay_all(p_kind, base, p_flag, others);
    END IF;
    IF rec.scope = 'global' THEN
        RETURN flagctl.kill_left_at(p_kind, others, p_flag, p_scope, p_global, NULL);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM unnest(others) AS h WHERE h.scope = p_scope) THEN
        RETURN NULL;  -- the last scoped kill goes; the global kills hold the global value
    END IF;
    RETURN flagctl.kill_overlay_all(p_kind, p_global, p_flag, others);
END
$$;


--
-- Name: kill_write(text, text, text, text, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_write(p_system text, p_kind text, p_flag text, p_scope text, p_after jsonb) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $_$
DECLARE
    b      flagctl.binding;
    got    jsonb;
    assign jsonb;
BEGIN
    SELECT * INTO b FROM flagctl.binding bd WHERE bd.system = p_system AND bd.flag = p_flag;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flagctl: flag % of system % is no bound flag', p_flag, p_system
            USING HINT = 'flagctl.kill_write_all writes flagctl''s own flags';
    END IF;
    -- A bound flag: its row's value columns, typed by the table itself.
    SELECT jsonb_object_agg(c.value #>> '{}',
                            CASE WHEN b.columns ? 'value' THEN p_after
                                 ELSE coalesce(p_after->c.key, CASE WHEN c.key = 'internal' THEN 'false'::jsonb END) END)
      INTO assign FROM jsonb_each(b.columns) AS c;
    BEGIN
        EXECUTE format('UPDATE %1$I.%2$I AS t SET %3$s FROM jsonb_populate_record(NULL::%1$I.%2$I, $1) AS v'
                       ' WHERE %4$s RETURNING to_jsonb(t)',
                       b.table_schema, b.table_name,
                       (SELECT string_agg(format('%1$I = v.%1$I', c), ', ') FROM jsonb_object_keys(assign) AS c),
                       (SELECT string_agg(format('t.%1$I = v.%1$I', c), ' AND ') FROM jsonb_object_keys(b.key) AS c))
           INTO got USING b.key || assign;
    EXCEPTION WHEN feature_not_supported THEN  -- a rule rewrites the UPDATE: it cannot return rows
        PERFORM flagctl.kill_not_taken(format('%I.%I', b.table_schema, b.table_name)::regclass,
                                       'a rule rewrites every UPDATE of the table');
    END;
    IF got IS NULL OR flagctl.kill_norm(p_kind, flagctl.bound_value(b.columns, got)) IS DISTINCT FROM p_after THEN
        PERFORM flagctl.kill_not_taken(format('%I.%I', b.table_schema, b.table_name)::regclass,
            format('row %s: %s instead of %s', b.key,
                   CASE WHEN got IS NULL THEN 'no row was updated' ELSE flagctl.bound_value(b.columns, got)::text END,
                   p_after));
    END IF;
END
$_$;


--
-- Name: kill_write_all(text, jsonb[]); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.kill_write_all(p_system text, p_changes jsonb[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    c      jsonb;
    bad    record;
    w_flags  text[];
    w_scopes text[];
    w_vals   jsonb[];
    w_kinds  text[];
    d_flags  text[];
    d_scopes text[];
    got_flags  text[];
    got_scopes text[];
    got_vals   jsonb[];
BEGIN
    FOREACH c IN ARRAY p_changes LOOP  -- bound flags: a row of the application's each
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM flagctl.binding bd WHERE bd.system = p_system AND bd.flag = c->>'flag');
        PERFORM flagctl.kill_write(p_system, c->>'kind', c->>'flag', c->>'scope', nullif(c->'after', 'null'::jsonb));
    END LOOP;
    SELECT array_agg(u.c->>'flag' ORDER BY u.n) FILTER (WHERE nullif(u.c->'after', 'null'::jsonb) IS NULL),
           array_agg(u.c->>'scope' ORDER BY u.n) FILTER (WHERE nullif(u.c->'after', 'null'::jsonb) IS NULL),
           array_agg(u.c->>'flag' ORDER BY u.n) FILTER (WHERE nullif(u.c->'after', 'null'::jsonb) IS NOT NULL),
           array_agg(u.c->>'scope' ORDER BY u.n) FILTER (WHERE nullif(u.c->'after', 'null'::jsonb) IS NOT NULL),
           array_agg(u.c->'after' ORDER BY u.n) FILTER (WHERE nullif(u.c->'after', 'null'::jsonb) IS NOT NULL),
           array_agg(u.c->>'kind' ORDER BY u.n) FILTER (WHERE nullif(u.c->'after', 'null'::jsonb) IS NOT NULL)
      INTO d_flags, d_scopes, w_flags, w_scopes, w_vals, w_kinds
      FROM unnest(p_changes) WITH ORDINALITY AS u(c, n)
     WHERE NOT EXISTS (SELECT 1 FROM flagctl.binding bd WHERE bd.system = p_system AND bd.flag = u.c->>'flag');
    BEGIN
        IF d_flags IS NOT NULL THEN
            DELETE FROM flagctl.flag_state s USING unnest(d_flags, d_scopes) AS d(flag, scope)
             WHERE s.system = p_system AND s.flag = d.flag AND s.scope = d.scope;
            SELECT d.flag, d.scope INTO bad FROM unnest(d_flags, d_scopes) WITH ORDINALITY AS d(flag, scope, n)
             WHERE EXISTS (SELECT 1 FROM flagctl.flag_state s WHERE s.system = p_system AND s.flag = d.flag AND s.scope = d.scope)
             ORDER BY d.n LIMIT 1;
            IF FOUND THEN
                PERFORM flagctl.kill_not_taken('flagctl.flag_state', format('%s at %s: still stored, it was to be removed',
                                                                              bad.flag, bad.scope));
            END IF;
        END IF;
        IF w_flags IS NOT NULL THEN
            -- The rows stored (locked by kill_lock_flags) are updated; the rest inserted, or
            -- updated should one have appeared meanwhile.
            WITH done AS (
                UPDATE flagctl.flag_state s SET value = w.value, updated_at = now()
                  FROM unnest(w_flags, w_scopes, w_vals) AS w(flag, scope, value)
                 WHERE s.system = p_system AND s.flag = w.flag AND s.scope = w.scope
                RETURNING s.flag, s.scope, s.value)
            SELECT array_agg(d.flag), array_agg(d.scope), array_agg(d.value) INTO got_flags, got_scopes, got_vals FROM done d;
            WITH rest AS (
                SELECT w.flag, w.scope, w.value, w.n FROM unnest(w_flags, w_scopes, w_vals) WITH ORDINALITY AS w(flag, scope, value, n)
                 WHERE NOT EXISTS (SELECT 1 FROM unnest(got_flags, got_scopes) AS g(flag, scope)
                                    WHERE g.flag = w.flag AND g.scope = w.scope)
            ), done AS (
                INSERT INTO flagctl.flag_state AS s (system, flag, scope, value)
                SELECT p_system, r.flag, r.scope, r.value FROM rest r ORDER BY r.n
                    ON CONFLICT (system, flag, scope) DO UPDATE SET value = excluded.value, updated_at = now()
                RETURNING s.flag, s.scope, s.value)
            SELECT coalesce(got_flags, '{}') || array_agg(d.flag), coalesce(got_scopes, '{}') || array_agg(d.scope),
                   coalesce(got_vals, '{}') || array_agg(d.value)
              INTO got_flags, got_scopes, got_vals FROM done d;
        END IF;
    EXCEPTION WHEN feature_not_supported THEN  -- a rule rewrites the write: it cannot return rows
        PERFORM flagctl.kill_not_taken('flagctl.flag_state', 'a rule rewrites the writes of the table');
    END;
    IF w_flags IS NULL THEN
        RETURN;
    END IF;
    -- Read back: each row written holds its value (as flagctl compares it), or it did not take.
    SELECT w.flag, w.scope, w.value, g.value AS got INTO bad
      FROM unnest(w_flags, w_scopes, w_vals, w_kinds) WITH ORDINALITY AS w(flag, scope, value, kind, n)
      LEFT JOIN unnest(got_flags, got_scopes, got_vals) AS g(flag, scope, value) ON g.flag = w.flag AND g.scope = w.scope
     WHERE g.value IS DISTINCT FROM w.value  -- the values written are as flagctl compares them
       AND flagctl.kill_norm(w.kind, g.value) IS DISTINCT FROM w.value
     ORDER BY w.n LIMIT 1;
    IF FOUND THEN
        PERFORM flagctl.kill_not_taken('flagctl.flag_state', format('%s at %s: %s instead of %s', bad.flag, bad.scope,
                                                                      coalesce(bad.got::text, 'nothing'), bad.value));
    END IF;
END
$$;


--
-- Name: mark_forced(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.mark_forced() RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    UPDATE flagctl.change_context SET forced = true WHERE txid = txid_current();
$$;


--
-- Name: may(text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.may(p_action text) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog'
    AS $$
    SELECT pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER')
        OR EXISTS (SELECT 1
                     FROM unnest(CASE WHEN p_action IN ('review', 'review.refused') OR p_action LIKE 'notify.%'
                                      THEN ARRAY['flagctl_release', 'flagctl_security', 'flagctl_ops']
                                      ELSE ARRAY[flagctl.role_for(p_action)] END
                                 || ARRAY['flagctl_operator', 'flagctl_admin']) AS r(name)
                    WHERE to_regrole(r.name) IS NOT NULL
                      AND pg_has_role(session_user, to_regrole(r.name), 'MEMBER'))
$$;


--
-- Name: move_base(text, text, jsonb, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.move_base(p_system text, p_switch text, p_prior jsonb, p_applied jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    PERFORM flagctl.write_declared('flagctl.move_base moves the base beneath a kill');
    UPDATE flagctl.engaged_switch SET prior = p_prior, applied = p_applied
     WHERE system = p_system AND switch = p_switch AND scope = 'global';
END
$$;


--
-- Name: murmur3_32(bytea, bigint); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.murmur3_32(data bytea, seed bigint DEFAULT 0) RETURNS bigint
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
DECLARE
    c1  CONSTANT bigint := 3432918353;  -- 0xcc9e2d51
    c2  CONSTANT bigint := 461845907;   -- 0x1b873593
    m32 CONSTANT bigint := 4294967295;
    h   bigint := seed & m32;
    len integer := length(data);
    nblocks integer := len / 4;
    tail integer := (len / 4) * 4;
    k   bigint;
    i   integer;
BEGIN
    FOR i IN 0 .. nblocks - 1 LOOP
        k := get_byte(data, i * 4)::bigint
           | (get_byte(data, i * 4 + 1)::bigint << 8)
           | (get_byte(data, i * 4 + 2)::bigint << 16)
           | (get_byte(data, i * 4 + 3)::bigint << 24);
        k := (((k & 65535) * c1) + ((((k >> 16) * c1) & 65535) << 16)) & m32;
        k := ((k << 15) | (k >> 17)) & m32;
        k := (((k & 65535) * c2) + ((((k >> 16) * c2) & 65535) << 16)) & m32;
        h := h # k;
        h := ((h << 13) | (h >> 19)) & m32;
        h := (h * 5 + 3864292196) & m32;  -- 0xe6546b64
    END LOOP;
    k := 0;
    IF len & 3 >= 3 THEN k := k # (get_byte(data, tail + 2)::bigint << 16); END IF;
    IF len & 3 >= 2 THEN k := k # (get_byte(data, tail + 1)::bigint << 8); END IF;
    IF len & 3 >= 1 THEN
        k := k # get_byte(data, tail)::bigint;
        k := (((k & 65535) * c1) + ((((k >> 16) * c1) & 65535) << 16)) & m32;
        k := ((k << 15) | (k >> 17)) & m32;
        k := (((k & 65535) * c2) + ((((k >> 16) * c2) & 65535) << 16)) & m32;
        h := h # k;
    END IF;
    h := h # len;
    h := h # (h >> 16);
    h := (((h & 65535) * 2246822507) + ((((h >> 16) * 2246822507) & 65535) << 16)) & m32;  -- 0x85ebca6b
    h := h # (h >> 13);
    h := (((h & 65535) * 3266489909) + ((((h >> 16) * 3266489909) & 65535) << 16)) & m32;  -- 0xc2b2ae35
    h := h # (h >> 16);
    RETURN h;
END
$$;


--
-- Name: narrows_base(text, jsonb, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.narrows_base(p_system text, before jsonb, after jsonb) RETURNS boolean
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    cat  jsonb := (flagctl.published(p_system)).catalogue;
    f    record;
    kind text;
    was  jsonb;
BEGIN
    IF jsonb_typeof(before) <> 'object' OR jsonb_typeof(after) <> 'object'
       OR (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(before) AS k)
          IS DISTINCT FROM (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(after) AS k) THEN
        RETURN false;
    END IF;
    IF cat IS NULL THEN
        RETURN true;  -- nothing published to judge by: roles only, as for every write
    END IF;
    FOR f IN SELECT b.key, b.value AS old, a.value AS new
               FROM jsonb_each(before) AS b JOIN jsonb_each(after) AS a ON a.key = b.key
              WHERE a.value IS DISTINCT FROM b.value LOOP
        kind := cat->'flags'->f.key->>'type';
        IF kind IS NULL OR f.new IS NULL OR jsonb_typeof(f.new) = 'null' THEN
            RETURN false;
        END IF;
        IF kind IN ('rollout', 'bool') THEN
            was := coalesce(nullif(f.old, 'null'::jsonb), cat->'flags'->f.key->'default');
            IF NOT coalesce(flagctl.exposure(kind, f.new) <= flagctl.exposure(kind, was), false) THEN
                RETURN false;
            END IF;
        END IF;
    END LOOP;
    RETURN true;
END
$$;


--
-- Name: notify_record(text, text, bigint, bigint, bigint, text, integer, text, integer, text, timestamp with time zone); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.notify_record(p_system text, p_sink text, p_from bigint, p_to bigint, p_seq bigint, p_event_id text, p_attempt integer, p_outcome text, p_status integer, p_error text, p_next timestamp with time zone) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('a notification delivery', ARRAY['notify.']);
    row_pos bigint;
BEGIN
    PERFORM 1 FROM flagctl.notify_cursor c
      WHERE c.system = p_system AND c.sink = p_sink AND c.pos = p_from
      FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flagctl: the cursor of sink % of % is not at %: another deliverer moved it', p_sink,
            p_system, p_from
            USING ERRCODE = 'lock_not_available';
    END IF;
    IF p_to IS NULL OR p_to <= p_from OR NOT EXISTS (SELECT 1 FROM flagctl.audit_seal s WHERE s.pos = p_to) THEN
        RAISE EXCEPTION 'flagctl: % is not a seal position after %', p_to, p_from
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_seq IS NOT NULL THEN
        SELECT s.pos INTO row_pos
          FROM flagctl.audit_seal s JOIN flagctl.audit a ON a.seq = s.seq
         WHERE s.seq = p_seq AND a.system = p_system AND s.pos > p_from AND s.pos <= p_to;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'flagctl: audit row % of % is not sealed after % and by %', p_seq, p_system, p_from,
                p_to
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF p_outcome IS NULL OR p_outcome NOT IN ('delivered', 'failed') OR p_attempt IS NULL OR p_attempt < 1
           OR p_event_id IS NULL THEN
            RAISE EXCEPTION 'flagctl: an attempt has an event id, a number from 1, and is delivered or failed'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        INSERT INTO flagctl.notify_delivery (system, sink, audit_seq, pos, event_id, attempt, outcome,
                                             http_status, error, next_attempt_at, actor)
        VALUES (p_system, p_sink, p_seq, row_pos, p_event_id, p_attempt, p_outcome, p_status, left(p_error, 2000),
                CASE WHEN p_outcome = 'failed' THEN p_next END, ctx.actor);
        IF p_outcome = 'failed' THEN
            RETURN;
        END IF;
    END IF;
    UPDATE flagctl.notify_cursor SET pos = p_to, updated_at = now()
     WHERE system = p_system AND sink = p_sink;
END
$$;


--
-- Name: notify_start(text, text, bigint); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.notify_start(p_system text, p_sink text, p_pos bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    found_pos bigint;
BEGIN
    PERFORM flagctl.record_declared('a notification cursor', ARRAY['notify.']);
    INSERT INTO flagctl.notify_cursor (system, sink, pos)
    VALUES (p_system, p_sink,
            least(greatest(coalesce(p_pos, 0), 0), coalesce((SELECT max(s.pos) FROM flagctl.audit_seal s), 0)))
        ON CONFLICT (system, sink) DO NOTHING;
    SELECT c.pos INTO found_pos FROM flagctl.notify_cursor c WHERE c.system = p_system AND c.sink = p_sink;
    RETURN found_pos;
END
$$;


--
-- Name: publish_manifest(text, text, jsonb, text, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.publish_manifest(p_system text, p_source text, p_catalogue jsonb, p_actor text, p_reason text, p_command text) RETURNS TABLE(version integer, sha256 text, new boolean)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    current flagctl.catalogue := flagctl.published(p_system);
    digest text := encode(sha256(convert_to(p_source, 'UTF8')), 'hex');
    next_version integer;
BEGIN
    IF NOT flagctl.may('manifest.publish') THEN
        RAISE EXCEPTION 'flagctl: % may not publish a manifest: it needs the role flagctl_release', session_user
            USING ERRCODE = 'insufficient_privilege', HINT = 'flagctl db grant release ' || session_user;
    END IF;
    IF p_catalogue->>'system' IS DISTINCT FROM p_system THEN
        RAISE EXCEPTION 'flagctl: the catalogue is for system %, not %', p_catalogue->>'system', p_system
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('flagctl.catalogue:' || p_system, 0));
    current := flagctl.published(p_system);
    IF current.sha256 = digest THEN
        RETURN QUERY SELECT current.version, current.sha256, false;
        RETURN;
    END IF;
    next_version := coalesce(current.version, 0) + 1;
    INSERT INTO flagctl.change_context (txid, action, actor, reason, command, db_user)
    VALUES (txid_current(), 'manifest.publish', nullif(p_actor, ''), nullif(p_reason, ''), nullif(p_command, ''),
            session_user)
    ON CONFLICT (txid) DO UPDATE
       SET action = excluded.action, actor = excluded.actor, reason = excluded.reason, command = excluded.command;
    INSERT INTO flagctl.catalogue (system, version, sha256, source, catalogue, actor, reason)
    VALUES (p_system, next_version, digest, p_source, p_catalogue, nullif(p_actor, ''), nullif(p_reason, ''));
    INSERT INTO flagctl.audit (action, system, scope, target, before, after)
    VALUES ('manifest.publish', p_system, 'global', 'manifest:' || p_system,
            CASE WHEN current.version IS NOT NULL
                 THEN jsonb_build_object('version', current.version, 'sha256', current.sha256) END,
            jsonb_build_object('version', next_version, 'sha256', digest));
    RETURN QUERY SELECT next_version, digest, true;
END
$$;


--
-- Name: catalogue; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.catalogue (
    system text NOT NULL,
    version integer NOT NULL,
    sha256 text NOT NULL,
    source text NOT NULL,
    catalogue jsonb NOT NULL,
    published_at timestamp with time zone DEFAULT now() NOT NULL,
    published_by text DEFAULT SESSION_USER NOT NULL,
    actor text,
    reason text,
    CONSTRAINT catalogue_sha256_check CHECK ((sha256 ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT catalogue_version_check CHECK ((version > 0))
);


--
-- Name: published(text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.published(p_system text) RETURNS flagctl.catalogue
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    SELECT * FROM flagctl.catalogue c WHERE c.system = p_system ORDER BY c.version DESC LIMIT 1
$$;


--
-- Name: record_baseline(text, numeric, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.record_baseline(p_system text, p_window_seconds numeric, p_rates jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    IF NOT flagctl.may('verify.baseline') THEN
        RAISE EXCEPTION 'flagctl: % may not record a proof baseline: it needs the role flagctl_release', session_user
            USING ERRCODE = 'insufficient_privilege', HINT = 'flagctl db grant release ' || session_user;
    END IF;
    INSERT INTO flagctl.proof_baseline (system, window_seconds, rates) VALUES (p_system, p_window_seconds, p_rates);
END
$$;


--
-- Name: record_declared(text, text[]); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.record_declared(p_what text, p_actions text[]) RETURNS flagctl.change_context
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.write_declared(p_what);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM unnest(p_actions) AS a
                    WHERE ctx.action = a OR (right(a, 1) IN ('.', '*') AND starts_with(ctx.action, rtrim(a, '*')))) THEN
        RAISE EXCEPTION 'flagctl: % is not part of a % (this change is declared as %)', p_what,
            array_to_string(p_actions, ' or '), ctx.action
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN ctx;
END
$$;


--
-- Name: record_exemption(text, text, text, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.record_exemption(p_system text, p_flag text, p_scope text, p_effect text, p_note text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('an exemption', ARRAY['exempt']);
BEGIN
    IF p_effect IS NULL THEN
        DELETE FROM flagctl.exemption WHERE system = p_system AND flag = p_flag AND scope = p_scope;
        RETURN;
    END IF;
    INSERT INTO flagctl.exemption (system, flag, scope, effect, note, actor)
    VALUES (p_system, p_flag, p_scope, p_effect, p_note, ctx.actor)
        ON CONFLICT (system, flag, scope) DO UPDATE SET effect = excluded.effect, note = excluded.note,
           actor = excluded.actor, created_at = now();
END
$$;


--
-- Name: record_review(bigint, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.record_review(p_audit_seq bigint, p_system text, p_note text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('a review', ARRAY['review']);
BEGIN
    INSERT INTO flagctl.reviews (audit_seq, system, reviewed_by, actor, note)
    VALUES (p_audit_seq, p_system, session_user, ctx.actor, p_note);
END
$$;


--
-- Name: record_safe_point(text, text, text, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.record_safe_point(p_system text, p_name text, p_kind text, p_state jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('a safe point', ARRAY['profile.', 'snapshot:*', 'rollback.']);
BEGIN
    INSERT INTO flagctl.safe_point (system, name, kind, state, actor, reason)
    VALUES (p_system, p_name, p_kind, p_state, ctx.actor, ctx.reason);
END
$$;


--
-- Name: release(text, text, text, text, boolean, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.release(p_system text, p_switch text, p_reason text, p_scope text DEFAULT 'global'::text, p_force boolean DEFAULT false, p_actor text DEFAULT NULL::text) RETURNS TABLE(flag text, scope text, before jsonb, after jsonb)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    cat       jsonb := flagctl.kill_declare('release', p_system, p_switch, p_scope, p_reason, p_actor);
    fc        jsonb := cat->'flags';
    rec       flagctl.engaged_switch;
    mine      flagctl.engaged_switch;  -- the engagement, cut down to the flag
    me        flagctl.engaged_switch;  -- the same without its scopes beneath (below)
    over      jsonb;                   -- the flag's stored overrides
    fl_eng    flagctl.engaged_switch[];
    holders   flagctl.engaged_switch[];
    v_flags   text[];
    v_state   jsonb;
    f         text;
    at        text;
    kind      text;
    dflt      jsonb;
    gnow      jsonb;
    cur       jsonb;
    expected  jsonb;
    target    jsonb;
    changes   jsonb[] := '{}';
    conflicts jsonb[] := '{}';         -- {flag, scope, text}
    fast      text[];                  -- the scopes done in one query (no other engagement covers them)
    fast_conflicts jsonb[];
    fast_changes jsonb[];
BEGIN
    SELECT * INTO rec FROM flagctl.engaged_switch e WHERE e.system = p_system AND e.switch = p_switch AND e.scope = p_scope;
    IF NOT FOUND THEN
        RAISE NOTICE 'kill switch % is not engaged (scope %)', p_switch, p_scope;
        RETURN;
    END IF;
    v_flags := ARRAY(SELECT k FROM jsonb_object_keys(rec.settings) AS k ORDER BY k COLLATE "C");
    PERFORM flagctl.kill_lock(p_system, v_flags);
    SELECT * INTO rec FROM flagctl.engaged_switch e WHERE e.system = p_system AND e.switch = p_switch AND e.scope = p_scope;
    IF NOT FOUND THEN  -- released while this one waited for the locks
        RAISE NOTICE 'kill switch % is not engaged (scope %)', p_switch, p_scope;
        RETURN;
    END IF;
    v_state := flagctl.kill_state(p_system, cat, v_flags);
    FOR f, fl_eng IN SELECT k.flag, k.engaged FROM flagctl.kill_slim(p_system, v_flags) AS k LOOP
        kind := fc->f->>'type';
        dflt := flagctl.kill_norm(kind, fc->f->'default');
        gnow := v_state->f->'global';
        SELECT * INTO mine FROM unnest(fl_eng) AS e WHERE e.switch = p_switch AND e.scope = p_scope;
        over := v_state->f->'overrides';
        me := mine;
        me.below := '{}';  -- the helpers read its switch, scope and settings; never its every scope
        -- The scopes beneath a global kill that no other engagement covers, in one query:
        -- the kill left its overlay of the base it recorded there (kill_left_at), and the
        -- release restores that base (kill_without with no other holder; NULL: none).
        fast := '{}';
        IF p_scope = 'global' THEN
            WITH covered AS (SELECT e.scope AS s FROM unnest(fl_eng) AS e
                              WHERE e.scope <> 'global' AND (e.switch, e.scope) <> (rec.switch, rec.scope)
                             UNION SELECT k FROM unnest(fl_eng) AS e, jsonb_object_keys(coalesce(e.below->f, '{}')) AS k
                              WHERE e.scope = 'global' AND (e.switch, e.scope) <> (rec.switch, rec.scope)),
                 b AS (SELECT b.key AS s, over->b.key AS cur, nullif(b.value->'prior', 'null'::jsonb) AS base
                         FROM jsonb_each(coalesce(mine.below->f, '{}')) AS b
                        WHERE NOT EXISTS (SELECT 1 FROM covered c WHERE c.s = b.key)),
                 v AS MATERIALIZED (SELECT b.*, CASE WHEN b.base IS NOT NULL THEN flagctl.kill_overlay(kind, b.base, me.settings->f) END
                                   AS expected FROM b)
            SELECT coalesce(array_agg(v.s), '{}'),
                   coalesce(array_agg(jsonb_build_object('flag', f, 'scope', v.s, 'text',
                                format('%s: the kills set %s, it is now %s', f || ' at ' || v.s,
                                       coalesce(v.expected::text, '(unset)'), coalesce(v.cur::text, '(unset)'))))
                                FILTER (WHERE v.cur IS DISTINCT FROM v.expected), '{}'),
                   coalesce(array_agg(jsonb_build_object('flag', f, 'scope', v.s, 'kind', kind, 'before', v.cur, 'after', v.base))
                                FILTER (WHERE v.base IS DISTINCT FROM v.cur), '{}')
              INTO fast, fast_conflicts, fast_changes FROM v;
            conflicts := conflicts || fast_conflicts;
            changes := changes || fast_changes;
        END IF;
        FOR at, holders IN SELECT k.scope, k.holders FROM flagctl.kill_scopes(f, fl_eng,
                CASE WHEN p_scope <> 'global' THEN ARRAY[p_scope]
                     ELSE ARRAY['global'] || ARRAY(SELECT s FROM (
                              SELECT jsonb_object_keys(over)
                              UNION SELECT jsonb_object_keys(coalesce(mine.below->f, '{}'))
                              EXCEPT SELECT unnest(fast)) AS o(s)
                              ORDER BY s COLLATE "C") END) AS k LOOP
            CONTINUE WHEN NOT EXISTS (SELECT 1 FROM unnest(holders) AS h
                                       WHERE h.switch = rec.switch AND h.scope = rec.scope);  -- never covered
            cur := CASE WHEN at = 'global' THEN gnow ELSE over->at END;
            expected := flagctl.kill_left_at(kind, holders, f, at, gnow, dflt);
            IF cur IS DISTINCT FROM expected THEN
                conflicts := conflicts || jsonb_build_object('flag', f, 'scope', at, 'text', format(
                    '%s: the kills set %s, it is now %s', CASE WHEN at = p_scope THEN f ELSE f || ' at ' || at END,
                    coalesce(expected::text, '(unset)'), coalesce(cur::text, '(unset)')));
            END IF;
            target := flagctl.kill_without(kind, holders, me, f, at, gnow, dflt);
            IF target IS DISTINCT FROM cur THEN
                changes := array_append(changes, jsonb_build_object('flag', f, 'scope', at, 'kind', kind,
                                                                    'before', cur, 'after', target));
            END IF;
        END LOOP;
    END LOOP;
    changes := flagctl.kill_in_order(changes);
    IF cardinality(conflicts) > 0 AND NOT p_force THEN
        RAISE EXCEPTION 'flagctl: % changed since % was engaged: %; nothing was changed',
            CASE WHEN cardinality(conflicts) = 1 THEN 'a flag' ELSE cardinality(conflicts) || ' flags' END,
            p_switch, (SELECT string_agg(c->>'text', '; ') FROM unnest(flagctl.kill_in_order(conflicts)) AS c)
            USING ERRCODE = 'FL002',
                  HINT = 'someone changed it in between; check flagctl audit log, then release with p_force => true '
                         'to restore the values from before the kill anyway';
    END IF;
    IF cardinality(conflicts) > 0 THEN
        PERFORM flagctl.mark_forced();
    END IF;
    PERFORM flagctl.kill_write_all(p_system, changes);
    DELETE FROM flagctl.engaged_switch e WHERE e.system = p_system AND e.switch = p_switch AND e.scope = p_scope;
    IF cardinality(changes) > 0 THEN  -- the state it leaves keeps every published constraint
        PERFORM flagctl.kill_check_constraints(p_system, cat);
    END IF;
    RETURN QUERY SELECT c2->>'flag', c2->>'scope', nullif(c2->'before', 'null'::jsonb), nullif(c2->'after', 'null'::jsonb)
                   FROM unnest(changes) AS c2;
END
$$;


--
-- Name: role_for(text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.role_for(p_action text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog'
    AS $_$
    SELECT CASE
        WHEN base IN ('kill', 'release') THEN 'flagctl_security'
        WHEN base LIKE 'freeze%' THEN 'flagctl_ops'
        WHEN base LIKE 'tokens.%' THEN 'flagctl_admin'
        ELSE 'flagctl_release' END
      FROM (SELECT regexp_replace(regexp_replace(p_action, '\.refused$', ''), '^drill\.', '') AS base) AS a
$_$;


--
-- Name: rollout_analysed(bigint, text, text, jsonb, timestamp with time zone); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.rollout_analysed(p_id bigint, p_stage text, p_verdict text, p_results jsonb, p_at timestamp with time zone) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('a rollout''s analysis', ARRAY['rollout.']);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM flagctl.rollout WHERE id = p_id AND state IN ('running', 'paused')) THEN
        RAISE EXCEPTION 'flagctl: rollout % is not in flight', p_id USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO flagctl.rollout_analysis (rollout, stage, at, verdict, results)
    VALUES (p_id, p_stage, coalesce(p_at, now()), p_verdict, p_results);
END
$$;


--
-- Name: rollout_start(text, text, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.rollout_start(p_system text, p_ladder text, p_target text, p_origin text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('a rollout', ARRAY['rollout.start']);
    new_id bigint;
BEGIN
    INSERT INTO flagctl.rollout (system, ladder, target, origin, state, stage, stage_since, started_by, note)
    VALUES (p_system, p_ladder, p_target, p_origin, 'running', p_origin, NULL, coalesce(ctx.actor, session_user),
            'started: the runner analyses ' || coalesce(p_origin, 'the current stage') || ' next')
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;


--
-- Name: rollout_update(bigint, text, text, timestamp with time zone, integer, integer, timestamp with time zone, text, timestamp with time zone, text, bigint); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.rollout_update(p_id bigint, p_state text, p_stage text, p_stage_since timestamp with time zone, p_passes integer, p_failures integer, p_analysed_at timestamp with time zone, p_verdict text, p_next_at timestamp with time zone, p_note text, p_request bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('a rollout''s state', ARRAY['rollout.']);
BEGIN
    UPDATE flagctl.rollout
       SET state = p_state, stage = p_stage, stage_since = p_stage_since, passes = p_passes,
           failures = p_failures, analysed_at = p_analysed_at, verdict = p_verdict,
           next_at = p_next_at, note = p_note, request = p_request, updated_at = now()
     WHERE id = p_id AND state IN ('running', 'paused');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flagctl: rollout % is not in flight', p_id USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;


--
-- Name: runner_beat(text, text, integer, interval); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.runner_beat(p_system text, p_host text, p_pid integer, p_every interval) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    found_id bigint;
BEGIN
    IF NOT flagctl.may('rollout.run') THEN
        RAISE EXCEPTION 'flagctl: % may not run rollouts: it needs the role %', session_user,
            flagctl.role_for('rollout.run') USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE flagctl.runners SET seen_at = clock_timestamp(), every = p_every
     WHERE system = p_system AND backend = pg_backend_pid() AND db_user = session_user
    RETURNING id INTO found_id;
    IF found_id IS NULL THEN
        INSERT INTO flagctl.runners (system, host, pid, every) VALUES (p_system, p_host, p_pid, p_every)
        RETURNING id INTO found_id;
    END IF;
    RETURN found_id;
END
$$;


--
-- Name: runner_gone(bigint); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.runner_gone(p_id bigint) RETURNS void
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    DELETE FROM flagctl.runners WHERE id = p_id AND db_user = session_user;
$$;


--
-- Name: same_value(text, jsonb, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.same_value(p_type text, a jsonb, b jsonb) RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path TO 'pg_catalog'
    AS $$
    SELECT CASE
        WHEN nullif(a, 'null'::jsonb) IS NULL OR nullif(b, 'null'::jsonb) IS NULL
            THEN nullif(a, 'null'::jsonb) IS NULL AND nullif(b, 'null'::jsonb) IS NULL
        WHEN p_type = 'rollout' THEN
            (a->>'enabled')::boolean = (b->>'enabled')::boolean AND (a->>'percent')::int = (b->>'percent')::int
            AND coalesce((a->>'internal')::boolean, false) = coalesce((b->>'internal')::boolean, false)
        ELSE a = b
    END
$$;


--
-- Name: schedule_add(text, text, jsonb, text, jsonb, timestamp with time zone); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.schedule_add(p_system text, p_kind text, p_spec jsonb, p_summary text, p_planned_on jsonb, p_at timestamp with time zone) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('a scheduled change', ARRAY['schedule.add']);
    new_id bigint;
BEGIN
    IF p_spec->>'kind' IS DISTINCT FROM p_kind THEN  -- the role checked is the change's own
        RAISE EXCEPTION 'flagctl: a schedule of kind % must hold a change of that kind, not %', p_kind,
            coalesce(p_spec->>'kind', 'none') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT flagctl.may(p_kind) THEN
        RAISE EXCEPTION 'flagctl: % may not schedule a %: it needs the role %', session_user, p_kind,
            flagctl.role_for(p_kind) USING ERRCODE = 'insufficient_privilege',
            HINT = format('flagctl db grant %s %s', substr(flagctl.role_for(p_kind), 9), session_user);
    END IF;
    INSERT INTO flagctl.schedule (system, kind, spec, summary, planned_on, at, scheduled_by, reason)
    VALUES (p_system, p_kind, p_spec, p_summary, p_planned_on, p_at, coalesce(ctx.actor, session_user), ctx.reason)
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;


--
-- Name: schedule_settle(bigint, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.schedule_settle(p_id bigint, p_state text, p_outcome text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('settling a scheduled change', ARRAY['schedule.']);
BEGIN
    IF p_state NOT IN ('applied', 'refused', 'cancelled') THEN
        RAISE EXCEPTION 'flagctl: a schedule settles as applied, refused or cancelled, not %', p_state
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE flagctl.schedule
       SET state = p_state, outcome = p_outcome, settled_at = now(), settled_by = coalesce(ctx.actor, session_user)
     WHERE id = p_id AND state = 'pending';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flagctl: schedule % is not pending', p_id USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;


--
-- Name: store_rollback_state(text, text, timestamp with time zone, timestamp with time zone, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.store_rollback_state(p_system text, p_state text, p_since timestamp with time zone, p_green_since timestamp with time zone, p_detail jsonb) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
BEGIN
    PERFORM flagctl.record_declared('the rollback machine''s state', ARRAY['rollback.']);
    INSERT INTO flagctl.rollback_state (system, state, since, green_since, detail)
    VALUES (p_system, p_state, least(p_since, now()), least(p_green_since, now()), coalesce(p_detail, '{}'))
        ON CONFLICT (system) DO UPDATE SET state = excluded.state, since = excluded.since,
           green_since = excluded.green_since, detail = excluded.detail;
END
$$;


--
-- Name: token_create(text, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.token_create(p_system text, p_name text, p_hash text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
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


--
-- Name: token_revoke(text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.token_revoke(p_system text, p_name text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('revoking a token', ARRAY['tokens.revoke']);
BEGIN
    UPDATE flagctl.token SET revoked_at = now(), revoked_by = coalesce(ctx.actor, session_user)
     WHERE system = p_system AND name = p_name AND revoked_at IS NULL;
    RETURN FOUND;
END
$$;


--
-- Name: true_base(text, text, text, text, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.true_base(p_system text, p_switch text, p_flag text, p_scope text, p_base jsonb) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
    SELECT coalesce(flagctl.value_before(p_system, p_flag, p_scope), 'null'::jsonb)
               = coalesce(p_base, 'null'::jsonb)
        OR EXISTS (SELECT 1 FROM flagctl.engaged_switch e
                    WHERE e.system = p_system AND e.switch <> p_switch
                      AND ((e.scope = p_scope AND e.prior ? p_flag
                            AND coalesce(e.prior->p_flag, 'null'::jsonb) = coalesce(p_base, 'null'::jsonb))
                           OR (e.below->p_flag ? p_scope
                               AND coalesce(e.below->p_flag->p_scope->'prior', 'null'::jsonb)
                                   = coalesce(p_base, 'null'::jsonb))))
$$;


--
-- Name: trusted_session(); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.trusted_session() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO 'pg_catalog'
    AS $$
    SELECT pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER')
        OR EXISTS (SELECT 1 FROM unnest(ARRAY['flagctl_operator', 'flagctl_release', 'flagctl_security',
                                              'flagctl_ops', 'flagctl_admin']) AS r(name)
                    WHERE to_regrole(r.name) IS NOT NULL AND pg_has_role(session_user, to_regrole(r.name), 'MEMBER'))
$$;


--
-- Name: value_before(text, text, text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.value_before(p_system text, p_flag text, p_scope text) RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $_$
DECLARE
    a    record;
    b    flagctl.binding;
    now_ jsonb;
BEGIN
    SELECT * INTO b FROM flagctl.binding bd WHERE bd.system = p_system AND bd.flag = p_flag;
    SELECT au.before INTO a FROM flagctl.audit au
     WHERE au.system = p_system AND au.flag = p_flag AND au.scope = p_scope AND au.txid = txid_current()
       AND au.target = CASE WHEN b.system IS NULL THEN 'flagctl.flag_state'
                            ELSE format('%s.%s', b.table_schema, b.table_name) END
     ORDER BY au.seq LIMIT 1;  -- the first write of it in this transaction: what it had before
    IF FOUND THEN
        RETURN CASE WHEN b.system IS NULL THEN a.before ELSE flagctl.bound_value(b.columns, a.before) END;
    END IF;
    IF b.system IS NULL THEN
        SELECT s.value INTO now_ FROM flagctl.flag_state s
         WHERE s.system = p_system AND s.flag = p_flag AND s.scope = p_scope;
        RETURN now_;
    END IF;
    EXECUTE format('SELECT to_jsonb(t) FROM %I.%I AS t WHERE to_jsonb(t) @> $1 LIMIT 1', b.table_schema, b.table_name)
       INTO now_ USING b.key;
    RETURN flagctl.bound_value(b.columns, now_);
END
$_$;


--
-- Name: wait_acks(text, bigint, interval, interval); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.wait_acks(p_system text, p_seq bigint, p_timeout interval, p_live interval) RETURNS TABLE(id bigint, host text, pid integer, application text, applied_seq bigint, acked boolean, after_seconds double precision, relay bigint)
    LANGUAGE plpgsql
    SET search_path TO 'pg_catalog', 'flagctl'
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


--
-- Name: write_bound(text, jsonb); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.write_bound(p_system text, p_rows jsonb) RETURNS TABLE(flag text, held jsonb)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $_$
#variable_conflict use_column
DECLARE
    g       record;
    bad     text;
    t_name  regclass;
BEGIN
    PERFORM flagctl.flag_change_declared('flagctl.write_bound writes');
    SELECT coalesce(r->>'flag', 'NULL') INTO bad FROM jsonb_array_elements(p_rows) AS r
     WHERE jsonb_typeof(r->'set') IS DISTINCT FROM 'object' OR r->'set' = '{}'::jsonb LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'flagctl: flag %: nothing to write (give "set": {column: value, …})', bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT r->>'flag' INTO bad FROM jsonb_array_elements(p_rows) AS r GROUP BY r->>'flag' HAVING count(*) > 1 LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'flagctl: flag % is written twice in one call', bad
            USING ERRCODE = 'invalid_parameter_value', HINT = 'one entry per flag';
    END IF;
    SELECT coalesce(r->>'flag', 'NULL') INTO bad FROM jsonb_array_elements(p_rows) AS r
     WHERE NOT EXISTS (SELECT 1 FROM flagctl.binding b WHERE b.system = p_system AND b.flag = r->>'flag')
     LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'flagctl: system % has no flag % bound to an application table', p_system, bad
            USING ERRCODE = 'invalid_parameter_value', HINT = 'flagctl db status lists the bound flags';
    END IF;
    SELECT r->>'flag' || ': ' || c INTO bad
      FROM jsonb_array_elements(p_rows) AS r, jsonb_object_keys(r->'set') AS c, flagctl.binding b
     WHERE b.system = p_system AND b.flag = r->>'flag'
       AND NOT EXISTS (SELECT 1 FROM jsonb_each_text(b.columns) AS m WHERE m.value = c)
     LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'flagctl: column % is not a value column of the flag', bad
            USING ERRCODE = 'invalid_parameter_value', HINT = 'only a bound flag''s registered value columns are written';
    END IF;
    FOR g IN WITH w AS (
                 SELECT b.table_schema, b.table_name, r->>'flag' AS flag, b.key, r->'set' AS vals,
                        ARRAY(SELECT k FROM jsonb_object_keys(b.key) AS k ORDER BY k) AS keys,
                        ARRAY(SELECT c FROM jsonb_object_keys(r->'set') AS c ORDER BY c) AS assigned
                   FROM jsonb_array_elements(p_rows) AS r
                   JOIN flagctl.binding b ON b.system = p_system AND b.flag = r->>'flag')
             SELECT w.table_schema, w.table_name, w.keys, w.assigned,
                    jsonb_agg(w.key || w.vals || jsonb_build_object('__flag', w.flag)) AS rows
               FROM w GROUP BY w.table_schema, w.table_name, w.keys, w.assigned
              ORDER BY w.table_schema, w.table_name LOOP
        t_name := format('%I.%I', g.table_schema, g.table_name)::regclass;
        BEGIN
            RETURN QUERY EXECUTE format(
                'UPDATE %1$s AS t SET %2$s FROM (SELECT (jsonb_populate_record(NULL::%1$s, x)).*, x->>''__flag'' AS __flag'
                ' FROM jsonb_array_elements($1) AS x) AS v WHERE %3$s'
                ' RETURNING v.__flag, jsonb_build_object(%4$s)',
                t_name,
                (SELECT string_agg(format('%1$I = v.%1$I', c), ', ') FROM unnest(g.assigned) AS c),
                (SELECT string_agg(format('t.%1$I = v.%1$I', c), ' AND ') FROM unnest(g.keys) AS c),
                (SELECT string_agg(format('%1$L, t.%1$I', c), ', ') FROM unnest(g.keys || g.assigned) AS c))
                USING g.rows;
        EXCEPTION WHEN feature_not_supported THEN  -- a rule rewrites the UPDATE: it cannot return rows
            PERFORM flagctl.kill_not_taken(t_name, 'a rule rewrites every UPDATE of the table');
        END;
    END LOOP;
END
$_$;


--
-- Name: write_declared(text); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.write_declared(p_what text) RETURNS flagctl.change_context
    LANGUAGE plpgsql STABLE
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
DECLARE
    ctx flagctl.change_context := flagctl.current_change();
BEGIN
    IF ctx.action IS NULL THEN
        RAISE EXCEPTION 'flagctl: % flags only inside a declared change', p_what
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'declare it first: SELECT flagctl.begin_change(ACTION, ACTOR, REASON, NULL, NULL); '
                         'to kill, SELECT * FROM flagctl.kill(SYSTEM, SWITCH, REASON)';
    END IF;
    RETURN ctx;
END
$$;


--
-- Name: write_own(text, text[], text[], text[], text[], jsonb[]); Type: FUNCTION; Schema: flagctl; Owner: -
--

CREATE FUNCTION flagctl.write_own(p_system text, p_del_flags text[], p_del_scopes text[], p_flags text[], p_scopes text[], p_values jsonb[]) RETURNS TABLE(flag text, scope text, what text, value jsonb)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'flagctl'
    AS $$
#variable_conflict use_column
DECLARE
    bound text := (SELECT min(b.flag) FROM flagctl.binding b
                    WHERE b.system = p_system AND b.flag = ANY(p_del_flags || p_flags));
BEGIN
    PERFORM flagctl.flag_change_declared('flagctl.write_own writes');
    IF bound IS NOT NULL THEN
        RAISE EXCEPTION 'flagctl: flag % of system % lives in an application table, not in flagctl.flag_state', bound, p_system
            USING ERRCODE = 'invalid_parameter_value', HINT = 'write it with flagctl.write_bound';
    END IF;
    RETURN QUERY
    WITH doomed AS (
        SELECT d.flag, d.scope FROM unnest(p_del_flags, p_del_scopes) AS d(flag, scope)
    ), existed AS (
        SELECT f.flag, f.scope FROM flagctl.flag_state f JOIN doomed d USING (flag, scope)
         WHERE f.system = p_system
    ), removed AS (
        DELETE FROM flagctl.flag_state f USING doomed d
         WHERE f.system = p_system AND f.flag = d.flag AND f.scope = d.scope
        RETURNING f.flag, f.scope
    ), written AS (
        INSERT INTO flagctl.flag_state AS f (system, flag, scope, value)
        SELECT p_system, u.flag, u.scope, u.value FROM unnest(p_flags, p_scopes, p_values) AS u(flag, scope, value)
            ON CONFLICT (system, flag, scope) DO UPDATE SET value = excluded.value, updated_at = now()
        RETURNING f.flag, f.scope, f.value
    )
    SELECT e.flag, e.scope, 'existed', NULL::jsonb FROM existed e
     UNION ALL SELECT r.flag, r.scope, 'removed', NULL FROM removed r
     UNION ALL SELECT w.flag, w.scope, 'written', w.value FROM written w;
END
$$;


--
-- Name: audit_seal; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.audit_seal (
    pos bigint NOT NULL,
    seq bigint NOT NULL,
    sealed_at timestamp with time zone DEFAULT now() NOT NULL,
    prev_hash text NOT NULL,
    hash text NOT NULL
);


--
-- Name: audit_seq_gen; Type: SEQUENCE; Schema: flagctl; Owner: -
--

CREATE SEQUENCE flagctl.audit_seq_gen
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: audit_signature; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.audit_signature (
    pos bigint NOT NULL,
    hash text NOT NULL,
    mac text NOT NULL,
    key_id text NOT NULL,
    signed_at timestamp with time zone DEFAULT now() NOT NULL,
    db_user text DEFAULT SESSION_USER NOT NULL
);


--
-- Name: audit_unsealed; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.audit_unsealed (
    seq bigint NOT NULL
);


--
-- Name: binding; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.binding (
    system text NOT NULL,
    flag text NOT NULL,
    table_schema text NOT NULL,
    table_name text NOT NULL,
    key jsonb NOT NULL,
    columns jsonb NOT NULL,
    registered_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: clients; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.clients (
    id bigint NOT NULL,
    system text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    application text NOT NULL,
    db_user text DEFAULT SESSION_USER NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    seen_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    applied_seq bigint DEFAULT 0 NOT NULL,
    applied_at timestamp with time zone,
    backend_pid integer,
    relay bigint
);


--
-- Name: clients_id_seq; Type: SEQUENCE; Schema: flagctl; Owner: -
--

ALTER TABLE flagctl.clients ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME flagctl.clients_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: drills; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.drills (
    id bigint NOT NULL,
    system text NOT NULL,
    kind text NOT NULL,
    subject text NOT NULL,
    scope text DEFAULT 'global'::text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    db_user text DEFAULT SESSION_USER NOT NULL,
    actor text,
    reason text NOT NULL,
    verdict text DEFAULT 'running'::text NOT NULL,
    steps jsonb DEFAULT '[]'::jsonb NOT NULL,
    restored boolean,
    report text,
    CONSTRAINT drills_kind_check CHECK ((kind = ANY (ARRAY['kill'::text, 'rollback'::text]))),
    CONSTRAINT drills_verdict_check CHECK ((verdict = ANY (ARRAY['running'::text, 'passed'::text, 'failed'::text, 'interrupted'::text])))
);


--
-- Name: drills_id_seq; Type: SEQUENCE; Schema: flagctl; Owner: -
--

ALTER TABLE flagctl.drills ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME flagctl.drills_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: engaged_switch_seq_seq; Type: SEQUENCE; Schema: flagctl; Owner: -
--

ALTER TABLE flagctl.engaged_switch ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME flagctl.engaged_switch_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: exemption; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.exemption (
    system text NOT NULL,
    flag text NOT NULL,
    scope text NOT NULL,
    effect text NOT NULL,
    note text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    actor text,
    CONSTRAINT exemption_effect_check CHECK ((effect = ANY (ARRAY['allow'::text, 'deny'::text]))),
    CONSTRAINT exemption_scope_check CHECK ((scope ~ '^[a-z][a-z0-9_-]*:.+$'::text))
);


--
-- Name: flag_state; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.flag_state (
    system text NOT NULL,
    flag text NOT NULL,
    scope text DEFAULT 'global'::text NOT NULL,
    value jsonb NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT flag_state_scope_form CHECK (((scope = 'global'::text) OR (scope ~ '^[a-z][a-z0-9_-]*:.+$'::text)))
);


--
-- Name: freeze_id_seq; Type: SEQUENCE; Schema: flagctl; Owner: -
--

ALTER TABLE flagctl."freeze" ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME flagctl.freeze_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: notify_cursor; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.notify_cursor (
    system text NOT NULL,
    sink text NOT NULL,
    pos bigint NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT notify_cursor_pos_check CHECK ((pos >= 0))
);


--
-- Name: notify_delivery; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.notify_delivery (
    id bigint NOT NULL,
    system text NOT NULL,
    sink text NOT NULL,
    audit_seq bigint NOT NULL,
    pos bigint NOT NULL,
    event_id text NOT NULL,
    attempt integer NOT NULL,
    outcome text NOT NULL,
    http_status integer,
    error text,
    at timestamp with time zone DEFAULT now() NOT NULL,
    next_attempt_at timestamp with time zone,
    db_user text DEFAULT SESSION_USER NOT NULL,
    actor text,
    CONSTRAINT notify_delivery_attempt_check CHECK ((attempt >= 1)),
    CONSTRAINT notify_delivery_outcome_check CHECK ((outcome = ANY (ARRAY['delivered'::text, 'failed'::text])))
);


--
-- Name: notify_delivery_id_seq; Type: SEQUENCE; Schema: flagctl; Owner: -
--

ALTER TABLE flagctl.notify_delivery ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME flagctl.notify_delivery_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: proof_baseline; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.proof_baseline (
    id bigint NOT NULL,
    system text NOT NULL,
    measured_at timestamp with time zone DEFAULT now() NOT NULL,
    window_seconds numeric NOT NULL,
    rates jsonb NOT NULL
);


--
-- Name: proof_baseline_id_seq; Type: SEQUENCE; Schema: flagctl; Owner: -
--

ALTER TABLE flagctl.proof_baseline ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME flagctl.proof_baseline_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: requests; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.requests (
    id bigint NOT NULL,
    system text NOT NULL,
    action text NOT NULL,
    summary text NOT NULL,
    spec jsonb NOT NULL,
    why text NOT NULL,
    reason text NOT NULL,
    requested_by text DEFAULT SESSION_USER NOT NULL,
    requested_actor text,
    requested_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    approved_by text,
    approved_actor text,
    approved_at timestamp with time zone,
    txid bigint,
    changes jsonb,
    CONSTRAINT requests_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'approved'::text])))
);


--
-- Name: requests_id_seq; Type: SEQUENCE; Schema: flagctl; Owner: -
--

ALTER TABLE flagctl.requests ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME flagctl.requests_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: reviews; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.reviews (
    audit_seq bigint NOT NULL,
    system text,
    reviewed_by text DEFAULT SESSION_USER NOT NULL,
    actor text,
    note text NOT NULL,
    reviewed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT reviews_note_check CHECK (((length(note) >= 1) AND (length(note) <= 2000)))
);


--
-- Name: rollback_state; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.rollback_state (
    system text NOT NULL,
    state text NOT NULL,
    since timestamp with time zone NOT NULL,
    green_since timestamp with time zone,
    detail jsonb DEFAULT '{}'::jsonb NOT NULL,
    CONSTRAINT rollback_state_state_check CHECK ((state = ANY (ARRAY['NORMAL'::text, 'DEGRADED'::text, 'ROLLBACK_PENDING'::text, 'ROLLED_BACK'::text, 'RECOVERY_VERIFY'::text])))
);


--
-- Name: rollout; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.rollout (
    id bigint NOT NULL,
    system text NOT NULL,
    ladder text NOT NULL,
    target text NOT NULL,
    origin text,
    state text NOT NULL,
    stage text,
    stage_since timestamp with time zone,
    passes integer DEFAULT 0 NOT NULL,
    failures integer DEFAULT 0 NOT NULL,
    analysed_at timestamp with time zone,
    verdict text,
    next_at timestamp with time zone,
    note text,
    request bigint,
    started_by text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT rollout_failures_check CHECK ((failures >= 0)),
    CONSTRAINT rollout_passes_check CHECK ((passes >= 0)),
    CONSTRAINT rollout_state_check CHECK ((state = ANY (ARRAY['running'::text, 'paused'::text, 'done'::text, 'aborted'::text, 'rolled_back'::text]))),
    CONSTRAINT rollout_verdict_check CHECK ((verdict = ANY (ARRAY['pass'::text, 'fail'::text, 'inconclusive'::text])))
);


--
-- Name: rollout_analysis; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.rollout_analysis (
    id bigint NOT NULL,
    rollout bigint NOT NULL,
    stage text NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    verdict text NOT NULL,
    results jsonb NOT NULL,
    CONSTRAINT rollout_analysis_verdict_check CHECK ((verdict = ANY (ARRAY['pass'::text, 'fail'::text, 'inconclusive'::text])))
);


--
-- Name: rollout_analysis_id_seq; Type: SEQUENCE; Schema: flagctl; Owner: -
--

ALTER TABLE flagctl.rollout_analysis ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME flagctl.rollout_analysis_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: rollout_id_seq; Type: SEQUENCE; Schema: flagctl; Owner: -
--

ALTER TABLE flagctl.rollout ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME flagctl.rollout_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: runners; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.runners (
    id bigint NOT NULL,
    system text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    db_user text DEFAULT SESSION_USER NOT NULL,
    backend integer DEFAULT pg_backend_pid() NOT NULL,
    every interval NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    seen_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
);


--
-- Name: runners_id_seq; Type: SEQUENCE; Schema: flagctl; Owner: -
--

ALTER TABLE flagctl.runners ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME flagctl.runners_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: safe_point; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.safe_point (
    id bigint NOT NULL,
    system text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    state jsonb NOT NULL,
    at timestamp with time zone DEFAULT now() NOT NULL,
    actor text,
    db_user text DEFAULT SESSION_USER NOT NULL,
    reason text,
    CONSTRAINT safe_point_kind_check CHECK ((kind = ANY (ARRAY['profile'::text, 'snapshot'::text])))
);


--
-- Name: safe_point_id_seq; Type: SEQUENCE; Schema: flagctl; Owner: -
--

ALTER TABLE flagctl.safe_point ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME flagctl.safe_point_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: schedule; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.schedule (
    id bigint NOT NULL,
    system text NOT NULL,
    kind text NOT NULL,
    spec jsonb NOT NULL,
    summary text NOT NULL,
    planned_on jsonb NOT NULL,
    at timestamp with time zone NOT NULL,
    state text DEFAULT 'pending'::text NOT NULL,
    scheduled_by text NOT NULL,
    db_user text DEFAULT SESSION_USER NOT NULL,
    reason text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    settled_at timestamp with time zone,
    settled_by text,
    outcome text,
    CONSTRAINT schedule_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'applied'::text, 'refused'::text, 'cancelled'::text])))
);


--
-- Name: schedule_id_seq; Type: SEQUENCE; Schema: flagctl; Owner: -
--

ALTER TABLE flagctl.schedule ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME flagctl.schedule_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: schema_migrations; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: schema_routines; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.schema_routines (
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: token; Type: TABLE; Schema: flagctl; Owner: -
--

CREATE TABLE flagctl.token (
    id bigint NOT NULL,
    system text NOT NULL,
    name text NOT NULL,
    hash text NOT NULL,
    created_by text NOT NULL,
    db_user text DEFAULT SESSION_USER NOT NULL,
    reason text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    revoked_at timestamp with time zone,
    revoked_by text,
    CONSTRAINT token_hash_check CHECK ((hash ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT token_name_check CHECK ((name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'::text))
);


--
-- Name: token_id_seq; Type: SEQUENCE; Schema: flagctl; Owner: -
--

ALTER TABLE flagctl.token ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME flagctl.token_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: audit audit_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.audit
    ADD CONSTRAINT audit_pkey PRIMARY KEY (seq);


--
-- Name: audit_seal audit_seal_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.audit_seal
    ADD CONSTRAINT audit_seal_pkey PRIMARY KEY (pos);


--
-- Name: audit_seal audit_seal_seq_key; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.audit_seal
    ADD CONSTRAINT audit_seal_seq_key UNIQUE (seq);


--
-- Name: audit_signature audit_signature_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.audit_signature
    ADD CONSTRAINT audit_signature_pkey PRIMARY KEY (pos);


--
-- Name: audit_unsealed audit_unsealed_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.audit_unsealed
    ADD CONSTRAINT audit_unsealed_pkey PRIMARY KEY (seq);


--
-- Name: binding binding_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.binding
    ADD CONSTRAINT binding_pkey PRIMARY KEY (system, flag);


--
-- Name: catalogue catalogue_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.catalogue
    ADD CONSTRAINT catalogue_pkey PRIMARY KEY (system, version);


--
-- Name: change_context change_context_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.change_context
    ADD CONSTRAINT change_context_pkey PRIMARY KEY (txid);


--
-- Name: clients clients_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.clients
    ADD CONSTRAINT clients_pkey PRIMARY KEY (id);


--
-- Name: drills drills_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.drills
    ADD CONSTRAINT drills_pkey PRIMARY KEY (id);


--
-- Name: engaged_switch engaged_switch_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.engaged_switch
    ADD CONSTRAINT engaged_switch_pkey PRIMARY KEY (system, switch, scope);


--
-- Name: exemption exemption_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.exemption
    ADD CONSTRAINT exemption_pkey PRIMARY KEY (system, flag, scope);


--
-- Name: flag_state flag_state_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.flag_state
    ADD CONSTRAINT flag_state_pkey PRIMARY KEY (system, flag, scope);


--
-- Name: freeze freeze_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl."freeze"
    ADD CONSTRAINT freeze_pkey PRIMARY KEY (id);


--
-- Name: notify_cursor notify_cursor_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.notify_cursor
    ADD CONSTRAINT notify_cursor_pkey PRIMARY KEY (system, sink);


--
-- Name: notify_delivery notify_delivery_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.notify_delivery
    ADD CONSTRAINT notify_delivery_pkey PRIMARY KEY (id);


--
-- Name: proof_baseline proof_baseline_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.proof_baseline
    ADD CONSTRAINT proof_baseline_pkey PRIMARY KEY (id);


--
-- Name: requests requests_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.requests
    ADD CONSTRAINT requests_pkey PRIMARY KEY (id);


--
-- Name: reviews reviews_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.reviews
    ADD CONSTRAINT reviews_pkey PRIMARY KEY (audit_seq);


--
-- Name: rollback_state rollback_state_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.rollback_state
    ADD CONSTRAINT rollback_state_pkey PRIMARY KEY (system);


--
-- Name: rollout_analysis rollout_analysis_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.rollout_analysis
    ADD CONSTRAINT rollout_analysis_pkey PRIMARY KEY (id);


--
-- Name: rollout rollout_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.rollout
    ADD CONSTRAINT rollout_pkey PRIMARY KEY (id);


--
-- Name: runners runners_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.runners
    ADD CONSTRAINT runners_pkey PRIMARY KEY (id);


--
-- Name: safe_point safe_point_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.safe_point
    ADD CONSTRAINT safe_point_pkey PRIMARY KEY (id);


--
-- Name: schedule schedule_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.schedule
    ADD CONSTRAINT schedule_pkey PRIMARY KEY (id);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: schema_routines schema_routines_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.schema_routines
    ADD CONSTRAINT schema_routines_pkey PRIMARY KEY (name);


--
-- Name: token token_hash_key; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.token
    ADD CONSTRAINT token_hash_key UNIQUE (hash);


--
-- Name: token token_pkey; Type: CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.token
    ADD CONSTRAINT token_pkey PRIMARY KEY (id);


--
-- Name: audit_at_idx; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX audit_at_idx ON flagctl.audit USING btree (at);


--
-- Name: audit_flag_idx; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX audit_flag_idx ON flagctl.audit USING btree (system, flag, seq);


--
-- Name: audit_last_value; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX audit_last_value ON flagctl.audit USING btree (system, flag, COALESCE(scope, 'global'::text), seq DESC) WHERE ((flag IS NOT NULL) AND (action !~~ '%.refused'::text) AND (target <> ALL (ARRAY['flagctl.exemption'::text, 'flagctl.engaged_switch'::text])) AND (target !~~ '%:%'::text));


--
-- Name: audit_request_id; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX audit_request_id ON flagctl.audit USING btree (request_id) WHERE (request_id IS NOT NULL);


--
-- Name: audit_system_seq_idx; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX audit_system_seq_idx ON flagctl.audit USING btree (system, seq);


--
-- Name: audit_txid; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX audit_txid ON flagctl.audit USING btree (txid, system, flag, seq);


--
-- Name: clients_by_relay; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX clients_by_relay ON flagctl.clients USING btree (relay) WHERE (relay IS NOT NULL);


--
-- Name: clients_by_system; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX clients_by_system ON flagctl.clients USING btree (system, seen_at);


--
-- Name: drills_by_system; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX drills_by_system ON flagctl.drills USING btree (system, id DESC);


--
-- Name: freeze_active; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX freeze_active ON flagctl."freeze" USING btree (system) WHERE (cleared_at IS NULL);


--
-- Name: notify_delivery_by_row; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX notify_delivery_by_row ON flagctl.notify_delivery USING btree (system, sink, audit_seq, id DESC);


--
-- Name: notify_delivery_by_sink; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX notify_delivery_by_sink ON flagctl.notify_delivery USING btree (system, sink, id DESC);


--
-- Name: requests_pending; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX requests_pending ON flagctl.requests USING btree (system) WHERE (status = 'pending'::text);


--
-- Name: rollout_analysis_by_rollout; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX rollout_analysis_by_rollout ON flagctl.rollout_analysis USING btree (rollout, id);


--
-- Name: rollout_in_flight; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE UNIQUE INDEX rollout_in_flight ON flagctl.rollout USING btree (system, ladder) WHERE (state = ANY (ARRAY['running'::text, 'paused'::text]));


--
-- Name: runners_by_system; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX runners_by_system ON flagctl.runners USING btree (system, seen_at);


--
-- Name: safe_point_system_idx; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX safe_point_system_idx ON flagctl.safe_point USING btree (system, id DESC);


--
-- Name: schedule_due; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE INDEX schedule_due ON flagctl.schedule USING btree (system, at) WHERE (state = 'pending'::text);


--
-- Name: token_live; Type: INDEX; Schema: flagctl; Owner: -
--

CREATE UNIQUE INDEX token_live ON flagctl.token USING btree (system, name) WHERE (revoked_at IS NULL);


--
-- Name: audit audit_append_only; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER audit_append_only BEFORE DELETE OR UPDATE ON flagctl.audit FOR EACH ROW EXECUTE FUNCTION flagctl.audit_append_only();


--
-- Name: audit audit_appended; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER audit_appended AFTER INSERT ON flagctl.audit REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_appended();


--
-- Name: audit audit_chain; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER audit_chain BEFORE INSERT ON flagctl.audit FOR EACH ROW EXECUTE FUNCTION flagctl.audit_chain();


--
-- Name: audit audit_no_truncate; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON flagctl.audit FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_append_only();


--
-- Name: audit audit_notify; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER audit_notify AFTER INSERT ON flagctl.audit REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_notify();


--
-- Name: audit_seal audit_seal_append_only; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER audit_seal_append_only BEFORE DELETE OR UPDATE ON flagctl.audit_seal FOR EACH ROW EXECUTE FUNCTION flagctl.audit_append_only();


--
-- Name: audit audit_seal_at_commit; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE CONSTRAINT TRIGGER audit_seal_at_commit AFTER INSERT ON flagctl.audit DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION flagctl.audit_seal_at_commit();


--
-- Name: audit_seal audit_seal_no_truncate; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER audit_seal_no_truncate BEFORE TRUNCATE ON flagctl.audit_seal FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_append_only();


--
-- Name: audit_signature audit_signature_append_only; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER audit_signature_append_only BEFORE DELETE OR UPDATE ON flagctl.audit_signature FOR EACH ROW EXECUTE FUNCTION flagctl.audit_append_only();


--
-- Name: audit_signature audit_signature_no_truncate; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER audit_signature_no_truncate BEFORE TRUNCATE ON flagctl.audit_signature FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_append_only();


--
-- Name: catalogue flagctl_append_only; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_append_only BEFORE DELETE OR UPDATE ON flagctl.catalogue FOR EACH ROW EXECUTE FUNCTION flagctl.audit_append_only();


--
-- Name: reviews flagctl_append_only; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_append_only BEFORE DELETE OR UPDATE ON flagctl.reviews FOR EACH ROW EXECUTE FUNCTION flagctl.audit_append_only();


--
-- Name: engaged_switch flagctl_audit; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_audit AFTER INSERT OR DELETE OR UPDATE ON flagctl.engaged_switch FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();


--
-- Name: exemption flagctl_audit; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_audit AFTER INSERT OR DELETE OR UPDATE ON flagctl.exemption FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();


--
-- Name: freeze flagctl_audit; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_audit AFTER INSERT OR DELETE OR UPDATE ON flagctl."freeze" FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();


--
-- Name: requests flagctl_audit; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_audit AFTER INSERT OR UPDATE ON flagctl.requests FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();


--
-- Name: reviews flagctl_audit; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_audit AFTER INSERT ON flagctl.reviews FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();


--
-- Name: rollback_state flagctl_audit; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_audit AFTER INSERT OR DELETE OR UPDATE ON flagctl.rollback_state FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();


--
-- Name: rollout flagctl_audit; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_audit AFTER INSERT OR DELETE OR UPDATE ON flagctl.rollout FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();


--
-- Name: safe_point flagctl_audit; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_audit AFTER INSERT OR DELETE OR UPDATE ON flagctl.safe_point FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();


--
-- Name: schedule flagctl_audit; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_audit AFTER INSERT OR DELETE OR UPDATE ON flagctl.schedule FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();


--
-- Name: token flagctl_audit; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_audit AFTER INSERT OR DELETE OR UPDATE ON flagctl.token FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();


--
-- Name: flag_state flagctl_audit_delete; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_audit_delete AFTER DELETE ON flagctl.flag_state REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_flag_rows();


--
-- Name: flag_state flagctl_audit_insert; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_audit_insert AFTER INSERT ON flagctl.flag_state REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_flag_rows();


--
-- Name: flag_state flagctl_audit_truncate; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_audit_truncate AFTER TRUNCATE ON flagctl.flag_state FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_truncate();


--
-- Name: flag_state flagctl_audit_update; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_audit_update AFTER UPDATE ON flagctl.flag_state REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_flag_rows();


--
-- Name: engaged_switch flagctl_guard; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_guard BEFORE INSERT OR DELETE OR UPDATE ON flagctl.engaged_switch FOR EACH ROW EXECUTE FUNCTION flagctl.guard_engaged_write();


--
-- Name: exemption flagctl_guard; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_guard BEFORE INSERT OR DELETE OR UPDATE ON flagctl.exemption FOR EACH ROW EXECUTE FUNCTION flagctl.guard_declared_write();


--
-- Name: flag_state flagctl_guard; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_guard BEFORE INSERT OR DELETE OR UPDATE ON flagctl.flag_state FOR EACH ROW EXECUTE FUNCTION flagctl.guard_flag_write();


--
-- Name: freeze flagctl_guard; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_guard BEFORE INSERT OR DELETE OR UPDATE ON flagctl."freeze" FOR EACH ROW EXECUTE FUNCTION flagctl.guard_declared_write();


--
-- Name: requests flagctl_guard; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_guard BEFORE INSERT OR UPDATE ON flagctl.requests FOR EACH ROW EXECUTE FUNCTION flagctl.guard_request();


--
-- Name: reviews flagctl_guard; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_guard BEFORE INSERT ON flagctl.reviews FOR EACH ROW EXECUTE FUNCTION flagctl.guard_review();


--
-- Name: requests flagctl_no_delete; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_no_delete BEFORE DELETE OR TRUNCATE ON flagctl.requests FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_append_only();


--
-- Name: catalogue flagctl_no_truncate; Type: TRIGGER; Schema: flagctl; Owner: -
--

CREATE TRIGGER flagctl_no_truncate BEFORE TRUNCATE ON flagctl.catalogue FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_append_only();


--
-- Name: clients clients_relay_fkey; Type: FK CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.clients
    ADD CONSTRAINT clients_relay_fkey FOREIGN KEY (relay) REFERENCES flagctl.clients(id) ON DELETE CASCADE;


--
-- Name: rollout_analysis rollout_analysis_rollout_fkey; Type: FK CONSTRAINT; Schema: flagctl; Owner: -
--

ALTER TABLE ONLY flagctl.rollout_analysis
    ADD CONSTRAINT rollout_analysis_rollout_fkey FOREIGN KEY (rollout) REFERENCES flagctl.rollout(id);


--
-- Name: SCHEMA flagctl; Type: ACL; Schema: -; Owner: -
--

GRANT USAGE ON SCHEMA flagctl TO flagctl_operator;
GRANT USAGE ON SCHEMA flagctl TO flagctl_viewer;


--
-- Name: FUNCTION approve_request(p_id bigint, p_system text, p_actor text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.approve_request(p_id bigint, p_system text, p_actor text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.approve_request(p_id bigint, p_system text, p_actor text) TO flagctl_release;
GRANT ALL ON FUNCTION flagctl.approve_request(p_id bigint, p_system text, p_actor text) TO flagctl_security;
GRANT ALL ON FUNCTION flagctl.approve_request(p_id bigint, p_system text, p_actor text) TO flagctl_ops;
GRANT ALL ON FUNCTION flagctl.approve_request(p_id bigint, p_system text, p_actor text) TO flagctl_admin;
GRANT ALL ON FUNCTION flagctl.approve_request(p_id bigint, p_system text, p_actor text) TO flagctl_operator;


--
-- Name: FUNCTION audit_appended(); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.audit_appended() FROM PUBLIC;


--
-- Name: FUNCTION audit_backlog(); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.audit_backlog() FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.audit_backlog() TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.audit_backlog() TO flagctl_release;
GRANT ALL ON FUNCTION flagctl.audit_backlog() TO flagctl_security;
GRANT ALL ON FUNCTION flagctl.audit_backlog() TO flagctl_ops;
GRANT ALL ON FUNCTION flagctl.audit_backlog() TO flagctl_admin;
GRANT ALL ON FUNCTION flagctl.audit_backlog() TO flagctl_operator;


--
-- Name: TABLE audit; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.audit TO flagctl_operator;
GRANT SELECT ON TABLE flagctl.audit TO flagctl_viewer;


--
-- Name: FUNCTION audit_event(p_action text, p_system text, p_flag text, p_target text, p_detail jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.audit_event(p_action text, p_system text, p_flag text, p_target text, p_detail jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.audit_event(p_action text, p_system text, p_flag text, p_target text, p_detail jsonb) TO flagctl_operator;
GRANT ALL ON FUNCTION flagctl.audit_event(p_action text, p_system text, p_flag text, p_target text, p_detail jsonb) TO flagctl_release;
GRANT ALL ON FUNCTION flagctl.audit_event(p_action text, p_system text, p_flag text, p_target text, p_detail jsonb) TO flagctl_security;
GRANT ALL ON FUNCTION flagctl.audit_event(p_action text, p_system text, p_flag text, p_target text, p_detail jsonb) TO flagctl_ops;


--
-- Name: FUNCTION audit_flag_rows(); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.audit_flag_rows() FROM PUBLIC;


--
-- Name: FUNCTION audit_seal(wait boolean, max_rows bigint); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.audit_seal(wait boolean, max_rows bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.audit_seal(wait boolean, max_rows bigint) TO flagctl_operator;
GRANT ALL ON FUNCTION flagctl.audit_seal(wait boolean, max_rows bigint) TO flagctl_viewer;


--
-- Name: FUNCTION audit_sign(p_pos bigint, p_hash text, p_mac text, p_key_id text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.audit_sign(p_pos bigint, p_hash text, p_mac text, p_key_id text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.audit_sign(p_pos bigint, p_hash text, p_mac text, p_key_id text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.audit_sign(p_pos bigint, p_hash text, p_mac text, p_key_id text) TO flagctl_operator;


--
-- Name: FUNCTION audit_truncate(); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.audit_truncate() FROM PUBLIC;


--
-- Name: FUNCTION begin_change(p_action text, p_actor text, p_reason text, p_command text, p_request_id text, p_system text, p_source text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.begin_change(p_action text, p_actor text, p_reason text, p_command text, p_request_id text, p_system text, p_source text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.begin_change(p_action text, p_actor text, p_reason text, p_command text, p_request_id text, p_system text, p_source text) TO flagctl_release;
GRANT ALL ON FUNCTION flagctl.begin_change(p_action text, p_actor text, p_reason text, p_command text, p_request_id text, p_system text, p_source text) TO flagctl_security;
GRANT ALL ON FUNCTION flagctl.begin_change(p_action text, p_actor text, p_reason text, p_command text, p_request_id text, p_system text, p_source text) TO flagctl_ops;
GRANT ALL ON FUNCTION flagctl.begin_change(p_action text, p_actor text, p_reason text, p_command text, p_request_id text, p_system text, p_source text) TO flagctl_admin;
GRANT ALL ON FUNCTION flagctl.begin_change(p_action text, p_actor text, p_reason text, p_command text, p_request_id text, p_system text, p_source text) TO flagctl_operator;


--
-- Name: FUNCTION blockers_of(p_waiter integer); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.blockers_of(p_waiter integer) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.blockers_of(p_waiter integer) TO flagctl_security;
GRANT ALL ON FUNCTION flagctl.blockers_of(p_waiter integer) TO flagctl_admin;
GRANT ALL ON FUNCTION flagctl.blockers_of(p_waiter integer) TO flagctl_operator;


--
-- Name: FUNCTION bounded_lock_wait(); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.bounded_lock_wait() FROM PUBLIC;


--
-- Name: FUNCTION bucket(salt text, id text); Type: ACL; Schema: flagctl; Owner: -
--

GRANT ALL ON FUNCTION flagctl.bucket(salt text, id text) TO flagctl_viewer;


--
-- Name: TABLE engaged_switch; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE flagctl.engaged_switch TO flagctl_operator;
GRANT SELECT ON TABLE flagctl.engaged_switch TO flagctl_viewer;


--
-- Name: FUNCTION check_bases(e flagctl.engaged_switch, p_old_below jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.check_bases(e flagctl.engaged_switch, p_old_below jsonb) FROM PUBLIC;


--
-- Name: FUNCTION client_ack(p_id bigint, p_seq bigint); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.client_ack(p_id bigint, p_seq bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.client_ack(p_id bigint, p_seq bigint) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.client_ack(p_id bigint, p_seq bigint) TO flagctl_operator;


--
-- Name: FUNCTION client_ack_many(p_ids bigint[], p_seqs bigint[]); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.client_ack_many(p_ids bigint[], p_seqs bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.client_ack_many(p_ids bigint[], p_seqs bigint[]) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.client_ack_many(p_ids bigint[], p_seqs bigint[]) TO flagctl_operator;


--
-- Name: FUNCTION client_register(p_system text, p_host text, p_pid integer, p_application text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.client_register(p_system text, p_host text, p_pid integer, p_application text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.client_register(p_system text, p_host text, p_pid integer, p_application text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.client_register(p_system text, p_host text, p_pid integer, p_application text) TO flagctl_operator;


--
-- Name: FUNCTION client_register_behind(p_relay bigint, p_host text, p_application text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.client_register_behind(p_relay bigint, p_host text, p_application text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.client_register_behind(p_relay bigint, p_host text, p_application text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.client_register_behind(p_relay bigint, p_host text, p_application text) TO flagctl_operator;


--
-- Name: FUNCTION client_unregister(p_id bigint); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.client_unregister(p_id bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.client_unregister(p_id bigint) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.client_unregister(p_id bigint) TO flagctl_operator;


--
-- Name: FUNCTION create_request(p_system text, p_action text, p_spec jsonb, p_why text, p_reason text, p_actor text, p_changes jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.create_request(p_system text, p_action text, p_spec jsonb, p_why text, p_reason text, p_actor text, p_changes jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.create_request(p_system text, p_action text, p_spec jsonb, p_why text, p_reason text, p_actor text, p_changes jsonb) TO flagctl_release;
GRANT ALL ON FUNCTION flagctl.create_request(p_system text, p_action text, p_spec jsonb, p_why text, p_reason text, p_actor text, p_changes jsonb) TO flagctl_security;
GRANT ALL ON FUNCTION flagctl.create_request(p_system text, p_action text, p_spec jsonb, p_why text, p_reason text, p_actor text, p_changes jsonb) TO flagctl_ops;
GRANT ALL ON FUNCTION flagctl.create_request(p_system text, p_action text, p_spec jsonb, p_why text, p_reason text, p_actor text, p_changes jsonb) TO flagctl_admin;
GRANT ALL ON FUNCTION flagctl.create_request(p_system text, p_action text, p_spec jsonb, p_why text, p_reason text, p_actor text, p_changes jsonb) TO flagctl_operator;


--
-- Name: FUNCTION current_change(); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.current_change() FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.current_change() TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.current_change() TO flagctl_operator;


--
-- Name: FUNCTION drill_finish(p_id bigint, p_verdict text, p_steps jsonb, p_restored boolean, p_report text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.drill_finish(p_id bigint, p_verdict text, p_steps jsonb, p_restored boolean, p_report text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.drill_finish(p_id bigint, p_verdict text, p_steps jsonb, p_restored boolean, p_report text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.drill_finish(p_id bigint, p_verdict text, p_steps jsonb, p_restored boolean, p_report text) TO flagctl_operator;


--
-- Name: FUNCTION drill_start(p_system text, p_kind text, p_subject text, p_scope text, p_actor text, p_reason text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.drill_start(p_system text, p_kind text, p_subject text, p_scope text, p_actor text, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.drill_start(p_system text, p_kind text, p_subject text, p_scope text, p_actor text, p_reason text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.drill_start(p_system text, p_kind text, p_subject text, p_scope text, p_actor text, p_reason text) TO flagctl_operator;


--
-- Name: FUNCTION end_blocker(p_waiter integer, p_pid integer, p_terminate boolean, p_system text, p_actor text, p_reason text, p_command text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.end_blocker(p_waiter integer, p_pid integer, p_terminate boolean, p_system text, p_actor text, p_reason text, p_command text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.end_blocker(p_waiter integer, p_pid integer, p_terminate boolean, p_system text, p_actor text, p_reason text, p_command text) TO flagctl_security;
GRANT ALL ON FUNCTION flagctl.end_blocker(p_waiter integer, p_pid integer, p_terminate boolean, p_system text, p_actor text, p_reason text, p_command text) TO flagctl_admin;
GRANT ALL ON FUNCTION flagctl.end_blocker(p_waiter integer, p_pid integer, p_terminate boolean, p_system text, p_actor text, p_reason text, p_command text) TO flagctl_operator;


--
-- Name: FUNCTION flag_change_declared(p_what text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.flag_change_declared(p_what text) FROM PUBLIC;


--
-- Name: FUNCTION freeze_add(p_system text, p_scope text, p_until timestamp with time zone); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.freeze_add(p_system text, p_scope text, p_until timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.freeze_add(p_system text, p_scope text, p_until timestamp with time zone) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.freeze_add(p_system text, p_scope text, p_until timestamp with time zone) TO flagctl_operator;


--
-- Name: FUNCTION freeze_clear(p_ids bigint[]); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.freeze_clear(p_ids bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.freeze_clear(p_ids bigint[]) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.freeze_clear(p_ids bigint[]) TO flagctl_operator;


--
-- Name: TABLE "freeze"; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl."freeze" TO flagctl_viewer;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE flagctl."freeze" TO flagctl_operator;


--
-- Name: FUNCTION hash_version(); Type: ACL; Schema: flagctl; Owner: -
--

GRANT ALL ON FUNCTION flagctl.hash_version() TO flagctl_viewer;


--
-- Name: FUNCTION hold_engaged(p_system text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.hold_engaged(p_system text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.hold_engaged(p_system text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.hold_engaged(p_system text) TO flagctl_operator;


--
-- Name: FUNCTION hold_flags(p_system text, p_flags text[]); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.hold_flags(p_system text, p_flags text[]) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.hold_flags(p_system text, p_flags text[]) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.hold_flags(p_system text, p_flags text[]) TO flagctl_operator;


--
-- Name: FUNCTION hold_rollback_state(p_system text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.hold_rollback_state(p_system text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.hold_rollback_state(p_system text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.hold_rollback_state(p_system text) TO flagctl_operator;


--
-- Name: FUNCTION judge_flag_write(v_system text, v_flag text, v_scope text, before jsonb, after jsonb, own boolean); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.judge_flag_write(v_system text, v_flag text, v_scope text, before jsonb, after jsonb, own boolean) FROM PUBLIC;


--
-- Name: FUNCTION kill(p_system text, p_switch text, p_reason text, p_scope text, p_actor text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill(p_system text, p_switch text, p_reason text, p_scope text, p_actor text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.kill(p_system text, p_switch text, p_reason text, p_scope text, p_actor text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.kill(p_system text, p_switch text, p_reason text, p_scope text, p_actor text) TO flagctl_operator;


--
-- Name: FUNCTION kill_base_at(p_holders flagctl.engaged_switch[], p_flag text, p_scope text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_base_at(p_holders flagctl.engaged_switch[], p_flag text, p_scope text) FROM PUBLIC;


--
-- Name: FUNCTION kill_check_constraints(p_system text, p_cat jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_check_constraints(p_system text, p_cat jsonb) FROM PUBLIC;


--
-- Name: FUNCTION kill_covers(e flagctl.engaged_switch, p_flag text, p_scope text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_covers(e flagctl.engaged_switch, p_flag text, p_scope text) FROM PUBLIC;


--
-- Name: FUNCTION kill_declare(p_action text, p_system text, p_switch text, p_scope text, p_reason text, p_actor text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_declare(p_action text, p_system text, p_switch text, p_scope text, p_reason text, p_actor text) FROM PUBLIC;


--
-- Name: FUNCTION kill_equal(p_value jsonb, p_expected jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_equal(p_value jsonb, p_expected jsonb) FROM PUBLIC;


--
-- Name: FUNCTION kill_hold(p_system text, p_switch text, p_scope text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_hold(p_system text, p_switch text, p_scope text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.kill_hold(p_system text, p_switch text, p_scope text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.kill_hold(p_system text, p_switch text, p_scope text) TO flagctl_operator;


--
-- Name: FUNCTION kill_in_order(p_items jsonb[]); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_in_order(p_items jsonb[]) FROM PUBLIC;


--
-- Name: FUNCTION kill_left_at(p_kind text, p_holders flagctl.engaged_switch[], p_flag text, p_scope text, p_global jsonb, p_default jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_left_at(p_kind text, p_holders flagctl.engaged_switch[], p_flag text, p_scope text, p_global jsonb, p_default jsonb) FROM PUBLIC;


--
-- Name: FUNCTION kill_lock(p_system text, p_flags text[]); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_lock(p_system text, p_flags text[]) FROM PUBLIC;


--
-- Name: FUNCTION kill_lock_flags(p_system text, p_flags text[]); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_lock_flags(p_system text, p_flags text[]) FROM PUBLIC;


--
-- Name: FUNCTION kill_norm(p_kind text, p_value jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_norm(p_kind text, p_value jsonb) FROM PUBLIC;


--
-- Name: FUNCTION kill_not_taken(p_table regclass, p_what text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_not_taken(p_table regclass, p_what text) FROM PUBLIC;


--
-- Name: FUNCTION kill_overlay(p_kind text, p_value jsonb, p_setting jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_overlay(p_kind text, p_value jsonb, p_setting jsonb) FROM PUBLIC;


--
-- Name: FUNCTION kill_overlay_all(p_kind text, p_start jsonb, p_flag text, p_holders flagctl.engaged_switch[]); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_overlay_all(p_kind text, p_start jsonb, p_flag text, p_holders flagctl.engaged_switch[]) FROM PUBLIC;


--
-- Name: FUNCTION kill_recorded(e flagctl.engaged_switch, p_what text, p_flag text, p_scope text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_recorded(e flagctl.engaged_switch, p_what text, p_flag text, p_scope text) FROM PUBLIC;


--
-- Name: FUNCTION kill_role(p_action text, p_declared text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_role(p_action text, p_declared text) FROM PUBLIC;


--
-- Name: FUNCTION kill_scopes(p_flag text, p_engaged flagctl.engaged_switch[], p_scopes text[]); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_scopes(p_flag text, p_engaged flagctl.engaged_switch[], p_scopes text[]) FROM PUBLIC;


--
-- Name: FUNCTION kill_slim(p_system text, p_flags text[]); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_slim(p_system text, p_flags text[]) FROM PUBLIC;


--
-- Name: FUNCTION kill_state(p_system text, p_cat jsonb, p_flags text[]); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_state(p_system text, p_cat jsonb, p_flags text[]) FROM PUBLIC;


--
-- Name: FUNCTION kill_truthy(p_value jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_truthy(p_value jsonb) FROM PUBLIC;


--
-- Name: FUNCTION kill_violations(p_cat jsonb, p_state jsonb, p_scope text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_violations(p_cat jsonb, p_state jsonb, p_scope text) FROM PUBLIC;


--
-- Name: FUNCTION kill_waiter(p_waiter integer); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_waiter(p_waiter integer) FROM PUBLIC;


--
-- Name: FUNCTION kill_with(p_kind text, p_holders flagctl.engaged_switch[], me flagctl.engaged_switch, p_flag text, p_scope text, p_now jsonb, p_global jsonb, p_default jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_with(p_kind text, p_holders flagctl.engaged_switch[], me flagctl.engaged_switch, p_flag text, p_scope text, p_now jsonb, p_global jsonb, p_default jsonb) FROM PUBLIC;


--
-- Name: FUNCTION kill_without(p_kind text, p_holders flagctl.engaged_switch[], rec flagctl.engaged_switch, p_flag text, p_scope text, p_global jsonb, p_default jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_without(p_kind text, p_holders flagctl.engaged_switch[], rec flagctl.engaged_switch, p_flag text, p_scope text, p_global jsonb, p_default jsonb) FROM PUBLIC;


--
-- Name: FUNCTION kill_write(p_system text, p_kind text, p_flag text, p_scope text, p_after jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_write(p_system text, p_kind text, p_flag text, p_scope text, p_after jsonb) FROM PUBLIC;


--
-- Name: FUNCTION kill_write_all(p_system text, p_changes jsonb[]); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.kill_write_all(p_system text, p_changes jsonb[]) FROM PUBLIC;


--
-- Name: FUNCTION mark_forced(); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.mark_forced() FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.mark_forced() TO flagctl_release;
GRANT ALL ON FUNCTION flagctl.mark_forced() TO flagctl_security;
GRANT ALL ON FUNCTION flagctl.mark_forced() TO flagctl_ops;
GRANT ALL ON FUNCTION flagctl.mark_forced() TO flagctl_admin;
GRANT ALL ON FUNCTION flagctl.mark_forced() TO flagctl_operator;


--
-- Name: FUNCTION move_base(p_system text, p_switch text, p_prior jsonb, p_applied jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.move_base(p_system text, p_switch text, p_prior jsonb, p_applied jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.move_base(p_system text, p_switch text, p_prior jsonb, p_applied jsonb) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.move_base(p_system text, p_switch text, p_prior jsonb, p_applied jsonb) TO flagctl_operator;


--
-- Name: FUNCTION narrows_base(p_system text, before jsonb, after jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.narrows_base(p_system text, before jsonb, after jsonb) FROM PUBLIC;


--
-- Name: FUNCTION notify_record(p_system text, p_sink text, p_from bigint, p_to bigint, p_seq bigint, p_event_id text, p_attempt integer, p_outcome text, p_status integer, p_error text, p_next timestamp with time zone); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.notify_record(p_system text, p_sink text, p_from bigint, p_to bigint, p_seq bigint, p_event_id text, p_attempt integer, p_outcome text, p_status integer, p_error text, p_next timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.notify_record(p_system text, p_sink text, p_from bigint, p_to bigint, p_seq bigint, p_event_id text, p_attempt integer, p_outcome text, p_status integer, p_error text, p_next timestamp with time zone) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.notify_record(p_system text, p_sink text, p_from bigint, p_to bigint, p_seq bigint, p_event_id text, p_attempt integer, p_outcome text, p_status integer, p_error text, p_next timestamp with time zone) TO flagctl_operator;


--
-- Name: FUNCTION notify_start(p_system text, p_sink text, p_pos bigint); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.notify_start(p_system text, p_sink text, p_pos bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.notify_start(p_system text, p_sink text, p_pos bigint) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.notify_start(p_system text, p_sink text, p_pos bigint) TO flagctl_operator;


--
-- Name: FUNCTION publish_manifest(p_system text, p_source text, p_catalogue jsonb, p_actor text, p_reason text, p_command text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.publish_manifest(p_system text, p_source text, p_catalogue jsonb, p_actor text, p_reason text, p_command text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.publish_manifest(p_system text, p_source text, p_catalogue jsonb, p_actor text, p_reason text, p_command text) TO flagctl_release;
GRANT ALL ON FUNCTION flagctl.publish_manifest(p_system text, p_source text, p_catalogue jsonb, p_actor text, p_reason text, p_command text) TO flagctl_admin;
GRANT ALL ON FUNCTION flagctl.publish_manifest(p_system text, p_source text, p_catalogue jsonb, p_actor text, p_reason text, p_command text) TO flagctl_operator;


--
-- Name: TABLE catalogue; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.catalogue TO flagctl_viewer;
GRANT SELECT ON TABLE flagctl.catalogue TO flagctl_operator;


--
-- Name: FUNCTION published(p_system text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.published(p_system text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.published(p_system text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.published(p_system text) TO flagctl_operator;


--
-- Name: FUNCTION record_baseline(p_system text, p_window_seconds numeric, p_rates jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.record_baseline(p_system text, p_window_seconds numeric, p_rates jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.record_baseline(p_system text, p_window_seconds numeric, p_rates jsonb) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.record_baseline(p_system text, p_window_seconds numeric, p_rates jsonb) TO flagctl_operator;


--
-- Name: FUNCTION record_declared(p_what text, p_actions text[]); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.record_declared(p_what text, p_actions text[]) FROM PUBLIC;


--
-- Name: FUNCTION record_exemption(p_system text, p_flag text, p_scope text, p_effect text, p_note text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.record_exemption(p_system text, p_flag text, p_scope text, p_effect text, p_note text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.record_exemption(p_system text, p_flag text, p_scope text, p_effect text, p_note text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.record_exemption(p_system text, p_flag text, p_scope text, p_effect text, p_note text) TO flagctl_operator;


--
-- Name: FUNCTION record_review(p_audit_seq bigint, p_system text, p_note text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.record_review(p_audit_seq bigint, p_system text, p_note text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.record_review(p_audit_seq bigint, p_system text, p_note text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.record_review(p_audit_seq bigint, p_system text, p_note text) TO flagctl_operator;


--
-- Name: FUNCTION record_safe_point(p_system text, p_name text, p_kind text, p_state jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.record_safe_point(p_system text, p_name text, p_kind text, p_state jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.record_safe_point(p_system text, p_name text, p_kind text, p_state jsonb) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.record_safe_point(p_system text, p_name text, p_kind text, p_state jsonb) TO flagctl_operator;


--
-- Name: FUNCTION release(p_system text, p_switch text, p_reason text, p_scope text, p_force boolean, p_actor text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.release(p_system text, p_switch text, p_reason text, p_scope text, p_force boolean, p_actor text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.release(p_system text, p_switch text, p_reason text, p_scope text, p_force boolean, p_actor text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.release(p_system text, p_switch text, p_reason text, p_scope text, p_force boolean, p_actor text) TO flagctl_operator;


--
-- Name: FUNCTION rollout_analysed(p_id bigint, p_stage text, p_verdict text, p_results jsonb, p_at timestamp with time zone); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.rollout_analysed(p_id bigint, p_stage text, p_verdict text, p_results jsonb, p_at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.rollout_analysed(p_id bigint, p_stage text, p_verdict text, p_results jsonb, p_at timestamp with time zone) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.rollout_analysed(p_id bigint, p_stage text, p_verdict text, p_results jsonb, p_at timestamp with time zone) TO flagctl_operator;


--
-- Name: FUNCTION rollout_start(p_system text, p_ladder text, p_target text, p_origin text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.rollout_start(p_system text, p_ladder text, p_target text, p_origin text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.rollout_start(p_system text, p_ladder text, p_target text, p_origin text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.rollout_start(p_system text, p_ladder text, p_target text, p_origin text) TO flagctl_operator;


--
-- Name: FUNCTION rollout_update(p_id bigint, p_state text, p_stage text, p_stage_since timestamp with time zone, p_passes integer, p_failures integer, p_analysed_at timestamp with time zone, p_verdict text, p_next_at timestamp with time zone, p_note text, p_request bigint); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.rollout_update(p_id bigint, p_state text, p_stage text, p_stage_since timestamp with time zone, p_passes integer, p_failures integer, p_analysed_at timestamp with time zone, p_verdict text, p_next_at timestamp with time zone, p_note text, p_request bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.rollout_update(p_id bigint, p_state text, p_stage text, p_stage_since timestamp with time zone, p_passes integer, p_failures integer, p_analysed_at timestamp with time zone, p_verdict text, p_next_at timestamp with time zone, p_note text, p_request bigint) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.rollout_update(p_id bigint, p_state text, p_stage text, p_stage_since timestamp with time zone, p_passes integer, p_failures integer, p_analysed_at timestamp with time zone, p_verdict text, p_next_at timestamp with time zone, p_note text, p_request bigint) TO flagctl_operator;


--
-- Name: FUNCTION runner_beat(p_system text, p_host text, p_pid integer, p_every interval); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.runner_beat(p_system text, p_host text, p_pid integer, p_every interval) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.runner_beat(p_system text, p_host text, p_pid integer, p_every interval) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.runner_beat(p_system text, p_host text, p_pid integer, p_every interval) TO flagctl_operator;


--
-- Name: FUNCTION runner_gone(p_id bigint); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.runner_gone(p_id bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.runner_gone(p_id bigint) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.runner_gone(p_id bigint) TO flagctl_operator;


--
-- Name: FUNCTION schedule_add(p_system text, p_kind text, p_spec jsonb, p_summary text, p_planned_on jsonb, p_at timestamp with time zone); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.schedule_add(p_system text, p_kind text, p_spec jsonb, p_summary text, p_planned_on jsonb, p_at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.schedule_add(p_system text, p_kind text, p_spec jsonb, p_summary text, p_planned_on jsonb, p_at timestamp with time zone) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.schedule_add(p_system text, p_kind text, p_spec jsonb, p_summary text, p_planned_on jsonb, p_at timestamp with time zone) TO flagctl_operator;


--
-- Name: FUNCTION schedule_settle(p_id bigint, p_state text, p_outcome text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.schedule_settle(p_id bigint, p_state text, p_outcome text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.schedule_settle(p_id bigint, p_state text, p_outcome text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.schedule_settle(p_id bigint, p_state text, p_outcome text) TO flagctl_operator;


--
-- Name: FUNCTION store_rollback_state(p_system text, p_state text, p_since timestamp with time zone, p_green_since timestamp with time zone, p_detail jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.store_rollback_state(p_system text, p_state text, p_since timestamp with time zone, p_green_since timestamp with time zone, p_detail jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.store_rollback_state(p_system text, p_state text, p_since timestamp with time zone, p_green_since timestamp with time zone, p_detail jsonb) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.store_rollback_state(p_system text, p_state text, p_since timestamp with time zone, p_green_since timestamp with time zone, p_detail jsonb) TO flagctl_operator;


--
-- Name: FUNCTION token_create(p_system text, p_name text, p_hash text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.token_create(p_system text, p_name text, p_hash text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.token_create(p_system text, p_name text, p_hash text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.token_create(p_system text, p_name text, p_hash text) TO flagctl_operator;


--
-- Name: FUNCTION token_revoke(p_system text, p_name text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.token_revoke(p_system text, p_name text) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.token_revoke(p_system text, p_name text) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.token_revoke(p_system text, p_name text) TO flagctl_operator;


--
-- Name: FUNCTION true_base(p_system text, p_switch text, p_flag text, p_scope text, p_base jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.true_base(p_system text, p_switch text, p_flag text, p_scope text, p_base jsonb) FROM PUBLIC;


--
-- Name: FUNCTION value_before(p_system text, p_flag text, p_scope text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.value_before(p_system text, p_flag text, p_scope text) FROM PUBLIC;


--
-- Name: FUNCTION write_bound(p_system text, p_rows jsonb); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.write_bound(p_system text, p_rows jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.write_bound(p_system text, p_rows jsonb) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.write_bound(p_system text, p_rows jsonb) TO flagctl_operator;


--
-- Name: FUNCTION write_declared(p_what text); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.write_declared(p_what text) FROM PUBLIC;


--
-- Name: FUNCTION write_own(p_system text, p_del_flags text[], p_del_scopes text[], p_flags text[], p_scopes text[], p_values jsonb[]); Type: ACL; Schema: flagctl; Owner: -
--

REVOKE ALL ON FUNCTION flagctl.write_own(p_system text, p_del_flags text[], p_del_scopes text[], p_flags text[], p_scopes text[], p_values jsonb[]) FROM PUBLIC;
GRANT ALL ON FUNCTION flagctl.write_own(p_system text, p_del_flags text[], p_del_scopes text[], p_flags text[], p_scopes text[], p_values jsonb[]) TO flagctl_viewer;
GRANT ALL ON FUNCTION flagctl.write_own(p_system text, p_del_flags text[], p_del_scopes text[], p_flags text[], p_scopes text[], p_values jsonb[]) TO flagctl_operator;


--
-- Name: TABLE audit_seal; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.audit_seal TO flagctl_operator;
GRANT SELECT ON TABLE flagctl.audit_seal TO flagctl_viewer;


--
-- Name: TABLE audit_signature; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT,INSERT ON TABLE flagctl.audit_signature TO flagctl_operator;
GRANT SELECT ON TABLE flagctl.audit_signature TO flagctl_viewer;


--
-- Name: TABLE audit_unsealed; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.audit_unsealed TO flagctl_operator;


--
-- Name: TABLE binding; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.binding TO flagctl_operator;
GRANT SELECT ON TABLE flagctl.binding TO flagctl_viewer;


--
-- Name: TABLE clients; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.clients TO flagctl_viewer;
GRANT SELECT ON TABLE flagctl.clients TO flagctl_operator;


--
-- Name: TABLE drills; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT,INSERT,UPDATE ON TABLE flagctl.drills TO flagctl_operator;
GRANT SELECT ON TABLE flagctl.drills TO flagctl_viewer;


--
-- Name: TABLE exemption; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE flagctl.exemption TO flagctl_operator;
GRANT SELECT ON TABLE flagctl.exemption TO flagctl_viewer;


--
-- Name: TABLE flag_state; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE flagctl.flag_state TO flagctl_operator;
GRANT SELECT ON TABLE flagctl.flag_state TO flagctl_viewer;


--
-- Name: TABLE notify_cursor; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.notify_cursor TO flagctl_viewer;
GRANT SELECT ON TABLE flagctl.notify_cursor TO flagctl_operator;


--
-- Name: TABLE notify_delivery; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.notify_delivery TO flagctl_viewer;
GRANT SELECT ON TABLE flagctl.notify_delivery TO flagctl_operator;


--
-- Name: TABLE proof_baseline; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE flagctl.proof_baseline TO flagctl_operator;
GRANT SELECT ON TABLE flagctl.proof_baseline TO flagctl_viewer;


--
-- Name: TABLE requests; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.requests TO flagctl_viewer;
GRANT SELECT ON TABLE flagctl.requests TO flagctl_operator;


--
-- Name: TABLE reviews; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.reviews TO flagctl_viewer;
GRANT SELECT,INSERT,UPDATE ON TABLE flagctl.reviews TO flagctl_operator;


--
-- Name: TABLE rollback_state; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE flagctl.rollback_state TO flagctl_operator;
GRANT SELECT ON TABLE flagctl.rollback_state TO flagctl_viewer;


--
-- Name: TABLE rollout; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.rollout TO flagctl_viewer;
GRANT SELECT ON TABLE flagctl.rollout TO flagctl_operator;


--
-- Name: TABLE rollout_analysis; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.rollout_analysis TO flagctl_viewer;
GRANT SELECT ON TABLE flagctl.rollout_analysis TO flagctl_operator;


--
-- Name: TABLE runners; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.runners TO flagctl_viewer;
GRANT SELECT ON TABLE flagctl.runners TO flagctl_operator;


--
-- Name: TABLE safe_point; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE flagctl.safe_point TO flagctl_operator;
GRANT SELECT ON TABLE flagctl.safe_point TO flagctl_viewer;


--
-- Name: TABLE schedule; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.schedule TO flagctl_viewer;
GRANT SELECT ON TABLE flagctl.schedule TO flagctl_operator;


--
-- Name: TABLE schema_migrations; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.schema_migrations TO flagctl_operator;
GRANT SELECT ON TABLE flagctl.schema_migrations TO flagctl_viewer;


--
-- Name: TABLE schema_routines; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.schema_routines TO flagctl_viewer;
GRANT SELECT ON TABLE flagctl.schema_routines TO flagctl_operator;


--
-- Name: TABLE token; Type: ACL; Schema: flagctl; Owner: -
--

GRANT SELECT ON TABLE flagctl.token TO flagctl_viewer;
GRANT SELECT ON TABLE flagctl.token TO flagctl_operator;


--
-- PostgreSQL database dump complete
--
