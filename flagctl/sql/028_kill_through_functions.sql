-- flagctl schema, version 28: the security role writes flags only through flagctl.kill and
-- flagctl.release.
--
-- A security member held INSERT, UPDATE and DELETE on flagctl.flag_state and
-- flagctl.engaged_switch, and UPDATE on every bound application table. The guard triggers
-- judged each of its writes, but the privilege itself said more than the role means ("kill
-- and release only"). Since the CLI's kill and release are the database's own functions
-- (SECURITY DEFINER, routines/90_kill.sql), which write the switch's published settings and
-- record the engagement, and flagctl.kill_hold takes a kill's locks for flagctl's plan, the
-- role needs none of it: it keeps SELECT (through flagctl_viewer) and loses every write.
-- The functions run as flagctl's owner, which must be able to update the bound tables: it is
-- granted SELECT, UPDATE on them where the running user may grant it.

DO $$
DECLARE
    t record;
    owner regrole := (SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'flagctl');
BEGIN
    IF to_regrole('flagctl_security') IS NULL THEN
        RETURN;
    END IF;
    REVOKE INSERT, UPDATE, DELETE ON flagctl.flag_state, flagctl.engaged_switch FROM flagctl_security;
    FOR t IN SELECT DISTINCT b.table_schema, b.table_name FROM flagctl.binding b
              WHERE to_regclass(format('%I.%I', b.table_schema, b.table_name)) IS NOT NULL LOOP
        BEGIN
            EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %I.%I FROM flagctl_security', t.table_schema, t.table_name);
            EXECUTE format('GRANT SELECT, UPDATE ON %I.%I TO %s', t.table_schema, t.table_name, owner);
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'grants on %.% not changed (%): its owner revokes UPDATE from flagctl_security and grants SELECT, UPDATE to %',
                    t.table_schema, t.table_name, SQLERRM, owner;
        END;
    END LOOP;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'the security role''s writes not revoked (%)', SQLERRM;
END
$$;
