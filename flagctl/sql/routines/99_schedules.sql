-- Scheduled changes (schema 33), written only here.

-- A change scheduled (schedule.add): by the declared actor, who must be one who may make
-- the change itself (a kill needs security, a freeze ops, a stage move release).
CREATE OR REPLACE FUNCTION flagctl.schedule_add(p_system text, p_kind text, p_spec jsonb, p_summary text,
                                                p_planned_on jsonb, p_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- A pending schedule settled (schedule.*): applied or refused by a runner, or cancelled.
-- Settled once; by the declared actor.
CREATE OR REPLACE FUNCTION flagctl.schedule_settle(p_id bigint, p_state text, p_outcome text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

REVOKE ALL ON FUNCTION flagctl.schedule_add(text, text, jsonb, text, jsonb, timestamptz),
    flagctl.schedule_settle(bigint, text, text) FROM PUBLIC;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['flagctl_viewer', 'flagctl_operator'] LOOP
        IF to_regrole(r) IS NOT NULL THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION flagctl.schedule_add(text, text, jsonb, text, jsonb, timestamptz),
                flagctl.schedule_settle(bigint, text, text) TO %I', r);
        END IF;
    END LOOP;
END
$$;
