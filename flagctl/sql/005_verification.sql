-- flagctl schema, version 5: proof baselines and the rollback state machine.

-- Mutation rates outside the phase's tables, measured while the phase was dark: what the
-- isolation proof compares an active window against.
CREATE TABLE flagctl.proof_baseline (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system         text        NOT NULL,
    measured_at    timestamptz NOT NULL DEFAULT now(),
    window_seconds numeric     NOT NULL,
    rates          jsonb       NOT NULL  -- {schema.table: rows per second}
);

-- The recommender's six-state rollback machine, one row per system:
-- NORMAL → DEGRADED → ROLLBACK_PENDING → ROLLED_BACK → RECOVERY_VERIFY → NORMAL,
-- with a manual override back to NORMAL. Every transition is audited by the trigger.
CREATE TABLE flagctl.rollback_state (
    system      text        PRIMARY KEY,
    state       text        NOT NULL CHECK (state IN ('NORMAL', 'DEGRADED', 'ROLLBACK_PENDING',
                                                      'ROLLED_BACK', 'RECOVERY_VERIFY')),
    since       timestamptz NOT NULL,
    green_since timestamptz,
    detail      jsonb       NOT NULL DEFAULT '{}'
);

CREATE TRIGGER flagctl_audit AFTER INSERT OR UPDATE OR DELETE ON flagctl.rollback_state
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();
