-- flagctl schema, version 10: attribution comes from the database session.
--
-- flagctl declares who acts and why with set_config('flagctl.actor' | 'flagctl.action' |
-- 'flagctl.reason' | 'flagctl.command' | 'flagctl.forced'). Any session can set those, so
-- until now an application role could write a bound table "as alice" and "as a kill".
-- Now the declaration is believed only from a trusted session: a member of the schema's
-- owner (the role that ran `flagctl db init`) or of the role flagctl_operator. From any
-- other session the row records what the trigger knows (db_user, sql.insert / update /
-- delete / truncate) and keeps what the session claimed in `claimed`, for the record.

ALTER TABLE flagctl.audit ADD COLUMN claimed jsonb;

-- The role flagctl's operators are granted (CREATE ROLE needs CREATEROLE: where db init
-- runs without it, a DBA creates the role and runs db init again to grant it).
DO $$
BEGIN
    IF to_regrole('flagctl_operator') IS NULL THEN
        CREATE ROLE flagctl_operator NOLOGIN;
    END IF;
EXCEPTION
    WHEN insufficient_privilege OR duplicate_object OR unique_violation THEN
        RAISE NOTICE 'role flagctl_operator not created (%): only the schema owner is trusted', SQLERRM;
END
$$;

CREATE FUNCTION flagctl.trusted_session() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
    SELECT pg_has_role(session_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER')
        OR coalesce(pg_has_role(session_user, to_regrole('flagctl_operator'), 'MEMBER'), false)
$$;

-- The digest covers `claimed` too (rows without a claim keep their old digest).
CREATE OR REPLACE FUNCTION flagctl.audit_digest(a flagctl.audit) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT encode(sha256(convert_to((jsonb_build_array(
        a.seq, a.prev_hash, extract(epoch FROM a.at)::text, a.txid, a.db_user, a.actor,
        a.action, a.system, a.flag, a.scope, a.target, a.key, a.before, a.after,
        a.reason, a.command, a.forced)
        || CASE WHEN a.claimed IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(a.claimed) END)::text,
        'UTF8')), 'hex')
$$;

CREATE OR REPLACE FUNCTION flagctl.audit_chain() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    declared boolean;
BEGIN
    NEW.seq := nextval('flagctl.audit_seq_gen');
    NEW.at := now();
    NEW.txid := txid_current();
    NEW.db_user := session_user;
    NEW.prev_hash := NULL;
    NEW.claimed := NULL;
    declared := NEW.actor IS NOT NULL OR NEW.reason IS NOT NULL OR NEW.command IS NOT NULL
                OR NEW.forced OR NEW.action NOT LIKE 'sql.%';
    IF declared AND NOT flagctl.trusted_session() THEN
        NEW.claimed := jsonb_strip_nulls(jsonb_build_object(
            'actor', NEW.actor, 'reason', NEW.reason, 'command', NEW.command,
            'action', CASE WHEN NEW.action NOT LIKE 'sql.%' THEN NEW.action END,
            'forced', CASE WHEN NEW.forced THEN true END));
        NEW.actor := NULL;
        NEW.reason := NULL;
        NEW.command := NULL;
        NEW.forced := false;
        IF NEW.action NOT LIKE 'sql.%' THEN  -- what the row images say happened
            NEW.action := CASE
                WHEN NEW.before IS NULL AND NEW.after IS NOT NULL THEN 'sql.insert'
                WHEN NEW.before IS NOT NULL AND NEW.after IS NULL THEN 'sql.delete'
                WHEN NEW.before IS NOT NULL THEN 'sql.update'
                ELSE 'sql.truncate' END;
        END IF;
    END IF;
    NEW.hash := flagctl.audit_digest(NEW);
    INSERT INTO flagctl.audit_unsealed (seq) VALUES (NEW.seq);
    RETURN NEW;
END
$$;

-- What a flagctl operator needs, and no more: read the configuration, change flags, kill
-- switches, exemptions and the rollback state, append audit events, seal the trail.
DO $$
BEGIN
    IF to_regrole('flagctl_operator') IS NOT NULL THEN
        GRANT USAGE ON SCHEMA flagctl TO flagctl_operator;
        GRANT SELECT ON flagctl.schema_migrations, flagctl.binding, flagctl.audit, flagctl.audit_seal,
                        flagctl.audit_unsealed TO flagctl_operator;
        GRANT SELECT, INSERT, UPDATE, DELETE ON flagctl.flag_state, flagctl.engaged_switch,
              flagctl.exemption, flagctl.safe_point, flagctl.proof_baseline, flagctl.rollback_state
              TO flagctl_operator;
        GRANT EXECUTE ON FUNCTION flagctl.audit_event(text, text, text, text, jsonb),
              flagctl.audit_seal(boolean, bigint) TO flagctl_operator;
    END IF;
END
$$;
