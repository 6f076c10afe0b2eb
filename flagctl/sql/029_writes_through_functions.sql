-- flagctl schema, version 29: the release role writes flag values only through flagctl's
-- functions.
--
-- A release member held INSERT, UPDATE and DELETE on flagctl.flag_state and UPDATE on every
-- bound application table. The guard judged each flag value it wrote, but by hand the role
-- could still write any column of a bound table's rows (not only a flag's value columns),
-- or any row of it. flagctl's stage moves, sets, profiles, restores and rollbacks now lock
-- and write through flagctl.hold_flags, flagctl.write_own and flagctl.write_bound
-- (routines/95_writes.sql: SECURITY DEFINER, only inside a declared change, only a flag's
-- registered row and value columns), so the role keeps SELECT and loses every write on
-- these tables. Admins hold the release role: the same for them.

DO $$
DECLARE
    t record;
BEGIN
    IF to_regrole('flagctl_release') IS NULL THEN
        RETURN;
    END IF;
    REVOKE INSERT, UPDATE, DELETE ON flagctl.flag_state FROM flagctl_release;
    FOR t IN SELECT DISTINCT b.table_schema, b.table_name FROM flagctl.binding b
              WHERE to_regclass(format('%I.%I', b.table_schema, b.table_name)) IS NOT NULL LOOP
        BEGIN
            EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON %I.%I FROM flagctl_release', t.table_schema, t.table_name);
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'grants on %.% not changed (%): its owner revokes UPDATE from flagctl_release',
                    t.table_schema, t.table_name, SQLERRM;
        END;
    END LOOP;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'the release role''s writes not revoked (%)', SQLERRM;
END
$$;
