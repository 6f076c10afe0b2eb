-- flagctl's records beside the flag values — safe points, the rollback machine's state,
-- reviews, drills, exemptions, freezes, audit signatures, proof baselines, the base beneath
-- a kill — are written only through these functions (schema 30: flagctl's roles hold no
-- INSERT, UPDATE or DELETE on those tables). Each runs as flagctl's owner and takes who
-- acts from the change this transaction declared (begin_change checked the role for it) or
-- from the session's own user, never from the caller's arguments or session settings; the
-- tables' guard triggers still judge each row.

-- The declared change, refused unless its action is one of p_actions (a prefix ending in
-- '.' or '*' matches a family: 'drill.' matches drill.kill).
CREATE OR REPLACE FUNCTION flagctl.record_declared(p_what text, p_actions text[]) RETURNS flagctl.change_context
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    ctx flagctl.change_context := flagctl.write_declared(p_what);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM unnest(p_actions) AS a
                    WHERE ctx.action = a OR (right(a, 1) IN ('.', '*') AND starts_with(ctx.action, rtrim(a, '*')))) THEN
        RAISE EXCEPTION 'flagctl: % is not part of a % (this change is declared as %)', p_what,
            array_to_string(p_actions, ' or '), ctx.action
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN ctx;
END
$$;

-- A safe point (profile apply --mark-safe, profile snapshot): who and why as declared.
CREATE OR REPLACE FUNCTION flagctl.record_safe_point(p_system text, p_name text, p_kind text, p_state jsonb)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('a safe point', ARRAY['profile.', 'snapshot:*', 'rollback.']);
BEGIN
    INSERT INTO flagctl.safe_point (system, name, kind, state, actor, reason)
    VALUES (p_system, p_name, p_kind, p_state, ctx.actor, ctx.reason);
END
$$;

-- The rollback machine's state (flagctl watch); never dated in the future.
CREATE OR REPLACE FUNCTION flagctl.store_rollback_state(p_system text, p_state text, p_since timestamptz,
                                                        p_green_since timestamptz, p_detail jsonb) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    PERFORM flagctl.record_declared('the rollback machine''s state', ARRAY['rollback.']);
    INSERT INTO flagctl.rollback_state (system, state, since, green_since, detail)
    VALUES (p_system, p_state, least(p_since, now()), least(p_green_since, now()), coalesce(p_detail, '{}'))
        ON CONFLICT (system) DO UPDATE SET state = excluded.state, since = excluded.since,
           green_since = excluded.green_since, detail = excluded.detail;
END
$$;

