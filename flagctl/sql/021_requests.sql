-- flagctl schema, version 21: a request for a second person is what the database says it is.
--
-- Until now a release member could INSERT into flagctl.requests directly: a summary reading
-- "canary (on 5%) → off" over a spec that goes to 100% forced, expiring in ten years, which
-- a second user's `approve` then applied. Now:
--   - a request is created only by flagctl.create_request: the summary is derived from the
--     exact changes planned (flag, scope, before → after), the expiry is the published
--     approvals' `expire` (24 hours without one), the requester is the session's user;
--   - it is approved only by flagctl.approve_request, by another database user, while it is
--     pending and not expired;
--   - the guard (schema 20) accepts a write that needs a second person only when a request
--     approved in the same transaction holds that very change — the same flag and scope, from
--     the same value it was planned on, to the same value. A state that moved since the
--     request was made is not approved by it.

ALTER TABLE flagctl.requests ADD COLUMN changes jsonb;  -- [{flag, scope, before, after}] as stored

CREATE FUNCTION flagctl.create_request(p_system text, p_action text, p_spec jsonb, p_why text, p_reason text,
                                       p_actor text, p_changes jsonb)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

CREATE FUNCTION flagctl.approve_request(p_id bigint, p_system text, p_actor text) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- Only the functions above write requests: no role keeps INSERT or UPDATE on the table.
CREATE OR REPLACE FUNCTION flagctl.guard_request() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
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

-- Two stored values are the same value of a flag of this type (a bound rollout may lack
-- the internal column: it is false).
CREATE FUNCTION flagctl.same_value(p_type text, a jsonb, b jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
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

-- The guard's four eyes, now bound to the very change approved.
CREATE OR REPLACE FUNCTION flagctl.approved_here(p_system text, p_flag text, p_scope text, p_type text,
                                                 p_before jsonb, p_after jsonb)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, flagctl
AS $$
    SELECT EXISTS (
        SELECT 1 FROM flagctl.requests r, jsonb_array_elements(r.changes) AS c
         WHERE r.txid = txid_current_if_assigned() AND r.status = 'approved' AND r.system = p_system
           AND c->>'flag' = p_flag AND c->>'scope' = p_scope
           AND flagctl.same_value(p_type, c->'before', p_before) AND flagctl.same_value(p_type, c->'after', p_after))
$$;

REVOKE ALL ON FUNCTION flagctl.create_request(text, text, jsonb, text, text, text, jsonb),
    flagctl.approve_request(bigint, text, text) FROM PUBLIC;
DO $$
BEGIN
    IF to_regrole('flagctl_release') IS NOT NULL THEN
        REVOKE INSERT, UPDATE ON flagctl.requests FROM flagctl_release;
        GRANT EXECUTE ON FUNCTION flagctl.create_request(text, text, jsonb, text, text, text, jsonb),
              flagctl.approve_request(bigint, text, text) TO flagctl_release, flagctl_security, flagctl_ops, flagctl_admin;
    END IF;
    IF to_regrole('flagctl_operator') IS NOT NULL THEN
        REVOKE INSERT, UPDATE ON flagctl.requests FROM flagctl_operator;
        GRANT EXECUTE ON FUNCTION flagctl.create_request(text, text, jsonb, text, text, text, jsonb),
              flagctl.approve_request(bigint, text, text) TO flagctl_operator;
    END IF;
EXCEPTION
    WHEN insufficient_privilege OR undefined_object THEN
        RAISE NOTICE 'grants on the request functions not given (%)', SQLERRM;
END
$$;

-- The guard of schema 20, its four eyes bound to the approved change itself.
CREATE OR REPLACE FUNCTION flagctl.judge_flag_write(v_system text, v_flag text, v_scope text, before jsonb, after jsonb,
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

