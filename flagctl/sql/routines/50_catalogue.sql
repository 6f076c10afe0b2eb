-- The published manifest (schema 19).
--
-- The current definition of each function; `flagctl db init` re-applies this folder after
-- the migrations whenever it changed (flagctl/sql/README.md). Grants stay in the migrations.

-- The published catalogue of a system: its newest version.
CREATE OR REPLACE FUNCTION flagctl.published(p_system text) RETURNS flagctl.catalogue
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    SELECT * FROM flagctl.catalogue c WHERE c.system = p_system ORDER BY c.version DESC LIMIT 1
$$;

-- Publish a manifest (release and admin members, the owner, flagctl_operator), audited as
-- manifest.publish. The text's SHA-256 is computed here, not taken from the caller.
-- Publishing the text already published is nothing to do (returns its version, new = false).
CREATE OR REPLACE FUNCTION flagctl.publish_manifest(p_system text, p_source text, p_catalogue jsonb, p_actor text,
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
