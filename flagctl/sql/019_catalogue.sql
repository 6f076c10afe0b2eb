-- flagctl schema, version 19: the catalogue in the database.
--
-- `flagctl manifest publish` (and `db init`) stores the validated manifest here: its exact
-- text, its SHA-256, and the catalogue the database's own checks read (flags and their
-- types, where they live, kill switches and their settings, the approval policy), one
-- version after another. The newest version of a system is the published one: gates read
-- it (no manifest file to ship to every application), kills and releases act on it, and a
-- CLI whose local file differs refuses any other change. A publish is audited as
-- manifest.publish and reaches gates through the same NOTIFY as a flag change.

CREATE TABLE flagctl.catalogue (
    system       text        NOT NULL,
    version      integer     NOT NULL CHECK (version > 0),
    sha256       text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    source       text        NOT NULL,
    catalogue    jsonb       NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    published_by text        NOT NULL DEFAULT session_user,
    actor        text,
    reason       text,
    PRIMARY KEY (system, version)
);
CREATE TRIGGER flagctl_append_only BEFORE UPDATE OR DELETE ON flagctl.catalogue
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_append_only();
CREATE TRIGGER flagctl_no_truncate BEFORE TRUNCATE ON flagctl.catalogue
    FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_append_only();
REVOKE ALL ON flagctl.catalogue FROM PUBLIC;

-- The published catalogue of a system: its newest version.
CREATE FUNCTION flagctl.published(p_system text) RETURNS flagctl.catalogue
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    SELECT * FROM flagctl.catalogue c WHERE c.system = p_system ORDER BY c.version DESC LIMIT 1
$$;

-- Publish a manifest (release and admin members, the owner, flagctl_operator). The text's
-- SHA-256 is computed here, not taken from the caller. Publishing the text already
-- published is nothing to do (returns its version, new = false).
CREATE FUNCTION flagctl.publish_manifest(p_system text, p_source text, p_catalogue jsonb, p_actor text,
                                         p_reason text, p_command text)
RETURNS TABLE (version integer, sha256 text, new boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    current flagctl.catalogue := flagctl.published(p_system);
    digest text := encode(sha256(convert_to(p_source, 'UTF8')), 'hex');
    next_version integer;
BEGIN
    IF NOT flagctl.may('manifest.publish') THEN
        RAISE EXCEPTION 'flagctl: % may not publish a manifest: it needs the role flagctl_release', session_user
            USING ERRCODE = 'insufficient_privilege', HINT = 'flagctl db grant release ' || session_user;
    END IF;
    IF p_catalogue->>'system' IS DISTINCT FROM p_system THEN
        RAISE EXCEPTION 'flagctl: the catalogue is for system %, not %', p_catalogue->>'system', p_system
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('flagctl.catalogue:' || p_system, 0));
    current := flagctl.published(p_system);
    IF current.sha256 = digest THEN
        RETURN QUERY SELECT current.version, current.sha256, false;
        RETURN;
    END IF;
    next_version := coalesce(current.version, 0) + 1;
    INSERT INTO flagctl.change_context (txid, action, actor, reason, command, db_user)
    VALUES (txid_current(), 'manifest.publish', nullif(p_actor, ''), nullif(p_reason, ''), nullif(p_command, ''),
            session_user)
    ON CONFLICT (txid) DO UPDATE
       SET action = excluded.action, actor = excluded.actor, reason = excluded.reason, command = excluded.command;
    INSERT INTO flagctl.catalogue (system, version, sha256, source, catalogue, actor, reason)
    VALUES (p_system, next_version, digest, p_source, p_catalogue, nullif(p_actor, ''), nullif(p_reason, ''));
    INSERT INTO flagctl.audit (action, system, scope, target, before, after)
    VALUES ('manifest.publish', p_system, 'global', 'manifest:' || p_system,
            CASE WHEN current.version IS NOT NULL
                 THEN jsonb_build_object('version', current.version, 'sha256', current.sha256) END,
            jsonb_build_object('version', next_version, 'sha256', digest));
    RETURN QUERY SELECT next_version, digest, true;
