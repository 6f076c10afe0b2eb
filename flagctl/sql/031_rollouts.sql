-- flagctl schema, version 31: rollouts that run themselves.
--
-- A rollout walks one ladder towards a target stage: a runner (`flagctl run`) analyses the
-- current stage with its guardrails, advances once the bake is over and enough
-- consecutive analyses passed, pauses on an inconclusive one, and rolls the ladder back to
-- where the rollout started when the failures reach the ladder's limit. Its state is a row
-- here (audited by the trigger, so every decision is in the trail); each analysis is a row
-- of rollout_analysis; each runner says it is alive in flagctl.runners. All three are
-- written only through flagctl's functions (routines/98_rollouts.sql).
CREATE TABLE flagctl.rollout (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system      text        NOT NULL,
    ladder      text        NOT NULL,
    target      text        NOT NULL,  -- the stage it runs to
    origin      text,                  -- the stage it started from: where a rollback returns
    state       text        NOT NULL CHECK (state IN ('running', 'paused', 'done', 'aborted', 'rolled_back')),
    stage       text,                  -- the stage the counts below are about
    stage_since timestamptz,
    passes      integer     NOT NULL DEFAULT 0 CHECK (passes >= 0),   -- consecutive passed analyses
    failures    integer     NOT NULL DEFAULT 0 CHECK (failures >= 0), -- failed analyses in this stage
    analysed_at timestamptz,
    verdict     text        CHECK (verdict IN ('pass', 'fail', 'inconclusive')),  -- of the last analysis
    next_at     timestamptz,           -- when the runner looks again
    note        text,                  -- what it did or waits for, in words
    request     bigint,                -- a pending approval the next move waits for
    started_by  text        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- One rollout in flight per ladder.
CREATE UNIQUE INDEX rollout_in_flight ON flagctl.rollout (system, ladder) WHERE state IN ('running', 'paused');

CREATE TRIGGER flagctl_audit AFTER INSERT OR UPDATE OR DELETE ON flagctl.rollout
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();

CREATE TABLE flagctl.rollout_analysis (
    id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rollout bigint      NOT NULL REFERENCES flagctl.rollout (id),
    stage   text        NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    verdict text        NOT NULL CHECK (verdict IN ('pass', 'fail', 'inconclusive')),
    results jsonb       NOT NULL  -- every guardrail's result: verdict, value, samples, bound
);
CREATE INDEX rollout_analysis_by_rollout ON flagctl.rollout_analysis (rollout, id);

-- Runners (`flagctl run`): who runs where, and when each was last seen. A runner whose
-- seen_at is older than a few of its intervals is reported as gone, not assumed alive.
CREATE TABLE flagctl.runners (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system     text        NOT NULL,
    host       text        NOT NULL,
    pid        integer     NOT NULL,
    db_user    text        NOT NULL DEFAULT session_user,
    backend    integer     NOT NULL DEFAULT pg_backend_pid(),  -- its session: one row per runner
    every      interval    NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX runners_by_system ON flagctl.runners (system, seen_at);

REVOKE ALL ON flagctl.rollout, flagctl.rollout_analysis, flagctl.runners FROM PUBLIC;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['flagctl_viewer', 'flagctl_operator'] LOOP
        IF to_regrole(r) IS NOT NULL THEN
            EXECUTE format('GRANT SELECT ON flagctl.rollout, flagctl.rollout_analysis, flagctl.runners TO %I', r);
        END IF;
    END LOOP;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'the rollout tables'' grants not given (%)', SQLERRM;
END
$$;
