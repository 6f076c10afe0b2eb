-- flagctl schema, version 24: the audit rows left unsealed are counted, for everyone to see.
--
-- A writer's at-commit seal never waits: when another session holds the seal (a sealer at
-- work, or a session sitting in an open transaction that called flagctl.audit_seal), the
-- writer leaves its rows in flagctl.audit_unsealed for the next sealer. Until now that was
-- silent. audit_backlog() says how many committed rows wait to be sealed, and since when; a
-- viewer (who may not read audit_unsealed itself) may ask. `db status`, `audit verify` (when
-- it cannot seal within --lock-timeout) and `audit verify`'s report (how many it sealed) show it.
CREATE FUNCTION flagctl.audit_backlog() RETURNS TABLE (rows bigint, oldest timestamptz)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    SELECT count(*), min(a.at)
      FROM flagctl.audit_unsealed u JOIN flagctl.audit a ON a.seq = u.seq
$$;

REVOKE ALL ON FUNCTION flagctl.audit_backlog() FROM PUBLIC;
DO $$
BEGIN
    IF to_regrole('flagctl_viewer') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION flagctl.audit_backlog()
            TO flagctl_viewer, flagctl_release, flagctl_security, flagctl_ops, flagctl_admin;
    END IF;
    IF to_regrole('flagctl_operator') IS NOT NULL THEN
        GRANT EXECUTE ON FUNCTION flagctl.audit_backlog() TO flagctl_operator;
    END IF;
EXCEPTION
    WHEN insufficient_privilege OR undefined_object THEN
        RAISE NOTICE 'grants on the audit backlog not given (%)', SQLERRM;
END
$$;
