-- flagctl schema, version 20: the database judges every write of a flag value.
--
-- One guard (a BEFORE trigger on flagctl.flag_state and on every bound table's rows that
-- hold a flag) reads what the write means from the published catalogue and the change
-- declared through flagctl.begin_change, and refuses, in psql as in flagctl:
--   - a write by a member of a flagctl role that declared no change (plain SQL): flagctl's
--     roles change flag values only as flagctl does;
--   - a security-only session (kill and release) writing anything but a kill's value (a
--     rollout no wider than before; any other type, a kill switch's own setting) or a
--     release's (no wider than the value the engaged kills recorded as their base);
--   - a write that widens exposure where a freeze is in force (kills, releases, rollbacks
--     and a drill's restore excepted);
--   - a change the catalogue's approvals want a second person for (a rollout raised to
--     approvals.at_or_above, a forced change under approvals.forced), unless a request
--     was approved by another user in this very transaction (flagctl approve).
-- The schema's owner is not judged (it owns everything, and is audited as ever); nor is an
-- application's own role that holds no flagctl role (its data: audited as sql.*, and shown
-- as drift). The checks need the catalogue: a system never published is judged by roles only.

-- How many subjects a value reaches (NULL: the type has no order): a rollout's share, half a
-- point more for the internal audience; a bool 0 or 100 (flagctl.model.flagtypes agrees).
CREATE FUNCTION flagctl.exposure(p_type text, p_value jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT CASE
        WHEN p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN NULL
        WHEN p_type = 'rollout' THEN
            CASE WHEN (p_value->>'enabled')::boolean AND (p_value->>'percent')::numeric > 0
                 THEN (p_value->>'percent')::numeric ELSE 0 END
            + CASE WHEN (p_value->>'enabled')::boolean AND coalesce((p_value->>'internal')::boolean, false)
                   THEN 0.5 ELSE 0 END
        WHEN p_type = 'bool' THEN CASE WHEN p_value = 'true'::jsonb THEN 100 ELSE 0 END
    END
$$;

-- A bound row's value as flagctl stores it: the logical columns of the binding; a single
-- `value` column is the value itself.
CREATE FUNCTION flagctl.bound_value(p_columns jsonb, p_row jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT CASE
        WHEN p_row IS NULL THEN NULL
        WHEN p_columns ? 'value' THEN p_row->(p_columns->>'value')
        ELSE (SELECT jsonb_object_agg(c.key, p_row->(c.value #>> '{}')) FROM jsonb_each(p_columns) AS c)
    END
$$;

-- Whether the session's user holds any flagctl role.
CREATE FUNCTION flagctl.flagctl_member() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT EXISTS (SELECT 1 FROM unnest(ARRAY['flagctl_viewer', 'flagctl_release', 'flagctl_security',
                                              'flagctl_ops', 'flagctl_admin', 'flagctl_operator']) AS r(name)
                    WHERE to_regrole(r.name) IS NOT NULL AND pg_has_role(session_user, to_regrole(r.name), 'MEMBER'))
$$;

-- Judge one flag's write (before → after at a scope; NULL: no row) against the declared
-- change and the published catalogue; raise if it may not happen.
CREATE FUNCTION flagctl.judge_flag_write(v_system text, v_flag text, v_scope text, before jsonb, after jsonb,
                                         own boolean)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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
    cat := (flagctl.published(v_system)).catalogue;
    kind := cat->'flags'->v_flag->>'type';
    IF cat IS NOT NULL AND kind IS NULL THEN
        RAISE EXCEPTION 'flagctl: % is no flag of system % as published', v_flag, v_system
            USING ERRCODE = 'insufficient_privilege', HINT = 'publish the manifest that has it: flagctl manifest publish';
    END IF;
    -- What the scope had before: its override, else the global value (else the default).
    IF before IS NULL AND own THEN
        before := coalesce(
            (SELECT f.value FROM flagctl.flag_state f
              WHERE f.system = v_system AND f.flag = v_flag AND f.scope = 'global' AND v_scope <> 'global'),
            cat->'flags'->v_flag->'default');
    END IF;
    was := flagctl.exposure(kind, before);
    now_ := flagctl.exposure(kind, after);

    IF act IN ('kill', 'release') THEN
        IF flagctl.may('set') THEN
            RETURN;  -- a release member may set any value anyway
        END IF;
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
            RAISE EXCEPTION 'flagctl: a kill by % may only lower exposure or set a kill switch''s own value; % at % would go from % to %',
                session_user, v_flag, v_scope, coalesce(before::text, 'unset'), coalesce(after::text, 'unset')
                USING ERRCODE = 'insufficient_privilege', HINT = 'flagctl kill SWITCH sets exactly the switch''s values';
        END IF;
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
        RAISE EXCEPTION 'flagctl: a release by % restores only what the engaged kills replaced; % at % would become %',
            session_user, v_flag, v_scope, coalesce(after::text, 'unset')
            USING ERRCODE = 'insufficient_privilege', HINT = 'flagctl release SWITCH restores exactly the recorded values';
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
       AND NOT EXISTS (SELECT 1 FROM flagctl.requests r WHERE r.txid = txid_current() AND r.status = 'approved')
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

-- The guard itself: which flags a row holds, and each one's write judged.
CREATE OR REPLACE FUNCTION flagctl.guard_flag_write() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- Engaged switches change only in a declared kill or release (or by the owner).
CREATE FUNCTION flagctl.guard_engaged_write() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    act text := regexp_replace(coalesce((SELECT c.action FROM flagctl.change_context c
                                          WHERE c.txid = txid_current()), 'sql'), '^drill\.', '');
BEGIN
    IF pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER')
       OR act IN ('kill', 'release') THEN
        RETURN coalesce(NEW, OLD);
    END IF;
    RAISE EXCEPTION 'flagctl: kill switches are engaged and released only by flagctl kill and release (not %)', act
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER flagctl_guard BEFORE INSERT OR UPDATE OR DELETE ON flagctl.engaged_switch
    FOR EACH ROW EXECUTE FUNCTION flagctl.guard_engaged_write();

-- Bound tables get the guard when they are bound (flagctl db init); the ones bound already, now.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT DISTINCT table_schema, table_name FROM flagctl.binding LOOP
        IF to_regclass(quote_ident(t.table_schema) || '.' || quote_ident(t.table_name)) IS NOT NULL THEN
            EXECUTE format('CREATE OR REPLACE TRIGGER flagctl_guard BEFORE INSERT OR UPDATE OR DELETE ON %I.%I'
                           ' FOR EACH ROW EXECUTE FUNCTION flagctl.guard_flag_write()', t.table_schema, t.table_name);
        END IF;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION flagctl.judge_flag_write(text, text, text, jsonb, jsonb, boolean) FROM PUBLIC;
