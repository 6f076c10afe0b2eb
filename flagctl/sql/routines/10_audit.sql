-- The audit trail: the row triggers, the digest, the seal chain, NOTIFY.
--
-- The current definition of each function; `flagctl db init` re-applies this folder after
-- the migrations whenever it changed (flagctl/sql/README.md). Grants stay in the migrations.
--
-- Tables: flagctl.audit, audit_unsealed, audit_seal (schemas 1, 6). Triggers on flagctl.audit:
-- audit_chain (BEFORE INSERT, each row), audit_append_only (BEFORE UPDATE OR DELETE, TRUNCATE),
-- audit_seal_at_commit (deferred), audit_appended and audit_notify (AFTER INSERT, each statement:
-- schema 36).
-- docs/audit.md says what it proves.

-- The digest of one audit row: every column but `hash`, in a fixed order and format (epoch
-- seconds, not a TimeZone-dependent timestamp rendering). `claimed` (schema 10) and
-- `request_id` (schema 12) are appended only when set, so rows written before them keep
-- the digest they were sealed with.
CREATE OR REPLACE FUNCTION flagctl.audit_digest(a flagctl.audit) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT encode(sha256(convert_to((jsonb_build_array(
        a.seq, a.prev_hash, extract(epoch FROM a.at)::text, a.txid, a.db_user, a.actor,
        a.action, a.system, a.flag, a.scope, a.target, a.key, a.before, a.after,
        a.reason, a.command, a.forced)
        || CASE WHEN a.claimed IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(a.claimed) END
        || CASE WHEN a.request_id IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(a.request_id) END)::text,
        'UTF8')), 'hex')
$$;

-- BEFORE INSERT of each row on flagctl.audit: fills seq, time, transaction, database user and the row's
-- own digest; callers cannot forge them. No lock is taken: writers never wait for each other
-- (the chain is built afterwards by audit_seal). A declaration (actor, action, reason,
-- command, request id, forced) is believed only from flagctl.change_context, which only
-- begin_change writes; any other claim (session settings) is kept apart in `claimed`, and the
-- action becomes what the row images say happened (sql.insert / update / delete / truncate).
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
    RETURN NEW;  -- listed as unsealed by audit_appended, once for the statement's rows
END
$$;

-- UPDATE, DELETE and TRUNCATE of the append-only tables (audit, audit_seal, audit_signature,
-- catalogue, reviews; DELETE of requests) fail.
CREATE OR REPLACE FUNCTION flagctl.audit_append_only() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'flagctl.audit is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'audit rows are never changed or removed; record a new change instead';
END
$$;

-- AFTER each row of engaged_switch, exemption, safe_point, rollback_state,
-- freeze, requests, reviews and every bound table (flag_state's: audit_flag_rows, once a
-- statement): one audit row per change, in the same transaction. For bound tables TG_ARGV
-- holds the key columns and the flags come from flagctl.binding: several flags may be bound to one row (each to its own columns), so a
-- change writes one audit row per flag whose columns changed, and every flag's history is
-- complete; a change to none of them is still recorded, once. A plain SQL change declares
-- nothing and is recorded as sql.insert / sql.update / sql.delete with its session_user.
CREATE OR REPLACE FUNCTION flagctl.audit_row() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- AFTER each INSERT, UPDATE and DELETE statement on flagctl.flag_state (schema 36): the
-- audit rows audit_row writes, one per changed row, for the whole statement in one INSERT
-- from its transition tables (old_rows, new_rows), in the order the rows were changed. A
-- kill over 10,000 overrides paid a function call and an INSERT per row. An UPDATE's old
-- and new images are paired by key; rows whose key the UPDATE changed (plain SQL only) by
-- their position in the transition tables, which PostgreSQL fills pairwise. A row an UPDATE
-- left as it was is not recorded.
CREATE OR REPLACE FUNCTION flagctl.audit_flag_rows() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- AFTER TRUNCATE of a bound table or of flagctl.flag_state (row triggers do not fire on
-- TRUNCATE): one row per flag the table holds, with no after-image (action sql.truncate).
-- `db init` installs it on every bound table; the drift check then shows the values removed.
CREATE OR REPLACE FUNCTION flagctl.audit_truncate() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- Events that change no row but belong in the trail (e.g. a refused promotion). Only
-- flagctl's own roles may call it (schema 7): anyone else could append rows that look like
-- flagctl's, with a valid digest and seal.
CREATE OR REPLACE FUNCTION flagctl.audit_event(p_action text, p_system text, p_flag text, p_target text,
                                    p_detail jsonb)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    -- An event is about no scope (scope NULL): it can never pass for a flag row's image.
    INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, after, reason, command)
    VALUES (nullif(current_setting('flagctl.actor', true), ''), p_action, p_system, p_flag,
            NULL, p_target, p_detail,
            nullif(current_setting('flagctl.reason', true), ''),
            nullif(current_setting('flagctl.command', true), ''));
