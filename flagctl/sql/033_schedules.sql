-- flagctl schema, version 33: scheduled changes.
--
-- A change recorded now and applied later (`flagctl schedule add stage p3 canary --at …`):
-- the runner (`flagctl run`) applies it at its time through the same action a person runs,
-- so freezes, approvals, kills and roles hold it; if the flags it touches no longer hold the
-- values it was planned on, it is refused and reported, never applied blind. Audited as
-- scheduled (who, why, when for) and as settled (who applied, refused or cancelled it).
-- Written only through flagctl's functions (routines/99_schedules.sql).
CREATE TABLE flagctl.schedule (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system       text        NOT NULL,
    kind         text        NOT NULL,  -- the action it applies: stage.set, set, kill, release, freeze.set, profile.apply
    spec         jsonb       NOT NULL,  -- how to build that action again
    summary      text        NOT NULL,
    planned_on   jsonb       NOT NULL,  -- the values of the flags it touches, as they were: {flag: {scope: value}}
    at           timestamptz NOT NULL,  -- when it applies
    state        text        NOT NULL DEFAULT 'pending'
                             CHECK (state IN ('pending', 'applied', 'refused', 'cancelled')),
    scheduled_by text        NOT NULL,  -- the declared actor
    db_user      text        NOT NULL DEFAULT session_user,
    reason       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    settled_at   timestamptz,
    settled_by   text,                  -- the runner's actor, or who cancelled it
    outcome      text                   -- what happened, in words
);
CREATE INDEX schedule_due ON flagctl.schedule (system, at) WHERE state = 'pending';

CREATE TRIGGER flagctl_audit AFTER INSERT OR UPDATE OR DELETE ON flagctl.schedule
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();

REVOKE ALL ON flagctl.schedule FROM PUBLIC;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['flagctl_viewer', 'flagctl_operator'] LOOP
        IF to_regrole(r) IS NOT NULL THEN
            EXECUTE format('GRANT SELECT ON flagctl.schedule TO %I', r);
        END IF;
    END LOOP;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'the schedule table''s grants not given (%)', SQLERRM;
END
$$;
