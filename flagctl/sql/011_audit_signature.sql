-- flagctl schema, version 11: signatures over the chain, by a key the database never sees.
--
-- A superuser can recompute every digest and seal. When operators give flagctl a key
-- (FLAGCTL_AUDIT_KEY or FLAGCTL_AUDIT_KEY_FILE), each change they make also records an
-- HMAC-SHA256 of the chain's head (position and hash) under that key. `audit verify` with
-- the key then finds any rewrite of the chain up to a signed position, which no one without
-- the key can sign again. key_id (the first 16 hex digits of sha256(key)) tells keys apart.
CREATE TABLE flagctl.audit_signature (
    pos       bigint      PRIMARY KEY,   -- the seal signed
    hash      text        NOT NULL,      -- its hash when signed
    mac       text        NOT NULL,      -- hex HMAC-SHA256(key, 'POS:HASH')
    key_id    text        NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now(),
    db_user   text        NOT NULL DEFAULT session_user
);

CREATE TRIGGER audit_signature_append_only BEFORE UPDATE OR DELETE ON flagctl.audit_signature
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_append_only();
CREATE TRIGGER audit_signature_no_truncate BEFORE TRUNCATE ON flagctl.audit_signature
    FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_append_only();

REVOKE ALL ON flagctl.audit_signature FROM PUBLIC;
DO $$
BEGIN
    IF to_regrole('flagctl_operator') IS NOT NULL THEN
        GRANT SELECT, INSERT ON flagctl.audit_signature TO flagctl_operator;
    END IF;
END
$$;
