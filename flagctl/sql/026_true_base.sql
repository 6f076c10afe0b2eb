-- flagctl schema, version 26: a kill records the base it really replaced.
--
-- `engaged_switch.prior` (and, for a global kill, each covered override's `below.prior`) is
-- what `release` restores. Until now the database took the kill's word for it: a security
-- member could declare a kill in psql, INSERT an engagement whose prior said 100%, and
-- release it — the flag went to 100%, past any freeze or approval, and the guard allowed it
-- as "no wider than the recorded base".
--
-- Now the engagement's guard checks every recorded base against the truth: the value the
-- flag had at that scope before this transaction wrote it (the before-image of its audit
-- row in this transaction; a kill's writes only ever narrow, so no in-transaction image is
-- wider than the original), or, where this transaction did not write it, the value stored
-- now; or the base another engaged kill already recorded for it (strictest wins: a second
-- kill keeps the first one's base). Anything else is refused.

-- What a flag held at a scope before this transaction changed it (or holds now, if it did
-- not), as flagctl stores values: NULL if no row.
CREATE FUNCTION flagctl.value_before(p_system text, p_flag text, p_scope text) RETURNS jsonb
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
     ORDER BY au.seq DESC LIMIT 1;
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
CREATE FUNCTION flagctl.true_base(p_system text, p_switch text, p_flag text, p_scope text, p_base jsonb)
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
CREATE FUNCTION flagctl.check_bases(e flagctl.engaged_switch, p_old_below jsonb) RETURNS void
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
    IF act = 'kill' AND TG_OP = 'INSERT' THEN
        PERFORM flagctl.check_bases(NEW, NULL);
        RETURN NEW;
    END IF;
    IF act = 'kill' AND TG_OP = 'UPDATE' AND to_jsonb(NEW) - 'below' = to_jsonb(OLD) - 'below' THEN
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

REVOKE ALL ON FUNCTION flagctl.value_before(text, text, text),
    flagctl.true_base(text, text, text, text, jsonb),
    flagctl.check_bases(flagctl.engaged_switch, jsonb) FROM PUBLIC;
