-- flagctl schema, version 7: only flagctl's own roles may write an audit event.
--
-- PostgreSQL lets PUBLIC execute a new function, so any role with USAGE on the schema could
-- call flagctl.audit_event(...) and append rows that look like flagctl's (with a valid
-- digest and seal). Now only the schema's owner (the role that ran `flagctl db init`) and
-- roles it grants EXECUTE to may; changes themselves are still recorded for everyone by
-- the triggers.
REVOKE EXECUTE ON FUNCTION flagctl.audit_event(text, text, text, text, jsonb) FROM PUBLIC;
