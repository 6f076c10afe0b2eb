-- The emergency path in SQL: flagctl.kill and flagctl.release.
--
-- The current definition of each function; `flagctl db init` re-applies this folder after
-- the migrations whenever it changed (flagctl/sql/README.md).
--
-- `SELECT * FROM flagctl.kill('phase3', 'p3-off', 'INC-42')` as a member of flagctl_security
-- does what `flagctl kill p3-off -r INC-42` does, from psql, when the CLI is not at hand: it
-- acts on the published catalogue (the switch's own settings; no value comes from the
-- caller), combines with the switches already engaged exactly as flagctl.rules.kills does
-- (rollout settings strictest-wins: enabled and internal AND-ed, percent the minimum; any
-- other type the highest level's value), covers a global kill's scoped overrides, re-asserts
-- when engaged already, reads every row it wrote back and rolls the whole change back when
-- one did not take. It declares itself as the change `kill` (begin_change: the caller needs
-- the security role), so the audit, the guards and `flagctl review pending` see it as the
-- CLI's. tests/db/test_sql_kill.py runs the CLI and these functions through the same random
-- sequences of kills, releases and sets and asserts they leave the same rows.
--
-- What these functions do not do that the CLI does: cross-flag constraints (not in the
-- catalogue) are not checked, and there is no --break-locks (end blockers with
-- flagctl.end_blocker); a lock wait is bounded by the session's lock_timeout (5 s if unset).

-- A value as flagctl compares it (NULL: none): a rollout as {enabled, percent} with
-- internal only when true, whatever columns or spelling it was read from; any other type
-- as stored.
CREATE OR REPLACE FUNCTION flagctl.kill_norm(p_kind text, p_value jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
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

-- A value with one kill setting applied (RolloutKill.overlay / LiteralKill.overlay).
CREATE OR REPLACE FUNCTION flagctl.kill_overlay(p_kind text, p_value jsonb, p_setting jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
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

-- A value with the settings of these engagements applied, lowest level first (overlay).
CREATE OR REPLACE FUNCTION flagctl.kill_overlay_all(p_kind text, p_start jsonb, p_flag text,
                                                    p_holders flagctl.engaged_switch[]) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, flagctl
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

-- Whether an engagement holds the value stored at this scope (Engaged.covers).
CREATE OR REPLACE FUNCTION flagctl.kill_covers(e flagctl.engaged_switch, p_flag text, p_scope text) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT e.settings ? p_flag
       AND (e.scope = p_scope OR (e.scope = 'global' AND coalesce(e.below->p_flag ? p_scope, false)))
$$;

-- What an engagement recorded at a scope it covers: the base (`prior`) or what it wrote
-- (`applied`); NULL for none.
CREATE OR REPLACE FUNCTION flagctl.kill_recorded(e flagctl.engaged_switch, p_what text, p_flag text, p_scope text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT nullif(CASE WHEN p_scope = e.scope
                       THEN CASE p_what WHEN 'prior' THEN e.prior->p_flag ELSE e.applied->p_flag END
                       ELSE e.below->p_flag->p_scope->p_what END, 'null'::jsonb)
$$;

-- The base beneath these (covering) engagements: the first one's (base_at).
CREATE OR REPLACE FUNCTION flagctl.kill_base_at(p_holders flagctl.engaged_switch[], p_flag text, p_scope text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, flagctl
AS $$
    SELECT flagctl.kill_recorded(h, 'prior', p_flag, p_scope)
      FROM unnest(p_holders) AS h ORDER BY h.seq LIMIT 1
$$;

-- What the engaged kills left at a scope they cover (left_at): what a re-kill writes back
-- and what a release expects to find (NULL: no override).
CREATE OR REPLACE FUNCTION flagctl.kill_left_at(p_kind text, p_holders flagctl.engaged_switch[], p_flag text,
                                                p_scope text, p_global jsonb, p_default jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, flagctl
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

-- The value at a scope once `me` covers it too (with_kill); p_now: its value there today.
CREATE OR REPLACE FUNCTION flagctl.kill_with(p_kind text, p_holders flagctl.engaged_switch[], me flagctl.engaged_switch,
                                             p_flag text, p_scope text, p_now jsonb, p_global jsonb, p_default jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, flagctl
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

-- The value at a scope once `rec` no longer covers it (without); NULL: no override — at the
-- global scope, no stored row (the default applies again).
CREATE OR REPLACE FUNCTION flagctl.kill_without(p_kind text, p_holders flagctl.engaged_switch[],
                                                rec flagctl.engaged_switch, p_flag text, p_scope text,
                                                p_global jsonb, p_default jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, flagctl
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

-- The triggers and rules of a table's own (not flagctl's) that can change or skip a write
-- to it, described for an operator (flagctl.store.db.interference reads it too).
CREATE OR REPLACE FUNCTION flagctl.interference(p_table regclass) RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog
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

-- A write that did not take: raise (rolling the whole change back), naming what was in the way.
CREATE OR REPLACE FUNCTION flagctl.kill_not_taken(p_table regclass, p_what text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, flagctl
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

-- A session's lock_timeout of 0 means "wait forever" to PostgreSQL: a kill's or a change's
-- locks never wait unbounded behind a blocker, so such a wait is bounded to 5 s for this
-- transaction (flagctl's own callers set their --lock-timeout first).
CREATE OR REPLACE FUNCTION flagctl.bounded_lock_wait() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
    IF current_setting('lock_timeout') = '0' THEN
        PERFORM set_config('lock_timeout', '5s', true);
    END IF;
END
$$;

-- Lock the flags a kill or a release writes (kill_lock_flags), then the system's engaged
-- switches.
CREATE OR REPLACE FUNCTION flagctl.kill_lock(p_system text, p_flags text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    PERFORM flagctl.kill_lock_flags(p_system, p_flags);
    PERFORM 1 FROM flagctl.engaged_switch e WHERE e.system = p_system ORDER BY e.seq FOR UPDATE;
END
$$;

-- Lock these flags: flagctl's own by advisory lock (the system's group shared, then each
-- name; past 256 names the group exclusively) and their rows, then each bound table's rows
-- by key — the order every flagctl change locks in.
CREATE OR REPLACE FUNCTION flagctl.kill_lock_flags(p_system text, p_flags text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
AS $$
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
$$;

-- The stored values of these flags, as flagctl compares them: {flag: {global, stored,
-- overrides: {scope: value}}} — global is the flag's published default when never stored.
-- flagctl's own flags are read in one query (a kill may cover thousands); bound flags, a
-- row of the application's each, one by one.
CREATE OR REPLACE FUNCTION flagctl.kill_state(p_system text, p_cat jsonb, p_flags text[]) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, flagctl
AS $$
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
$$;

-- Each of these flags with the system's engagements that name it, cut down to that flag
-- (its settings, prior, applied and below alone), in engagement order. The helpers above
-- read only the one flag's entries; passing whole engagements, which carry every flag of
-- their switch, made a kill of thousands of flags quadratic. Each jsonb is expanded once.
CREATE OR REPLACE FUNCTION flagctl.kill_slim(p_system text, p_flags text[])
RETURNS TABLE (flag text, engaged flagctl.engaged_switch[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, flagctl
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

-- Each of these scopes of one flag (in order) with the engagements that cover it
-- (kill_covers), lowest level first, each cut down to that scope: its `below` holds that
-- scope's entry alone. A global kill over thousands of overrides records thousands of
-- scopes in `below`; handed whole to the helpers at every scope, it made a release (and a
-- re-kill) quadratic in them: 9 s at 10,000 overrides. Each `below` is expanded once.
CREATE OR REPLACE FUNCTION flagctl.kill_scopes(p_flag text, p_engaged flagctl.engaged_switch[], p_scopes text[])
RETURNS TABLE (scope text, holders flagctl.engaged_switch[])
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, flagctl
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

-- Items of a kill or a release ({flag, scope, …}) in the order it goes through them: by flag,
-- then the global scope, then the others (the order its scopes are planned in).
CREATE OR REPLACE FUNCTION flagctl.kill_in_order(p_items jsonb[]) RETURNS jsonb[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT coalesce(array_agg(i ORDER BY i->>'flag' COLLATE "C", i->>'scope' <> 'global', i->>'scope' COLLATE "C"), '{}')
      FROM unnest(p_items) AS i
$$;

-- Write the changes of a kill or a release ({flag, scope, kind, after}; after NULL: remove
-- the override, or the global row) and read every row back: a row that did not take its
-- value raises (kill_not_taken), naming the first. flagctl's own flags are written a
-- statement for all rows of a kind — one DELETE, one UPDATE of the rows stored, one INSERT
-- of the rest — and read back from their RETURNING, so a global kill over 10,000 overrides
-- is three statements (and flag_state's audit rows three INSERTs), not 10,001 calls; the
-- guard still judges each row. A bound flag's row is written by kill_write.
CREATE OR REPLACE FUNCTION flagctl.kill_write_all(p_system text, p_changes jsonb[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
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

-- Write a bound flag's value (its row in the application's table) and read it back: a row
-- that did not take the value raises (kill_not_taken). flagctl's own flags: kill_write_all.
CREATE OR REPLACE FUNCTION flagctl.kill_write(p_system text, p_kind text, p_flag text, p_scope text, p_after jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
AS $$
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
$$;

-- The cross-flag constraints of a published catalogue that a state breaks, as flagctl's
-- rules judge them (flagctl.model.constraints): p_state is {flag: stored value} of the
-- constrained flags, at p_scope; each violation is "NAME would be violated at SCOPE: why".
CREATE OR REPLACE FUNCTION flagctl.kill_violations(p_cat jsonb, p_state jsonb, p_scope text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, flagctl
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

-- A stored value's truth, as flagctl's constraints read it: a rollout is true when anyone
-- sees it (a percent above 0, or the internal audience), any other value as Python's bool().
CREATE OR REPLACE FUNCTION flagctl.kill_truthy(p_value jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
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

-- A stored value against a constraint's literal: a rollout against a bool by its truth,
-- against a number by its percent; anything else as JSON.
CREATE OR REPLACE FUNCTION flagctl.kill_equal(p_value jsonb, p_expected jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, flagctl
AS $$
    SELECT CASE
        WHEN jsonb_typeof(p_value) = 'object' AND p_value ? 'enabled' AND jsonb_typeof(p_expected) = 'boolean'
            THEN flagctl.kill_truthy(p_value) = p_expected::text::boolean
        WHEN jsonb_typeof(p_value) = 'object' AND p_value ? 'enabled'
            THEN (p_value->'percent') = p_expected
        ELSE coalesce(p_value = p_expected, false) END
$$;

-- Refuse the state a kill or a release leaves if it breaks a published constraint, globally
-- or at any scope with an override of a constrained flag (as flagctl checks a plan).
CREATE OR REPLACE FUNCTION flagctl.kill_check_constraints(p_system text, p_cat jsonb) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
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

-- Refuse a caller who may not make the change this transaction declared (p_declared) and
-- a kill or a release (p_action) under it, naming the role it needs.
CREATE OR REPLACE FUNCTION flagctl.kill_role(p_action text, p_declared text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    IF NOT flagctl.may(p_declared) THEN
        RAISE EXCEPTION 'flagctl: % may not %: it needs the role %', session_user, p_action, flagctl.role_for(p_declared)
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('flagctl db grant %s %s', replace(flagctl.role_for(p_declared), 'flagctl_', ''), session_user);
    END IF;
END
$$;

-- Declare the change (begin_change: the caller's role is checked there) unless this
-- transaction declared it already as this very action (flagctl's CLI does, with its actor
-- and command); the published catalogue of the system.
CREATE OR REPLACE FUNCTION flagctl.kill_declare(p_action text, p_system text, p_switch text, p_scope text,
                                                p_reason text, p_actor text) RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
AS $$
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
$$;

-- Engage a kill switch of a system's published catalogue, globally or at one scope; the
-- changes it made (flag, scope, before, after; NULL: no override). Engaged already: it
-- writes the engaged kills' values back wherever they were changed (and a global kill takes
-- in overrides created since); nothing to do: no rows, and a notice.
CREATE OR REPLACE FUNCTION flagctl.kill(p_system text, p_switch text, p_reason text,
                                        p_scope text DEFAULT 'global', p_actor text DEFAULT NULL)
RETURNS TABLE (flag text, scope text, before jsonb, after jsonb)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- Release an engaged kill switch: restore what it replaced, leaving what other engaged
-- switches hold; the changes it made. A flag changed since the kill stops it (nothing
-- changed) unless p_force, which restores anyway and marks the change forced (it then
-- needs a post-action review). Not engaged: no rows, and a notice.
CREATE OR REPLACE FUNCTION flagctl.release(p_system text, p_switch text, p_reason text,
                                           p_scope text DEFAULT 'global', p_force boolean DEFAULT false,
                                           p_actor text DEFAULT NULL)
RETURNS TABLE (flag text, scope text, before jsonb, after jsonb)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- Take the locks a kill (or a release) of this switch at this scope takes, before flagctl
-- reads the state it plans from and shows: the same locks flagctl.kill takes, on the
-- published switch's flags and those its engagement recorded. The security role cannot
-- take them itself (SELECT … FOR UPDATE needs UPDATE, which it does not hold): only inside a
-- change declared as a kill or a release (or the automatic rollback), by a member who may
-- make it, and only the locks; the kill's writes are flagctl.kill's.
CREATE OR REPLACE FUNCTION flagctl.kill_hold(p_system text, p_switch text, p_scope text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- The helpers are the functions' own; the entry points (kill, release, and kill_hold, the
-- kill's locks for flagctl's plan) are for every flagctl role, and the declared change says
-- who may act (a kill or a release needs flagctl_security). What stands in
-- a table's way reads only the catalogue, which anyone may: `flagctl db status` shows it.
GRANT EXECUTE ON FUNCTION flagctl.interference(regclass) TO PUBLIC;
REVOKE ALL ON FUNCTION flagctl.kill_norm(text, jsonb), flagctl.kill_overlay(text, jsonb, jsonb),
    flagctl.kill_overlay_all(text, jsonb, text, flagctl.engaged_switch[]),
    flagctl.kill_covers(flagctl.engaged_switch, text, text),
    flagctl.kill_recorded(flagctl.engaged_switch, text, text, text),
    flagctl.kill_base_at(flagctl.engaged_switch[], text, text),
    flagctl.kill_left_at(text, flagctl.engaged_switch[], text, text, jsonb, jsonb),
    flagctl.kill_with(text, flagctl.engaged_switch[], flagctl.engaged_switch, text, text, jsonb, jsonb, jsonb),
    flagctl.kill_without(text, flagctl.engaged_switch[], flagctl.engaged_switch, text, text, jsonb, jsonb),
    flagctl.kill_not_taken(regclass, text), flagctl.kill_lock(text, text[]), flagctl.kill_lock_flags(text, text[]), flagctl.bounded_lock_wait(),
    flagctl.kill_state(text, jsonb, text[]), flagctl.kill_slim(text, text[]),
    flagctl.kill_scopes(text, flagctl.engaged_switch[], text[]), flagctl.kill_write(text, text, text, text, jsonb),
    flagctl.kill_write_all(text, jsonb[]), flagctl.kill_in_order(jsonb[]),
    flagctl.kill_declare(text, text, text, text, text, text), flagctl.kill_role(text, text),
    flagctl.kill_violations(jsonb, jsonb, text), flagctl.kill_truthy(jsonb), flagctl.kill_equal(jsonb, jsonb),
    flagctl.kill_check_constraints(text, jsonb),
    flagctl.kill(text, text, text, text, text), flagctl.release(text, text, text, text, boolean, text),
    flagctl.kill_hold(text, text, text) FROM PUBLIC;
DO $$
BEGIN
    IF to_regrole('flagctl_viewer') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION flagctl.kill(text, text, text, text, text),
            flagctl.release(text, text, text, text, boolean, text), flagctl.kill_hold(text, text, text) TO flagctl_viewer;
    END IF;
    IF to_regrole('flagctl_operator') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION flagctl.kill(text, text, text, text, text),
            flagctl.release(text, text, text, text, boolean, text), flagctl.kill_hold(text, text, text) TO flagctl_operator;
    END IF;
END
$$;