-- A post-action review of an audit row: reviewed by the session's own user, the actor as
-- declared.
CREATE OR REPLACE FUNCTION flagctl.record_review(p_audit_seq bigint, p_system text, p_note text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('a review', ARRAY['review']);
BEGIN
    INSERT INTO flagctl.reviews (audit_seq, system, reviewed_by, actor, note)
    VALUES (p_audit_seq, p_system, session_user, ctx.actor, p_note);
END
$$;

-- A drill starts (its own transaction, before its steps): run by the session's own user,
-- who must hold the role its changes need (a kill drill: security; a rollback drill:
-- release).
CREATE OR REPLACE FUNCTION flagctl.drill_start(p_system text, p_kind text, p_subject text, p_scope text,
                                               p_actor text, p_reason text)
RETURNS TABLE(id bigint, started_at timestamptz)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
#variable_conflict use_column
BEGIN
    IF NOT flagctl.may(CASE WHEN p_kind = 'kill' THEN 'drill.kill' ELSE 'drill.stage' END) THEN
        RAISE EXCEPTION 'flagctl: % may not run a % drill: it needs the role %', session_user, p_kind,
            flagctl.role_for(CASE WHEN p_kind = 'kill' THEN 'drill.kill' ELSE 'drill.stage' END)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF nullif(btrim(coalesce(p_reason, '')), '') IS NULL THEN
        RAISE EXCEPTION 'flagctl: a drill needs a reason' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY INSERT INTO flagctl.drills AS d (system, kind, subject, scope, db_user, actor, reason)
                 VALUES (p_system, p_kind, p_subject, coalesce(p_scope, 'global'), session_user,
                         coalesce(p_actor, session_user), p_reason)
                 RETURNING d.id, d.started_at;
END
$$;

-- A running drill ends, with its verdict: only by the user who started it, only once; a
-- drill that passed declared its changes (drill.* changes by that user since it started,
-- each declared through begin_change, which checked the role; a step with nothing to
-- change still declares), so a "passed" with no drill step at all is refused.
CREATE OR REPLACE FUNCTION flagctl.drill_finish(p_id bigint, p_verdict text, p_steps jsonb, p_restored boolean,
                                                p_report text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    IF p_verdict = 'passed' AND NOT EXISTS (
        SELECT 1 FROM flagctl.drills d JOIN flagctl.change_context c
            ON c.action LIKE 'drill.%' AND c.db_user = session_user AND c.begun_at >= d.started_at
         WHERE d.id = p_id) THEN
        RAISE EXCEPTION 'flagctl: drill % ran no drill step: it cannot have passed', p_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE flagctl.drills SET finished_at = now(), verdict = p_verdict, steps = p_steps, restored = p_restored,
           report = p_report
     WHERE id = p_id AND db_user = session_user AND finished_at IS NULL;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flagctl: drill % is not a running drill of %', p_id, session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END
$$;

-- An exemption set (p_effect allow or deny) or removed (p_effect NULL), as declared
-- (`exempt`; the guard trigger takes who acts from the declaration).
CREATE OR REPLACE FUNCTION flagctl.record_exemption(p_system text, p_flag text, p_scope text, p_effect text,
                                                    p_note text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('an exemption', ARRAY['exempt']);
BEGIN
    IF p_effect IS NULL THEN
        DELETE FROM flagctl.exemption WHERE system = p_system AND flag = p_flag AND scope = p_scope;
        RETURN;
    END IF;
    INSERT INTO flagctl.exemption (system, flag, scope, effect, note, actor)
    VALUES (p_system, p_flag, p_scope, p_effect, p_note, ctx.actor)
        ON CONFLICT (system, flag, scope) DO UPDATE SET effect = excluded.effect, note = excluded.note,
           actor = excluded.actor, created_at = now();
END
$$;

-- A freeze set, as declared (freeze.set): why and who from the declaration (scope NULL: global).
CREATE OR REPLACE FUNCTION flagctl.freeze_add(p_system text, p_scope text, p_until timestamptz) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('a freeze', ARRAY['freeze.set']);
BEGIN
    INSERT INTO flagctl.freeze (system, scope, until, reason, actor)
    VALUES (p_system, coalesce(p_scope, 'global'), p_until, ctx.reason, ctx.actor);
END
$$;

-- Freezes cleared, as declared (freeze.clear): by whom from the declaration.
CREATE OR REPLACE FUNCTION flagctl.freeze_clear(p_ids bigint[]) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    ctx flagctl.change_context := flagctl.record_declared('clearing a freeze', ARRAY['freeze.clear']);
BEGIN
    UPDATE flagctl.freeze SET cleared_at = now(), cleared_by = ctx.actor WHERE id = ANY(p_ids) AND cleared_at IS NULL;
END
$$;

-- A signature of the audit chain's head, by a member who may change something (a viewer
-- only reads: a junk signature would take the seal's place): only of a seal that exists,
-- with the hash it holds (one made for a position not sealed yet would block the real one).
CREATE OR REPLACE FUNCTION flagctl.audit_sign(p_pos bigint, p_hash text, p_mac text, p_key_id text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    IF NOT (flagctl.may('set') OR flagctl.may('kill') OR flagctl.may('freeze.set')) THEN
        RAISE EXCEPTION 'flagctl: % may not sign the audit trail: only a role that changes flags signs it', session_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM flagctl.audit_seal s WHERE s.pos = p_pos AND s.hash = p_hash) THEN
        RAISE EXCEPTION 'flagctl: no seal % with hash %: only a sealed head is signed', p_pos, p_hash
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO flagctl.audit_signature (pos, hash, mac, key_id) VALUES (p_pos, p_hash, p_mac, p_key_id)
        ON CONFLICT (pos) DO NOTHING;
END
$$;

-- The write rates a kill's proof compares with (verify kill --baseline), measured by a
-- member who may release.
CREATE OR REPLACE FUNCTION flagctl.record_baseline(p_system text, p_window_seconds numeric, p_rates jsonb) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    IF NOT flagctl.may('verify.baseline') THEN
        RAISE EXCEPTION 'flagctl: % may not record a proof baseline: it needs the role flagctl_release', session_user
            USING ERRCODE = 'insufficient_privilege', HINT = 'flagctl db grant release ' || session_user;
    END IF;
    INSERT INTO flagctl.proof_baseline (system, window_seconds, rates) VALUES (p_system, p_window_seconds, p_rates);
END
$$;

-- A backward stage move beneath a kill engaged globally: the new base (prior) and what the
-- switch leaves over it (applied); the guard allows only a narrower one.
CREATE OR REPLACE FUNCTION flagctl.move_base(p_system text, p_switch text, p_prior jsonb, p_applied jsonb) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    PERFORM flagctl.write_declared('flagctl.move_base moves the base beneath a kill');
    UPDATE flagctl.engaged_switch SET prior = p_prior, applied = p_applied
     WHERE system = p_system AND switch = p_switch AND scope = 'global';
END
$$;

REVOKE ALL ON FUNCTION flagctl.record_declared(text, text[]), flagctl.record_safe_point(text, text, text, jsonb),
    flagctl.store_rollback_state(text, text, timestamptz, timestamptz, jsonb),
    flagctl.record_review(bigint, text, text), flagctl.drill_start(text, text, text, text, text, text),
    flagctl.drill_finish(bigint, text, jsonb, boolean, text),
    flagctl.record_exemption(text, text, text, text, text), flagctl.freeze_add(text, text, timestamptz),
    flagctl.freeze_clear(bigint[]), flagctl.audit_sign(bigint, text, text, text),
    flagctl.record_baseline(text, numeric, jsonb), flagctl.move_base(text, text, jsonb, jsonb) FROM PUBLIC;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['flagctl_viewer', 'flagctl_operator'] LOOP
        IF to_regrole(r) IS NOT NULL THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION flagctl.record_safe_point(text, text, text, jsonb),
                flagctl.store_rollback_state(text, text, timestamptz, timestamptz, jsonb),
                flagctl.record_review(bigint, text, text), flagctl.drill_start(text, text, text, text, text, text),
                flagctl.drill_finish(bigint, text, jsonb, boolean, text),
                flagctl.record_exemption(text, text, text, text, text), flagctl.freeze_add(text, text, timestamptz),
                flagctl.freeze_clear(bigint[]), flagctl.audit_sign(bigint, text, text, text),
                flagctl.record_baseline(text, numeric, jsonb), flagctl.move_base(text, text, jsonb, jsonb) TO %I', r);
        END IF;
    END LOOP;
END
$$;
