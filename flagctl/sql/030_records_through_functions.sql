-- flagctl schema, version 30: flagctl's records are written only through its functions.
--
-- The writing roles still held INSERT (and UPDATE, DELETE) on the tables beside the flag
-- values, and several statements took who acted from a session setting
-- (current_setting('flagctl.actor')) or from a column the caller could fill in:
--   - reviews: a member could insert a post-action review with reviewed_by = anyone;
--   - drills: a member could insert a finished, passed drill it never ran, under any db_user;
--   - safe_point, rollback_state, proof_baseline: any row, any actor, any time;
--   - audit_signature: a row for a position not sealed yet, which blocked the real signature;
--   - exemption, freeze, engaged_switch (prior, applied): guarded (schemas 22, 27), but
--     still written by hand.
-- Now each is written by a SECURITY DEFINER function (routines/96_records.sql) that takes who
-- acts from the declared change or the session's own user, and the roles keep SELECT only.
-- flagctl_operator, the role "that may do everything", keeps its grants.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['flagctl_release', 'flagctl_security', 'flagctl_ops'] LOOP
        IF to_regrole(r) IS NOT NULL THEN
            EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON flagctl.reviews, flagctl.drills, flagctl.safe_point,
                            flagctl.rollback_state, flagctl.proof_baseline, flagctl.audit_signature, flagctl.exemption,
                            flagctl.freeze, flagctl.engaged_switch FROM %I', r);
            EXECUTE format('REVOKE UPDATE (prior, applied) ON flagctl.engaged_switch FROM %I', r);
        END IF;
    END LOOP;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'the roles'' writes on flagctl''s records not revoked (%)', SQLERRM;
END
$$;
