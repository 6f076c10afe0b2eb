-- flagctl schema, version 3: leveled, scoped kill switches and exemptions.

-- What each engaged switch itself sets, per flag (its own settings, includes expanded).
-- With `prior` (the value before any kill held the flag) this gives every flag's value
-- from the switches still engaged, so releasing one never undoes another.
ALTER TABLE flagctl.engaged_switch ADD COLUMN settings jsonb NOT NULL DEFAULT '{}';

-- Per-scope allow / deny exemptions for a flag (e.g. publisher:42).
-- Precedence in evaluation: kill > stage off > deny > allow > internal audience > bucket.
CREATE TABLE flagctl.exemption (
    system     text        NOT NULL,
    flag       text        NOT NULL,
    scope      text        NOT NULL CHECK (scope ~ '^[a-z][a-z0-9_-]*:.+$'),
    effect     text        NOT NULL CHECK (effect IN ('allow', 'deny')),
    note       text,
    created_at timestamptz NOT NULL DEFAULT now(),
    actor      text,
    PRIMARY KEY (system, flag, scope)
);

CREATE TRIGGER flagctl_audit AFTER INSERT OR UPDATE OR DELETE ON flagctl.exemption
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();
-- (The audit trigger function that describes exemption rows comes with version 4.)
