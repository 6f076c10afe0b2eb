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

-- The audit trigger learns the exemption table: the row is about a flag and a scope.
CREATE OR REPLACE FUNCTION flagctl.audit_row() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    any_row jsonb := coalesce(new_row, old_row);
    v_system text;
    v_flag   text;
    v_scope  text;
    v_key    jsonb;
    v_target text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
BEGIN
    IF TG_OP = 'UPDATE' AND old_row = new_row THEN
        RETURN NULL;  -- nothing changed: nothing to record
    END IF;
    IF TG_TABLE_SCHEMA = 'flagctl' AND TG_TABLE_NAME = 'flag_state' THEN
        v_system := any_row->>'system';
        v_flag := any_row->>'flag';
        v_scope := any_row->>'scope';
        old_row := old_row->'value';
        new_row := new_row->'value';
    ELSIF TG_TABLE_SCHEMA = 'flagctl' AND TG_TABLE_NAME = 'engaged_switch' THEN
        v_system := any_row->>'system';
        v_scope := any_row->>'scope';
        v_target := 'kill_switch:' || (any_row->>'switch');
    ELSIF TG_TABLE_SCHEMA = 'flagctl' AND TG_TABLE_NAME = 'exemption' THEN
        v_system := any_row->>'system';
        v_flag := any_row->>'flag';
        v_scope := any_row->>'scope';
        v_target := 'exemption:' || (any_row->>'scope');
    ELSE
        SELECT jsonb_object_agg(k, any_row->k) INTO v_key FROM unnest(TG_ARGV) AS k;
        SELECT b.system, b.flag INTO v_system, v_flag
          FROM flagctl.binding b
         WHERE b.table_schema = TG_TABLE_SCHEMA AND b.table_name = TG_TABLE_NAME
           AND any_row @> b.key
         ORDER BY b.system, b.flag
         LIMIT 1;
        v_scope := 'global';
    END IF;
    INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, key,
                               before, after, reason, command, forced)
    VALUES (nullif(current_setting('flagctl.actor', true), ''),
            coalesce(nullif(current_setting('flagctl.action', true), ''), 'sql.' || lower(TG_OP)),
            v_system, v_flag, v_scope, v_target, v_key, old_row, new_row,
            nullif(current_setting('flagctl.reason', true), ''),
            nullif(current_setting('flagctl.command', true), ''),
            coalesce(nullif(current_setting('flagctl.forced', true), '')::boolean, false));
    RETURN NULL;
END
$$;
