-- Rollouts that run themselves (schema 31): the rollout's row, its analyses and the
-- runners' heartbeats, written only here. Who acts comes from the declared change
-- (rollout.*, which needs the release role, as every stage move does); a runner's
-- heartbeat is the session's own user's.

-- A rollout starts (rollout.start): one in flight per ladder. It starts in the stage the
-- ladder is at, entered when the audit says (stage_since stays unset until the runner moves it).
CREATE OR REPLACE FUNCTION flagctl.rollout_start(p_system text, p_ladder text, p_target text, p_origin text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- A rollout's state, as a runner or an operator moved it (rollout.*). Only a rollout in
-- flight changes; done, aborted and rolled back are final. The times are the runner's
-- clock: its bake and interval bookkeeping (a stage move's own checks read the audit).
CREATE OR REPLACE FUNCTION flagctl.rollout_update(p_id bigint, p_state text, p_stage text, p_stage_since timestamptz,
                                                  p_passes integer, p_failures integer, p_analysed_at timestamptz,
                                                  p_verdict text, p_next_at timestamptz, p_note text, p_request bigint)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- One analysis of a rollout's stage (rollout.*), dated by the runner's clock (as its
-- bookkeeping is: when the next analysis is due follows from it).
CREATE OR REPLACE FUNCTION flagctl.rollout_analysed(p_id bigint, p_stage text, p_verdict text, p_results jsonb,
                                                    p_at timestamptz)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- A runner is alive (its own row: the session's user and backend). Returns its id.
-- Any member who may move stages runs one; a heartbeat is not a change, so it is not audited.
CREATE OR REPLACE FUNCTION flagctl.runner_beat(p_system text, p_host text, p_pid integer, p_every interval)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
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

-- A runner that stops says so (its own row only).
CREATE OR REPLACE FUNCTION flagctl.runner_gone(p_id bigint) RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    DELETE FROM flagctl.runners WHERE id = p_id AND db_user = session_user;
$$;

REVOKE ALL ON FUNCTION flagctl.rollout_start(text, text, text, text),
    flagctl.rollout_update(bigint, text, text, timestamptz, integer, integer, timestamptz, text, timestamptz, text, bigint),
    flagctl.rollout_analysed(bigint, text, text, jsonb, timestamptz), flagctl.runner_beat(text, text, integer, interval),
    flagctl.runner_gone(bigint) FROM PUBLIC;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['flagctl_viewer', 'flagctl_operator'] LOOP
        IF to_regrole(r) IS NOT NULL THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION flagctl.rollout_start(text, text, text, text),
                flagctl.rollout_update(bigint, text, text, timestamptz, integer, integer, timestamptz, text, timestamptz, text, bigint),
                flagctl.rollout_analysed(bigint, text, text, jsonb, timestamptz), flagctl.runner_beat(text, text, integer, interval),
                flagctl.runner_gone(bigint) TO %I', r);
        END IF;
    END LOOP;
END
$$;
