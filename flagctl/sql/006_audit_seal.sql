-- flagctl schema, version 6: an audit trail that no writer can block.
--
-- Until version 5 every audit row was chained to the one before it as it was written,
-- under the row lock of flagctl.audit_head, held until the writer committed: one open
-- transaction that had changed any audited row (an application updating a bound table, a
-- long profile apply) blocked every kill in the database.
--
-- Now a row is appended without any shared lock: its seq comes from a sequence, and its
-- `hash` is the digest of its own contents. The hash chain is built afterwards over
-- committed rows ("sealing"): flagctl.audit_seal gets one row per audit row, in the order
-- they were sealed, each linking to the previous seal. Every transaction that writes audit
-- rows seals, at its commit (a deferred constraint trigger), whatever is committed and not
-- sealed yet, its own rows included — if no one else is sealing at that moment; a sealer
-- never waits for another. `flagctl audit verify` seals what is left, then checks every
-- row's digest and the whole chain.

ALTER TABLE flagctl.audit ALTER COLUMN prev_hash DROP NOT NULL;  -- new rows: the chain is in audit_seal
CREATE SEQUENCE flagctl.audit_seq_gen;
SELECT setval('flagctl.audit_seq_gen', coalesce((SELECT max(seq) FROM flagctl.audit), 0) + 1, false);

-- Rows written but not sealed yet (committed ones are sealed at the next commit or verify).
CREATE TABLE flagctl.audit_unsealed (
    seq bigint PRIMARY KEY
);

CREATE TABLE flagctl.audit_seal (
    pos       bigint      PRIMARY KEY,
    seq       bigint      NOT NULL UNIQUE,   -- the audit row sealed
    sealed_at timestamptz NOT NULL DEFAULT now(),
    prev_hash text        NOT NULL,          -- the previous seal's hash ('genesis' for the first)
    hash      text        NOT NULL           -- sha256(prev_hash || audit_digest(the row))
);

CREATE TRIGGER audit_seal_append_only BEFORE UPDATE OR DELETE ON flagctl.audit_seal
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_append_only();
CREATE TRIGGER audit_seal_no_truncate BEFORE TRUNCATE ON flagctl.audit_seal
    FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_append_only();

-- Fills seq, time, transaction, database user and the row's own digest; callers cannot
-- forge them. No lock is taken: writers never wait for each other here.
CREATE OR REPLACE FUNCTION flagctl.audit_chain() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    NEW.seq := nextval('flagctl.audit_seq_gen');
    NEW.at := now();
    NEW.txid := txid_current();
    NEW.db_user := session_user;
    NEW.prev_hash := NULL;
    NEW.hash := flagctl.audit_digest(NEW);
    INSERT INTO flagctl.audit_unsealed (seq) VALUES (NEW.seq);
    RETURN NEW;
END
$$;

-- Seal the committed (and this transaction's own) unsealed rows, in seq order, after the
-- last seal — at most ``max_rows`` of them (NULL: all). Returns how many rows it sealed, or
-- NULL when another session is sealing (``wait``: wait for it instead, within lock_timeout). Only in READ COMMITTED, where each
-- statement sees the seals committed before it; a REPEATABLE READ writer leaves its rows to
-- the next sealer rather than risk a conflict.
CREATE FUNCTION flagctl.audit_seal(wait boolean DEFAULT false, max_rows bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    last_pos  bigint;
    last_hash text;
    sealed    bigint := 0;
    r         record;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN NULL;
    END IF;
    IF wait THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('flagctl.audit_seal', 0));
    ELSIF NOT pg_try_advisory_xact_lock(hashtextextended('flagctl.audit_seal', 0)) THEN
        RETURN NULL;
    END IF;
    SELECT s.pos, s.hash INTO last_pos, last_hash FROM flagctl.audit_seal s ORDER BY s.pos DESC LIMIT 1;
    last_pos := coalesce(last_pos, 0);
    last_hash := coalesce(last_hash, 'genesis');
    FOR r IN
        SELECT u.seq, flagctl.audit_digest(a) AS digest
          FROM flagctl.audit_unsealed u JOIN flagctl.audit a ON a.seq = u.seq
         ORDER BY u.seq
         LIMIT max_rows
    LOOP
        last_pos := last_pos + 1;
        INSERT INTO flagctl.audit_seal (pos, seq, prev_hash, hash)
        VALUES (last_pos, r.seq, last_hash,
                encode(sha256(convert_to(last_hash || r.digest, 'UTF8')), 'hex'))
        RETURNING hash INTO last_hash;
        DELETE FROM flagctl.audit_unsealed WHERE seq = r.seq;
        sealed := sealed + 1;
    END LOOP;
    RETURN sealed;
END
$$;

-- At commit, once per transaction that wrote audit rows: seal (at most 1,000 rows, so a
-- kill never pays for a large backlog; audit verify seals the rest). Never fails the writer.
CREATE FUNCTION flagctl.audit_seal_at_commit() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    IF current_setting('flagctl.sealed', true) IS DISTINCT FROM 'true' THEN
        PERFORM set_config('flagctl.sealed', 'true', true);
        BEGIN
            PERFORM flagctl.audit_seal(false, 1000);
        EXCEPTION WHEN OTHERS THEN
            NULL;  -- the rows stay unsealed; the next sealer (or audit verify) seals them
        END;
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER audit_seal_at_commit AFTER INSERT ON flagctl.audit
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_seal_at_commit();

-- The rows written before this version were chained under audit_head; they are sealed now,
-- in seq order, so one chain covers the whole trail.
INSERT INTO flagctl.audit_unsealed (seq) SELECT seq FROM flagctl.audit;
SELECT flagctl.audit_seal(true);
DROP TABLE flagctl.audit_head;

REVOKE ALL ON flagctl.audit_unsealed, flagctl.audit_seal FROM PUBLIC;
REVOKE ALL ON FUNCTION flagctl.audit_seal(boolean, bigint) FROM PUBLIC;
