-- flagctl schema, version 16: applications learn of a change the moment it commits.
--
-- Every audit row of a system sends NOTIFY flagctl '{"system": …, "txid": …}'. PostgreSQL
-- delivers notifications only when the transaction commits (never for one that rolls back)
-- and folds identical payloads of one transaction into one: a kill of many flags is one
-- notification per system. The gate (flagctl.gate) reloads on it; the audit's seq is its
-- change sequence, read back with the state, so a notification it missed is detected by
-- the newest seq it has not seen.
CREATE FUNCTION flagctl.audit_notify() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    PERFORM pg_notify('flagctl', json_build_object('system', NEW.system, 'txid', NEW.txid)::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_notify AFTER INSERT ON flagctl.audit
    FOR EACH ROW WHEN (NEW.system IS NOT NULL) EXECUTE FUNCTION flagctl.audit_notify();

-- The newest change of a system, for the gate's check of missed notifications.
CREATE INDEX audit_system_seq_idx ON flagctl.audit (system, seq);
