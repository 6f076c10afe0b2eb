-- flagctl schema, version 35: flagctl serve (the relay).
--
-- Applications that are not Python, or too many to each hold a database connection, read
-- flagctl through `flagctl serve`: one process holding one connection per system, answering
-- OFREP over HTTP and pushing each change to its subscribers.
--
-- * flagctl.token: the bearer tokens a relay accepts, one per application and system. Only
--   a hash is stored (sha256 of a 256-bit random secret, shown once at creation); created
--   and revoked only through flagctl's functions (routines/72_serve.sql) in a declared
--   tokens.* change, which needs flagctl_admin. A token reads; nothing a relay serves writes.
-- * flagctl.clients.relay: a client behind a relay is a row of its own, registered and
--   acknowledged by the relay's backend, pointing at the relay's row. Its fetch at or past a
--   change's sequence is its acknowledgement, so `kill --wait-ack` waits for it and names it
--   when it stalls; `flagctl clients` lists it under its relay.
CREATE TABLE flagctl.token (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system     text        NOT NULL,
    name       text        NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),  -- the application
    hash       text        NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$'),        -- sha256 of the secret, hex
    created_by text        NOT NULL,
    db_user    text        NOT NULL DEFAULT session_user,
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    revoked_by text
);
-- One live token per application of a system (a revoked one stays, for the trail).
CREATE UNIQUE INDEX token_live ON flagctl.token (system, name) WHERE revoked_at IS NULL;

CREATE TRIGGER flagctl_audit AFTER INSERT OR UPDATE OR DELETE ON flagctl.token
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();

ALTER TABLE flagctl.clients ADD COLUMN relay bigint REFERENCES flagctl.clients (id) ON DELETE CASCADE;
CREATE INDEX clients_by_relay ON flagctl.clients (relay) WHERE relay IS NOT NULL;

REVOKE ALL ON flagctl.token FROM PUBLIC;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['flagctl_viewer', 'flagctl_operator'] LOOP
        IF to_regrole(r) IS NOT NULL THEN
            -- A relay runs as a viewer and checks tokens against their hashes.
            EXECUTE format('GRANT SELECT ON flagctl.token TO %I', r);
        END IF;
    END LOOP;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'the token table''s grants not given (%)', SQLERRM;
END
$$;

-- kill --wait-ack names the relay a late client reads through: wait_acks returns one more
-- column (routines/70_clients.sql creates it).
DROP FUNCTION flagctl.wait_acks(text, bigint, interval, interval);