$$;

-- Seal the committed (and this transaction's own) unsealed rows, in seq order, after the
-- last seal — at most ``max_rows`` of them (NULL: all): one flagctl.audit_seal row each,
-- linking to the previous seal. Returns how many rows it sealed, or NULL when another
-- session is sealing (``wait``: wait for it instead, within lock_timeout). Only in READ
-- COMMITTED, where each statement sees the seals committed before it; a REPEATABLE READ
-- writer leaves its rows to the next sealer rather than risk a conflict.
--
-- In chunks of up to 10,000 rows, three statements a chunk: one reads the rows waiting with
-- the digests audit_chain stored in them (not computed again: `audit verify` checks each
-- row's against its contents, and each seal against it), the links are chained in memory (each hash needs the one before it), one
-- INSERT writes the chunk's seals and one DELETE takes it off the waiting list. A statement
-- per row for each made the sealer slower than its writers' commits; memory stays a chunk's.
CREATE OR REPLACE FUNCTION flagctl.audit_seal(wait boolean DEFAULT false, max_rows bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- At commit (a deferred constraint trigger), once per transaction that wrote audit rows:
-- seal as many rows as it wrote and at most 1,000 more, oldest first. A kill never pays for
-- a large backlog, yet every writer that seals takes away at least what it added, so a writer
-- of big transactions (more than 1,000 rows each) no longer leaves a backlog that only grows
-- until audit verify; its own rows it counts through the audit_txid index (schema 34). A
-- sealer never waits for another, and this never fails the writer.
CREATE OR REPLACE FUNCTION flagctl.audit_seal_at_commit() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- How many committed audit rows wait to be sealed (an at-commit seal skipped because the
-- seal was held), and since when. A viewer, who may not read audit_unsealed, may ask;
-- `db status` and `audit verify` show it.
CREATE OR REPLACE FUNCTION flagctl.audit_backlog() RETURNS TABLE (rows bigint, oldest timestamptz)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    SELECT count(*), min(a.at)
      FROM flagctl.audit_unsealed u JOIN flagctl.audit a ON a.seq = u.seq
$$;

-- AFTER each INSERT statement on flagctl.audit (its rows in the transition table
-- `appended`): the rows wait in audit_unsealed for the seal (audit_chain listed them one
-- INSERT per row until schema 36).
CREATE OR REPLACE FUNCTION flagctl.audit_appended() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    -- ON CONFLICT: a row audit_chain listed already (an upgrade's migrations run with the
    -- routines of the version before them) is listed once.
    INSERT INTO flagctl.audit_unsealed (seq) SELECT a.seq FROM appended a ORDER BY a.seq ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

-- AFTER each INSERT statement on flagctl.audit (schema 36; each row before): every system
-- its rows name gets NOTIFY flagctl '{"system": …, "txid": …}'. PostgreSQL delivers it only
-- when the transaction commits and folds identical payloads of one transaction into one: a
-- kill of many flags is one notification per system. The gate reloads on it; the audit's
-- seq is its change sequence.
CREATE OR REPLACE FUNCTION flagctl.audit_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    PERFORM pg_notify('flagctl', json_build_object('system', n.system, 'txid', n.txid)::text)
       FROM (SELECT a.system, a.txid, min(a.seq) AS first FROM appended a WHERE a.system IS NOT NULL
              GROUP BY a.system, a.txid) AS n
      ORDER BY n.first;
    RETURN NULL;
END
$$;