END
$$;

-- A change is declared with the caller's manifest text too: the answer says which catalogue
-- version is published and whether that text is the one published (NULL: nothing is
-- published, or no text given), in the same statement.
DROP FUNCTION flagctl.begin_change(text, text, text, text, text);
CREATE FUNCTION flagctl.begin_change(p_action text, p_actor text, p_reason text, p_command text,
                                     p_request_id text, p_system text DEFAULT NULL, p_source text DEFAULT NULL)
RETURNS TABLE (txid bigint, published integer, same boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    needed text := flagctl.role_for(p_action);
    cat flagctl.catalogue;
BEGIN
    IF p_action IS NULL OR p_action !~ '^[a-z][a-z0-9_.:-]*$' OR p_action LIKE 'sql.%' THEN
        RAISE EXCEPTION 'flagctl: % is not an action flagctl records', coalesce(p_action, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_action IN ('approve', 'approve.refused', 'manifest.publish') THEN
        RAISE EXCEPTION 'flagctl: % is recorded only by flagctl''s own function for it', p_action
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT flagctl.may(p_action) THEN
        RAISE EXCEPTION 'flagctl: % may not %: it needs the role %', session_user, p_action, needed
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('flagctl db grant %s %s', substr(needed, 9), session_user);
    END IF;
    INSERT INTO flagctl.change_context (txid, action, actor, reason, command, request_id, db_user)
    VALUES (txid_current(), p_action, nullif(p_actor, ''), nullif(p_reason, ''), nullif(p_command, ''),
            nullif(p_request_id, ''), session_user)
    ON CONFLICT ON CONSTRAINT change_context_pkey DO UPDATE
       SET action = excluded.action, actor = excluded.actor, reason = excluded.reason,
           command = excluded.command, request_id = excluded.request_id, forced = false;
    -- The same, readable by the statements that record who set a freeze or an exemption.
    PERFORM set_config('flagctl.actor', coalesce(p_actor, ''), true),
            set_config('flagctl.reason', coalesce(p_reason, ''), true),
            set_config('flagctl.action', p_action, true),
            set_config('flagctl.command', coalesce(p_command, ''), true),
            set_config('flagctl.request_id', coalesce(p_request_id, ''), true);
    cat := flagctl.published(p_system);
    RETURN QUERY SELECT txid_current(), cat.version, cat.source = p_source;
END
$$;

REVOKE ALL ON FUNCTION flagctl.begin_change(text, text, text, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION flagctl.published(text),
    flagctl.publish_manifest(text, text, jsonb, text, text, text) FROM PUBLIC;
DO $$
BEGIN
    IF to_regrole('flagctl_viewer') IS NOT NULL THEN
        GRANT SELECT ON flagctl.catalogue TO flagctl_viewer;
        GRANT EXECUTE ON FUNCTION flagctl.published(text) TO flagctl_viewer;
        GRANT EXECUTE ON FUNCTION flagctl.publish_manifest(text, text, jsonb, text, text, text)
            TO flagctl_release, flagctl_admin;
        GRANT EXECUTE ON FUNCTION flagctl.begin_change(text, text, text, text, text, text, text)
            TO flagctl_release, flagctl_security, flagctl_ops, flagctl_admin;
    END IF;
    IF to_regrole('flagctl_operator') IS NOT NULL THEN
        GRANT SELECT ON flagctl.catalogue TO flagctl_operator;
        GRANT EXECUTE ON FUNCTION flagctl.published(text),
              flagctl.publish_manifest(text, text, jsonb, text, text, text),
              flagctl.begin_change(text, text, text, text, text, text, text) TO flagctl_operator;
    END IF;
EXCEPTION
    WHEN insufficient_privilege OR undefined_object THEN
        RAISE NOTICE 'grants on the catalogue not given (%)', SQLERRM;
END
$$;
