-- flagctl schema, version 14: who may do what is enforced by PostgreSQL, and freezes.
--
-- Five roles (Groups rebuild §21), granted to database users with `flagctl db grant`:
--   flagctl_viewer    read flagctl's tables (status, audit log, drills)
--   flagctl_release   stage moves, set, profile apply, restore, rollback, drills of ladders
--   flagctl_security  kill and release (the emergency path), kill drills
--   flagctl_ops       freezes
--   flagctl_admin     all of the above, and granting them
-- Each is a member of flagctl_viewer. Table privileges say which tables a role may write;
-- a guard trigger on flagctl.flag_state also stops a security-only session from using its
-- write right for anything but a kill or a release — in psql as in flagctl. The schema's
-- owner and members of flagctl_operator (version 10) keep every right.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['flagctl_viewer', 'flagctl_release', 'flagctl_security', 'flagctl_ops',
                             'flagctl_admin'] LOOP
        IF to_regrole(r) IS NULL THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
EXCEPTION
    WHEN insufficient_privilege OR duplicate_object OR unique_violation THEN
        RAISE NOTICE 'flagctl roles not created (%): a DBA creates them, then runs db init again', SQLERRM;
END
$$;

-- Scoped freezes (Groups §21 "ops lead can request scoped freeze", §13 "freeze related
-- deployments"): while one is active, nothing may widen exposure at its scope.
CREATE TABLE flagctl.freeze (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system     text        NOT NULL,
    scope      text        NOT NULL DEFAULT 'global',
    until      timestamptz,                 -- NULL: until cleared
    reason     text        NOT NULL,
    actor      text,
    db_user    text        NOT NULL DEFAULT session_user,
    created_at timestamptz NOT NULL DEFAULT now(),
    cleared_at timestamptz,
    cleared_by text
);
CREATE INDEX freeze_active ON flagctl.freeze (system) WHERE cleared_at IS NULL;
CREATE TRIGGER flagctl_audit AFTER INSERT OR UPDATE OR DELETE ON flagctl.freeze
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();
REVOKE ALL ON flagctl.freeze FROM PUBLIC;

-- The freezes in force, read after waiting for any freeze being set or cleared (which holds
-- the same lock exclusively): a VOLATILE function takes a fresh snapshot for its query
-- after the lock, so a freeze committed a moment ago is seen. One statement for the caller.
CREATE FUNCTION flagctl.freezes_in_force(p_system text, p_now timestamptz DEFAULT NULL)
RETURNS SETOF flagctl.freeze
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('flagctl.freeze:' || p_system, 0));
    RETURN QUERY SELECT * FROM flagctl.freeze f
                  WHERE f.system = p_system AND f.cleared_at IS NULL
                    AND (f.until IS NULL OR f.until > coalesce(p_now, now()))
                  ORDER BY f.id;
END
$$;

-- Members of the writing roles are trusted to declare who acts and why (version 10).
CREATE OR REPLACE FUNCTION flagctl.trusted_session() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER')
        OR EXISTS (SELECT 1 FROM unnest(ARRAY['flagctl_operator', 'flagctl_release', 'flagctl_security',
                                              'flagctl_ops', 'flagctl_admin']) AS r(name)
                    WHERE to_regrole(r.name) IS NOT NULL AND pg_has_role(session_user, to_regrole(r.name), 'MEMBER'))
$$;

-- A security-only session writes flag values only to kill or to release.
CREATE FUNCTION flagctl.guard_flag_write() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    action text := coalesce(nullif(current_setting('flagctl.action', true), ''), 'sql.' || lower(TG_OP));
BEGIN
    IF pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER')
       OR coalesce(pg_has_role(session_user, to_regrole('flagctl_operator'), 'MEMBER'), false)
       OR coalesce(pg_has_role(session_user, to_regrole('flagctl_release'), 'MEMBER'), false) THEN
        RETURN coalesce(NEW, OLD);
    END IF;
    IF coalesce(pg_has_role(session_user, to_regrole('flagctl_security'), 'MEMBER'), false)
       AND action IN ('kill', 'release', 'drill.kill', 'drill.release') THEN
        RETURN coalesce(NEW, OLD);
    END IF;
    RAISE EXCEPTION 'flagctl: % may not change flag values (%): it needs the role flagctl_release', session_user, action
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'flagctl db grant release ' || session_user;
END
$$;
CREATE TRIGGER flagctl_guard BEFORE INSERT OR UPDATE OR DELETE ON flagctl.flag_state
    FOR EACH ROW EXECUTE FUNCTION flagctl.guard_flag_write();

DO $$
BEGIN
    IF to_regrole('flagctl_viewer') IS NULL THEN
        RETURN;
    END IF;
    GRANT USAGE ON SCHEMA flagctl TO flagctl_viewer;
    GRANT SELECT ON ALL TABLES IN SCHEMA flagctl TO flagctl_viewer;
    REVOKE SELECT ON flagctl.audit_unsealed FROM flagctl_viewer;
    GRANT EXECUTE ON FUNCTION flagctl.bucket(text, text), flagctl.hash_version() TO flagctl_viewer;
    GRANT EXECUTE ON FUNCTION flagctl.audit_seal(boolean, bigint) TO flagctl_viewer;  -- audit verify seals first

    GRANT flagctl_viewer TO flagctl_release, flagctl_security, flagctl_ops, flagctl_admin;
    -- Every writer records refusals, seals the trail, signs it and records its drills.
    GRANT EXECUTE ON FUNCTION flagctl.audit_event(text, text, text, text, jsonb)
        TO flagctl_release, flagctl_security, flagctl_ops;
    GRANT INSERT ON flagctl.audit_signature TO flagctl_release, flagctl_security, flagctl_ops;
    GRANT INSERT, UPDATE ON flagctl.drills TO flagctl_release, flagctl_security;

    GRANT INSERT, UPDATE, DELETE ON flagctl.flag_state, flagctl.exemption, flagctl.safe_point,
          flagctl.proof_baseline, flagctl.rollback_state TO flagctl_release;
    GRANT INSERT, UPDATE, DELETE ON flagctl.flag_state, flagctl.engaged_switch TO flagctl_security;
    GRANT INSERT, UPDATE ON flagctl.freeze TO flagctl_ops;

    GRANT flagctl_release, flagctl_security, flagctl_ops TO flagctl_admin WITH ADMIN OPTION;
    GRANT flagctl_viewer TO flagctl_admin WITH ADMIN OPTION;
    IF to_regrole('flagctl_operator') IS NOT NULL THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON flagctl.freeze TO flagctl_operator;
    END IF;
EXCEPTION
    WHEN insufficient_privilege OR undefined_object THEN
        RAISE NOTICE 'flagctl roles not granted (%): run db init as the roles'' creator', SQLERRM;
END
$$;
