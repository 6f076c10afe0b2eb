-- flagctl schema, version 12: every change carries the id of the request that made it.
--
-- flagctl declares a request id per command (`--request-id`, or a fresh UUID), like the
-- actor. It ties together every row one command wrote, and makes a retried command
-- idempotent: a script that re-sends `stage next --request-id deploy-841` after losing the
-- answer finds the request already applied instead of moving the ladder twice. Believed
-- from trusted sessions only, like the other declarations (else kept in `claimed`).
ALTER TABLE flagctl.audit ADD COLUMN request_id text;
CREATE INDEX audit_request_id ON flagctl.audit (request_id) WHERE request_id IS NOT NULL;

CREATE OR REPLACE FUNCTION flagctl.audit_digest(a flagctl.audit) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT encode(sha256(convert_to((jsonb_build_array(
        a.seq, a.prev_hash, extract(epoch FROM a.at)::text, a.txid, a.db_user, a.actor,
        a.action, a.system, a.flag, a.scope, a.target, a.key, a.before, a.after,
        a.reason, a.command, a.forced)
        || CASE WHEN a.claimed IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(a.claimed) END
        || CASE WHEN a.request_id IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(a.request_id) END)::text,
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
    NEW.request_id := nullif(current_setting('flagctl.request_id', true), '');
    declared := NEW.actor IS NOT NULL OR NEW.reason IS NOT NULL OR NEW.command IS NOT NULL
                OR NEW.forced OR NEW.action NOT LIKE 'sql.%' OR NEW.request_id IS NOT NULL;
    IF declared AND NOT flagctl.trusted_session() THEN
        NEW.claimed := jsonb_strip_nulls(jsonb_build_object(
            'actor', NEW.actor, 'reason', NEW.reason, 'command', NEW.command,
            'action', CASE WHEN NEW.action NOT LIKE 'sql.%' THEN NEW.action END,
            'forced', CASE WHEN NEW.forced THEN true END, 'request_id', NEW.request_id));
        NEW.actor := NULL;
        NEW.reason := NULL;
        NEW.command := NULL;
        NEW.forced := false;
        NEW.request_id := NULL;
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
