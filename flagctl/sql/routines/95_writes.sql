-- Flag writes for every change that is not a kill: flagctl's roles hold no INSERT, UPDATE or
-- DELETE on flag_state or on a bound table (schema 29), so a stage move, a set, a profile,
-- a restore or a rollback writes through these functions, which run as flagctl's owner.
-- They write only flags, only inside a change this transaction declared (begin_change
-- checked the caller's role for it), and the guard trigger still judges each row against
-- that declaration and the published catalogue, as it does every write. What each row
-- holds afterwards is returned, for flagctl to check that the write took.

-- Refuse a flag write outside a declared change.
CREATE OR REPLACE FUNCTION flagctl.write_declared(p_what text) RETURNS flagctl.change_context
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, flagctl
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

-- Refuse a flag's lock or write under a declaration that writes no flag: a freeze (the ops
-- role's only changes), a review, a refusal's record. Without it an ops member could hold a
-- kill's rows in an open transaction.
CREATE OR REPLACE FUNCTION flagctl.flag_change_declared(p_what text) RETURNS flagctl.change_context
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, flagctl
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

-- Lock these flags for the declared change, in flagctl's one lock order (kill_lock_flags).
CREATE OR REPLACE FUNCTION flagctl.hold_flags(p_system text, p_flags text[]) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    PERFORM flagctl.flag_change_declared('flagctl.hold_flags locks');
    PERFORM flagctl.bounded_lock_wait();
    PERFORM flagctl.kill_lock_flags(p_system, p_flags);
END
$$;

-- Lock the system's engaged kill switches for the declared change (a stage move reads them
-- to move the base beneath a kill), in seq order as a kill locks them.
CREATE OR REPLACE FUNCTION flagctl.hold_engaged(p_system text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    PERFORM flagctl.flag_change_declared('flagctl.hold_engaged locks');
    PERFORM flagctl.bounded_lock_wait();
    PERFORM 1 FROM flagctl.engaged_switch e WHERE e.system = p_system ORDER BY e.seq FOR UPDATE;
END
$$;

-- Lock the system's rollback state for the declared change (the manual override).
CREATE OR REPLACE FUNCTION flagctl.hold_rollback_state(p_system text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    PERFORM flagctl.record_declared('flagctl.hold_rollback_state locks', ARRAY['rollback.']);
    PERFORM flagctl.bounded_lock_wait();
    PERFORM 1 FROM flagctl.rollback_state r WHERE r.system = p_system FOR UPDATE;
END
$$;

-- flagctl's own flags: remove the overrides (p_del_*) and upsert the values (p_flags,
-- p_scopes, p_values) in one statement; returns which overrides to remove existed, which
-- were removed, and what each written row holds once the table's own triggers had their say.
CREATE OR REPLACE FUNCTION flagctl.write_own(p_system text, p_del_flags text[], p_del_scopes text[],
                                             p_flags text[], p_scopes text[], p_values jsonb[])
RETURNS TABLE(flag text, scope text, what text, value jsonb)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- Bound flags of one application table: p_rows is [{flag, set: {column: value}}], each
-- flag's row found by its registered key and only its registered value columns assigned
-- (one UPDATE per set of assigned columns, typed by the table itself); returns each
-- updated row's key and assigned columns, by flag. A rule that rewrites the UPDATE (it then
-- cannot return rows) raises FL001 as a kill's write does.
CREATE OR REPLACE FUNCTION flagctl.write_bound(p_system text, p_rows jsonb)
RETURNS TABLE(flag text, held jsonb)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
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
$$;

REVOKE ALL ON FUNCTION flagctl.write_declared(text), flagctl.flag_change_declared(text), flagctl.hold_flags(text, text[]),
    flagctl.hold_engaged(text), flagctl.hold_rollback_state(text),
    flagctl.write_own(text, text[], text[], text[], text[], jsonb[]), flagctl.write_bound(text, jsonb) FROM PUBLIC;
DO $$
BEGIN
    IF to_regrole('flagctl_viewer') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION flagctl.hold_flags(text, text[]), flagctl.hold_engaged(text),
            flagctl.hold_rollback_state(text),
            flagctl.write_own(text, text[], text[], text[], text[], jsonb[]), flagctl.write_bound(text, jsonb)
            TO flagctl_viewer;
    END IF;
    IF to_regrole('flagctl_operator') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION flagctl.hold_flags(text, text[]), flagctl.hold_engaged(text),
            flagctl.hold_rollback_state(text),
            flagctl.write_own(text, text[], text[], text[], text[], jsonb[]), flagctl.write_bound(text, jsonb)
            TO flagctl_operator;
    END IF;
END
$$;
