-- flagctl schema, version 22: a stage move under a kill moves the stage beneath it.
--
-- A kill overlays a ladder's base: `engaged_switch.prior` holds what `release` restores.
-- Until now a backward stage move under a kill was a no-op (stage rollback) or refused
-- (stage set), so after the release the ladder was back at the stage a CI job had rolled
-- back (issue 17, finding 2). Now a backward move rewrites the base beneath the kill — the
-- flag rows keep the kill's values — and the guard on flagctl.engaged_switch allows exactly
-- that, and no more:
--   - a declared stage move (stage.*, rollback.*) by a member of the release role may UPDATE
--     only `prior` and `applied` of an engagement at the global scope (ladders move global
--     values), keep its flags, and only narrow each one: a rollout or bool no wider than
--     before (a base never stored counts as the flag's published default); a type with no
--     exposure order (enum, number, list) may change, as `set` may change it for the same
--     member anyway;
--   - a kill INSERTs an engagement, or (engaged again) UPDATEs nothing but the overrides it
--     covers (`below`); a release only DELETEs it. So no declared kill or release rewrites a
--     recorded base either — before, any write in a declared kill or release went through.
-- The release role gets UPDATE on those two columns only (and so may lock the rows).

-- Whether `after` narrows `before` (engagement values: {flag: value}) flag by flag, as the
-- published catalogue of the system orders them; the same flags on both sides.
CREATE FUNCTION flagctl.narrows_base(p_system text, before jsonb, after jsonb) RETURNS boolean
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
    IF act = 'kill' AND (TG_OP = 'INSERT'
                         OR TG_OP = 'UPDATE' AND to_jsonb(NEW) - 'below' = to_jsonb(OLD) - 'below')
       OR act = 'release' AND TG_OP = 'DELETE' THEN
        RETURN coalesce(NEW, OLD);
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

REVOKE ALL ON FUNCTION flagctl.narrows_base(text, jsonb, jsonb) FROM PUBLIC;
DO $$
BEGIN
    IF to_regrole('flagctl_release') IS NOT NULL THEN
        GRANT UPDATE (prior, applied) ON flagctl.engaged_switch TO flagctl_release;
    END IF;
EXCEPTION
    WHEN insufficient_privilege OR undefined_object THEN
        RAISE NOTICE 'the release role''s grant on engaged_switch not given (%)', SQLERRM;
END
$$;
