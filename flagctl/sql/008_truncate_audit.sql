-- flagctl schema, version 8: a TRUNCATE leaves a trace too.
--
-- Row triggers do not fire on TRUNCATE, so an owner's TRUNCATE of a bound table (or of
-- flagctl.flag_state) changed flags without an audit row. A statement trigger now records
-- one row per flag the table holds, with no after-image (action sql.truncate). `db init`
-- installs it on every bound table; the drift check then shows the values it removed.
CREATE FUNCTION flagctl.audit_truncate() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, reason, command)
    SELECT nullif(current_setting('flagctl.actor', true), ''),
           coalesce(nullif(current_setting('flagctl.action', true), ''), 'sql.truncate'),
           f.system, f.flag, 'global', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
           nullif(current_setting('flagctl.reason', true), ''),
           nullif(current_setting('flagctl.command', true), '')
      FROM (SELECT b.system, b.flag FROM flagctl.binding b
             WHERE b.table_schema = TG_TABLE_SCHEMA AND b.table_name = TG_TABLE_NAME
            UNION ALL
            SELECT NULL, NULL WHERE TG_TABLE_SCHEMA = 'flagctl') AS f;
    RETURN NULL;
END
$$;

CREATE TRIGGER flagctl_audit_truncate AFTER TRUNCATE ON flagctl.flag_state
    FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_truncate();
REVOKE EXECUTE ON FUNCTION flagctl.audit_truncate() FROM PUBLIC;
