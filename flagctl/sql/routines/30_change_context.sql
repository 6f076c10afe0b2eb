-- Who may act as what, and the declared change (schemas 10, 14, 18, 19).
--
-- The current definition of each function; `flagctl db init` re-applies this folder after
-- the migrations whenever it changed (flagctl/sql/README.md). Grants stay in the migrations.
--
-- A change is declared by begin_change (SECURITY DEFINER) into flagctl.change_context, keyed
-- by the transaction; the audit and the guards believe a declaration only from there.

-- Whether the session's user is trusted: a member of the schema's owner, of
-- flagctl_operator or of a writing role.
CREATE OR REPLACE FUNCTION flagctl.trusted_session() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER')
        OR EXISTS (SELECT 1 FROM unnest(ARRAY['flagctl_operator', 'flagctl_release', 'flagctl_security',
                                              'flagctl_ops', 'flagctl_admin']) AS r(name)
                    WHERE to_regrole(r.name) IS NOT NULL AND pg_has_role(session_user, to_regrole(r.name), 'MEMBER'))
$$;

-- The flagctl role an action needs (flagctl.store.roles.role_for says the same).
CREATE OR REPLACE FUNCTION flagctl.role_for(p_action text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT CASE
        WHEN base IN ('kill', 'release') THEN 'flagctl_security'
        WHEN base LIKE 'freeze%' THEN 'flagctl_ops'
        WHEN base LIKE 'tokens.%' THEN 'flagctl_admin'
        ELSE 'flagctl_release' END
      FROM (SELECT regexp_replace(regexp_replace(p_action, '\.refused$', ''), '^drill\.', '') AS base) AS a
$$;

-- Whether the session's user may act as this action: the schema's owner, flagctl_operator
-- and flagctl_admin may do everything; a review or a notification delivery (notify.*) is for any
-- writing role; else the action's role.
CREATE OR REPLACE FUNCTION flagctl.may(p_action text) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER')
        OR EXISTS (SELECT 1
                     FROM unnest(CASE WHEN p_action IN ('review', 'review.refused') OR p_action LIKE 'notify.%'
                                      THEN ARRAY['flagctl_release', 'flagctl_security', 'flagctl_ops']
                                      ELSE ARRAY[flagctl.role_for(p_action)] END
                                 || ARRAY['flagctl_operator', 'flagctl_admin']) AS r(name)
                    WHERE to_regrole(r.name) IS NOT NULL
                      AND pg_has_role(session_user, to_regrole(r.name), 'MEMBER'))
$$;

-- Whether the session's user holds any flagctl role.
CREATE OR REPLACE FUNCTION flagctl.flagctl_member() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT EXISTS (SELECT 1 FROM unnest(ARRAY['flagctl_viewer', 'flagctl_release', 'flagctl_security',
                                              'flagctl_ops', 'flagctl_admin', 'flagctl_operator']) AS r(name)
                    WHERE to_regrole(r.name) IS NOT NULL AND pg_has_role(session_user, to_regrole(r.name), 'MEMBER'))
$$;

-- Declare the change this transaction makes: who acts, as what, why. Refused (insufficient
-- privilege) unless the session's user holds the action's role; `approve` and
-- `manifest.publish` are recorded only by their own functions. Transaction-local: the
-- declaration, in flagctl.change_context (which no flagctl role can write), ends with the
-- transaction. Given the caller's manifest text, the answer also says which catalogue
-- version is published and whether that text is it (NULL: nothing published, or no text).
CREATE OR REPLACE FUNCTION flagctl.begin_change(p_action text, p_actor text, p_reason text, p_command text,
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

-- The change declared for this transaction is forced (it overrode a rule): the audit says so,
-- and a forced change needs a post-action review. Only ever adds scrutiny.
CREATE OR REPLACE FUNCTION flagctl.mark_forced() RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    UPDATE flagctl.change_context SET forced = true WHERE txid = txid_current();
$$;

-- The declaration of this transaction, if flagctl.begin_change made one.
CREATE OR REPLACE FUNCTION flagctl.current_change() RETURNS flagctl.change_context
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    SELECT * FROM flagctl.change_context WHERE txid = txid_current_if_assigned()
$$;
