-- The flag guard: the database judges every write of a flag value (schemas 14, 20, 21, 22, 26).
--
-- The current definition of each function; `flagctl db init` re-applies this folder after
-- the migrations whenever it changed (flagctl/sql/README.md). Grants stay in the migrations.

-- How many subjects a value reaches (NULL: the type has no order): a rollout's share, half a
-- point more for the internal audience; a bool 0 or 100 (flagctl.model.flagtypes agrees).
CREATE OR REPLACE FUNCTION flagctl.exposure(p_type text, p_value jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
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

-- A bound row's value as flagctl stores it: the logical columns of the binding; a single
-- `value` column is the value itself.
CREATE OR REPLACE FUNCTION flagctl.bound_value(p_columns jsonb, p_row jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT CASE
        WHEN p_row IS NULL THEN NULL
        WHEN p_columns ? 'value' THEN p_row->(p_columns->>'value')
        ELSE (SELECT jsonb_object_agg(c.key, p_row->(c.value #>> '{}')) FROM jsonb_each(p_columns) AS c)
    END
$$;

-- Judge one flag's write (before → after at a scope; NULL: no row) against the declared
-- change and the published catalogue; raise if it may not happen:
--   - a write by a member of a flagctl role that declared no change (plain SQL);
--   - a security-only session writing anything but a kill's value (a rollout no wider than
--     before; any other type, a kill switch's own setting) or a release's (no wider than the
--     value the engaged kills recorded as their base);
--   - a write that widens exposure where a freeze is in force (kills, releases, rollbacks
--     and a drill's restore excepted);
--   - a change the catalogue's approvals want a second person for, unless a request approved
--     by another user in this very transaction holds that very change (approved_here).
-- An application's own role that holds no flagctl role is not judged (its data: audited as
-- sql.*, shown as drift). A system never published is judged by roles only.
CREATE OR REPLACE FUNCTION flagctl.judge_flag_write(v_system text, v_flag text, v_scope text,
                                                    before jsonb, after jsonb, own boolean)
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

-- BEFORE each row of flagctl.flag_state and of every bound table: which flags the row holds,
-- and each one's write judged (judge_flag_write). The schema's owner is not judged (it owns
-- everything, and is audited as ever).
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

-- Whether `after` narrows `before` (engagement values: {flag: value}) flag by flag, as the
-- published catalogue of the system orders them; the same flags on both sides. A base never
-- stored counts as the flag's published default; a type with no exposure order may change.
CREATE OR REPLACE FUNCTION flagctl.narrows_base(p_system text, before jsonb, after jsonb) RETURNS boolean
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- What a flag held at a scope before this transaction changed it (or holds now, if it did
-- not), as flagctl stores values: NULL if no row.
CREATE OR REPLACE FUNCTION flagctl.value_before(p_system text, p_flag text, p_scope text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
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
$$;

-- Whether `p_base` may be recorded as the base of a flag at a scope by a kill of this
-- transaction: the value it had before, or a base another engagement recorded for it.
CREATE OR REPLACE FUNCTION flagctl.true_base(p_system text, p_switch text, p_flag text, p_scope text, p_base jsonb)
RETURNS boolean
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- Every base an engagement records, checked; raises naming the first that is not true.
CREATE OR REPLACE FUNCTION flagctl.check_bases(e flagctl.engaged_switch, p_old_below jsonb) RETURNS void
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- BEFORE each row of flagctl.engaged_switch: engaged switches change only as declared (or by
-- the owner). A kill INSERTs an engagement, or (engaged again) UPDATEs nothing but the
-- overrides it covers (`below`), and every base it records is the one it really replaced
-- (check_bases); a release only DELETEs one; a declared stage move (stage.*, rollback.*) by a
-- release member may UPDATE only `prior` and `applied` of a global engagement, and only narrow
-- them (narrows_base): the stage beneath the kill moves back.
CREATE OR REPLACE FUNCTION flagctl.guard_engaged_write() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- The freezes in force, read after waiting for any freeze being set or cleared (which holds
-- the same lock exclusively): a VOLATILE function takes a fresh snapshot for its query
-- after the lock, so a freeze committed a moment ago is seen. One statement for the caller.
CREATE OR REPLACE FUNCTION flagctl.freezes_in_force(p_system text, p_now timestamptz DEFAULT NULL)
RETURNS SETOF flagctl.freeze
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('flagctl.freeze:' || p_system, 0));
    RETURN QUERY SELECT * FROM flagctl.freeze f
                  WHERE f.system = p_system AND f.cleared_at IS NULL
                    AND (f.until IS NULL OR f.until > coalesce(p_now, now()))
                  ORDER BY f.id;
END
$$;

-- Freezes and exemptions change only as declared (schema 27): a write by a member of a
-- flagctl role must be inside a change begin_change declared for that action — freeze.set or
-- freeze.clear on flagctl.freeze, exempt on flagctl.exemption (a drill's too) — and records
-- who acts and why from the declaration, not from session settings. A freeze is only set
-- (inserted) or cleared (cleared_at, cleared_by), never rewritten or deleted. The schema's
-- owner is not judged; application roles hold no privilege on these tables.
CREATE OR REPLACE FUNCTION flagctl.guard_declared_write() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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
