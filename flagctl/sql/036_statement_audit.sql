-- flagctl schema, version 36: a statement's audit rows in one INSERT.
--
-- A global kill of a flag with 10,000 scoped overrides writes 10,001 rows of flag_state, and
-- each got its audit row from a row trigger: a function call and an INSERT per row, and per
-- audit row a further INSERT into audit_unsealed and a NOTIFY call. The contract stays (one
-- audit row per changed row, written by the database, in the order the rows were changed);
-- the work is done once per statement, with the statement's transition tables:
--   - flag_state: three AFTER … FOR EACH STATEMENT triggers (a trigger with transition tables
--     has one event) write every audit row of the statement in one INSERT … SELECT
--     (flagctl.audit_flag_rows);
--   - audit: an AFTER INSERT … FOR EACH STATEMENT trigger lists the statement's rows as
--     unsealed (flagctl.audit_appended) in place of audit_chain's INSERT per row, and
--     audit_notify fires once a statement, one NOTIFY per system. audit_chain (BEFORE each
--     row: seq, time, transaction, user, digest) stays a row trigger: no caller can forge them.
-- The functions' bodies are in routines/10_audit.sql; these stubs let the triggers exist.
CREATE FUNCTION flagctl.audit_flag_rows() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'flagctl.audit_flag_rows: the routines are not installed (flagctl db init)';
END
$$;
CREATE FUNCTION flagctl.audit_appended() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'flagctl.audit_appended: the routines are not installed (flagctl db init)';
END
$$;
REVOKE ALL ON FUNCTION flagctl.audit_flag_rows(), flagctl.audit_appended() FROM PUBLIC;

DROP TRIGGER flagctl_audit ON flagctl.flag_state;
CREATE TRIGGER flagctl_audit_insert AFTER INSERT ON flagctl.flag_state
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_flag_rows();
CREATE TRIGGER flagctl_audit_update AFTER UPDATE ON flagctl.flag_state
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_flag_rows();
CREATE TRIGGER flagctl_audit_delete AFTER DELETE ON flagctl.flag_state
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_flag_rows();

DROP TRIGGER audit_notify ON flagctl.audit;
CREATE TRIGGER audit_notify AFTER INSERT ON flagctl.audit
    REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_notify();
CREATE TRIGGER audit_appended AFTER INSERT ON flagctl.audit
    REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_appended();
