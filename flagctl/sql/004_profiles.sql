-- flagctl schema, version 4: safe points, and per-flag audit rows for shared bound rows.

-- A state marked safe (an applied profile or a snapshot, with --mark-safe), to which
-- `flagctl rollback --to-last-safe` returns. `state` is {scope: {flag: value}}.
CREATE TABLE flagctl.safe_point (
    id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system  text        NOT NULL,
    name    text        NOT NULL,
    kind    text        NOT NULL CHECK (kind IN ('profile', 'snapshot')),
    state   jsonb       NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text,
    db_user text        NOT NULL DEFAULT session_user,
    reason  text
);
CREATE INDEX safe_point_system_idx ON flagctl.safe_point (system, id DESC);

-- The audit trigger, once more: several flags may be bound to one row of a table (each
-- to its own columns); a change writes one audit row per flag whose columns changed, so
-- every flag's history is complete. A change to none of them is still recorded, once.
CREATE OR REPLACE FUNCTION flagctl.audit_row() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    any_row jsonb := coalesce(new_row, old_row);
    v_systems text[];
    v_flags   text[];
    v_scope   text := 'global';
    v_key     jsonb;
    v_target  text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
    i integer;
BEGIN
    IF TG_OP = 'UPDATE' AND old_row = new_row THEN
        RETURN NULL;  -- nothing changed: nothing to record
    END IF;
    IF TG_TABLE_SCHEMA = 'flagctl' THEN
        v_systems := ARRAY[any_row->>'system'];
        v_flags := ARRAY[any_row->>'flag'];
        v_scope := coalesce(any_row->>'scope', 'global');
        IF TG_TABLE_NAME = 'flag_state' THEN
            old_row := old_row->'value';
            new_row := new_row->'value';
        ELSIF TG_TABLE_NAME = 'engaged_switch' THEN
            v_target := 'kill_switch:' || (any_row->>'switch');
        ELSIF TG_TABLE_NAME = 'exemption' THEN
            v_target := 'exemption:' || (any_row->>'scope');
        ELSIF TG_TABLE_NAME = 'safe_point' THEN
            v_target := 'safe_point:' || (any_row->>'name');
        END IF;
    ELSE
        SELECT jsonb_object_agg(k, any_row->k) INTO v_key FROM unnest(TG_ARGV) AS k;
        SELECT array_agg(b.system ORDER BY b.system, b.flag), array_agg(b.flag ORDER BY b.system, b.flag)
          INTO v_systems, v_flags
          FROM flagctl.binding b
         WHERE b.table_schema = TG_TABLE_SCHEMA AND b.table_name = TG_TABLE_NAME
           AND any_row @> b.key
           AND (TG_OP <> 'UPDATE' OR EXISTS (
                SELECT 1 FROM jsonb_each(b.columns) AS c
                 WHERE (old_row -> (c.value #>> '{}')) IS DISTINCT FROM (new_row -> (c.value #>> '{}'))));
        IF v_systems IS NULL THEN
            SELECT ARRAY[b.system], ARRAY[b.flag] INTO v_systems, v_flags
              FROM flagctl.binding b
             WHERE b.table_schema = TG_TABLE_SCHEMA AND b.table_name = TG_TABLE_NAME AND any_row @> b.key
             ORDER BY b.system, b.flag LIMIT 1;
        END IF;
        IF v_systems IS NULL THEN
            v_systems := ARRAY[NULL]::text[];
            v_flags := ARRAY[NULL]::text[];
        END IF;
    END IF;
    FOR i IN 1 .. array_length(v_systems, 1) LOOP
        INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, key,
                                   before, after, reason, command, forced)
        VALUES (nullif(current_setting('flagctl.actor', true), ''),
                coalesce(nullif(current_setting('flagctl.action', true), ''), 'sql.' || lower(TG_OP)),
                v_systems[i], v_flags[i], v_scope, v_target, v_key, old_row, new_row,
                nullif(current_setting('flagctl.reason', true), ''),
                nullif(current_setting('flagctl.command', true), ''),
                coalesce(nullif(current_setting('flagctl.forced', true), '')::boolean, false));
    END LOOP;
    RETURN NULL;
END
$$;

CREATE TRIGGER flagctl_audit AFTER INSERT OR UPDATE OR DELETE ON flagctl.safe_point
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();
