-- flagctl schema, version 1.
-- Applied by `flagctl db init` inside one transaction, under an advisory lock.

CREATE SCHEMA IF NOT EXISTS flagctl;

-- Values of flags stored in flagctl's own table (flags bound to an application table
-- are never copied here). One row per (system, flag, scope).
CREATE TABLE flagctl.flag_state (
    system     text        NOT NULL,
    flag       text        NOT NULL,
    scope      text        NOT NULL DEFAULT 'global',
    value      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system, flag, scope),
    CONSTRAINT flag_state_scope_form CHECK (scope = 'global' OR scope ~ '^[a-z][a-z0-9_-]*:.+$')
);

-- Flags bound to an existing application table: where their values live.
CREATE TABLE flagctl.binding (
    system        text        NOT NULL,
    flag          text        NOT NULL,
    table_schema  text        NOT NULL,
    table_name    text        NOT NULL,
    key           jsonb       NOT NULL,
    columns       jsonb       NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (system, flag)
);

-- Kill switches currently engaged, with the exact values they replaced.
-- seq orders engagements, so releasing one switch never undoes another still engaged.
CREATE TABLE flagctl.engaged_switch (
    system       text        NOT NULL,
    switch       text        NOT NULL,
    scope        text        NOT NULL DEFAULT 'global',
    level        integer     NOT NULL,
    seq          bigint      GENERATED ALWAYS AS IDENTITY,
    engaged_at   timestamptz NOT NULL DEFAULT now(),
    actor        text,
    db_user      text        NOT NULL DEFAULT session_user,
    reason       text        NOT NULL,
    prior        jsonb       NOT NULL,  -- {flag: value before the kill}
    applied      jsonb       NOT NULL,  -- {flag: value the kill set}
    PRIMARY KEY (system, switch, scope)
);

-- The audit trail: one row per change, append-only, hash-chained.
-- `at` is the transaction time, so every row of one change shares it.
CREATE TABLE flagctl.audit (
    seq       bigint      PRIMARY KEY,
    at        timestamptz NOT NULL,
    txid      bigint      NOT NULL,
    db_user   text        NOT NULL,
    actor     text,
    action    text        NOT NULL,
    system    text,
    flag      text,
    scope     text,
    target    text        NOT NULL,  -- the table (or switch) the row is about
    key       jsonb,
    before    jsonb,
    after     jsonb,
    reason    text,
    command   text,
    forced    boolean     NOT NULL DEFAULT false,
    prev_hash text        NOT NULL,
    hash      text        NOT NULL
);
CREATE INDEX audit_flag_idx ON flagctl.audit (system, flag, seq);
CREATE INDEX audit_at_idx ON flagctl.audit (at);

-- The head of the chain. Locking this one row serializes audit writers, so the chain
-- never forks; a REPEATABLE READ writer that raced gets a serialization failure instead.
CREATE TABLE flagctl.audit_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq  bigint  NOT NULL,
    hash text    NOT NULL
);
INSERT INTO flagctl.audit_head (seq, hash) VALUES (0, 'genesis');

-- The digest of one audit row: every column but `hash`, in a fixed order and format
-- (epoch seconds, not a TimeZone-dependent timestamp rendering).
CREATE FUNCTION flagctl.audit_digest(a flagctl.audit) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT encode(sha256(convert_to(jsonb_build_array(
        a.seq, a.prev_hash, extract(epoch FROM a.at)::text, a.txid, a.db_user, a.actor,
        a.action, a.system, a.flag, a.scope, a.target, a.key, a.before, a.after,
        a.reason, a.command, a.forced)::text, 'UTF8')), 'hex')
$$;

-- Fills seq, time, transaction, database user and the chain; callers cannot forge them.
CREATE FUNCTION flagctl.audit_chain() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    head flagctl.audit_head;
BEGIN
    SELECT * INTO head FROM flagctl.audit_head FOR UPDATE;
    NEW.seq := head.seq + 1;
    NEW.at := now();
    NEW.txid := txid_current();
    NEW.db_user := session_user;
    NEW.prev_hash := head.hash;
    NEW.hash := flagctl.audit_digest(NEW);
    UPDATE flagctl.audit_head SET seq = NEW.seq, hash = NEW.hash;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_chain BEFORE INSERT ON flagctl.audit
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_chain();

CREATE FUNCTION flagctl.audit_append_only() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'flagctl.audit is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'audit rows are never changed or removed; record a new change instead';
END
$$;

CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON flagctl.audit
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON flagctl.audit
    FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_append_only();

-- Writes one audit row per changed row of flag_state, engaged_switch and every bound
-- table, in the same transaction. flagctl declares actor, action, reason, command and
-- forced with set_config(..., true); a plain SQL change has none and is recorded as
-- sql.insert / sql.update / sql.delete with its session_user.
-- For bound tables TG_ARGV holds the key columns; the flag comes from flagctl.binding.
CREATE FUNCTION flagctl.audit_row() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
    any_row jsonb := coalesce(new_row, old_row);
    v_system text;
    v_flag   text;
    v_scope  text;
    v_key    jsonb;
    v_target text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
BEGIN
    IF TG_OP = 'UPDATE' AND old_row = new_row THEN
        RETURN NULL;  -- nothing changed: nothing to record
    END IF;
    IF TG_TABLE_SCHEMA = 'flagctl' AND TG_TABLE_NAME = 'flag_state' THEN
        v_system := any_row->>'system';
        v_flag := any_row->>'flag';
        v_scope := any_row->>'scope';
        old_row := old_row->'value';
        new_row := new_row->'value';
    ELSIF TG_TABLE_SCHEMA = 'flagctl' AND TG_TABLE_NAME = 'engaged_switch' THEN
        v_system := any_row->>'system';
        v_scope := any_row->>'scope';
        v_target := 'kill_switch:' || (any_row->>'switch');
    ELSE
        SELECT jsonb_object_agg(k, any_row->k) INTO v_key FROM unnest(TG_ARGV) AS k;
        SELECT b.system, b.flag INTO v_system, v_flag
          FROM flagctl.binding b
         WHERE b.table_schema = TG_TABLE_SCHEMA AND b.table_name = TG_TABLE_NAME
           AND any_row @> b.key
         ORDER BY b.system, b.flag
         LIMIT 1;
        v_scope := 'global';
    END IF;
    INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, key,
                               before, after, reason, command, forced)
    VALUES (nullif(current_setting('flagctl.actor', true), ''),
            coalesce(nullif(current_setting('flagctl.action', true), ''), 'sql.' || lower(TG_OP)),
            v_system, v_flag, v_scope, v_target, v_key, old_row, new_row,
            nullif(current_setting('flagctl.reason', true), ''),
            nullif(current_setting('flagctl.command', true), ''),
            coalesce(nullif(current_setting('flagctl.forced', true), '')::boolean, false));
    RETURN NULL;
END
$$;

CREATE TRIGGER flagctl_audit AFTER INSERT OR UPDATE OR DELETE ON flagctl.flag_state
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();
CREATE TRIGGER flagctl_audit AFTER INSERT OR UPDATE OR DELETE ON flagctl.engaged_switch
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();

-- Events that change no row but belong in the trail (e.g. a refused promotion).
CREATE FUNCTION flagctl.audit_event(p_action text, p_system text, p_flag text, p_target text,
                                    p_detail jsonb)
RETURNS void
LANGUAGE sql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
    INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, after, reason, command)
    VALUES (nullif(current_setting('flagctl.actor', true), ''), p_action, p_system, p_flag,
            'global', p_target, p_detail,
            nullif(current_setting('flagctl.reason', true), ''),
            nullif(current_setting('flagctl.command', true), ''));
$$;

REVOKE ALL ON flagctl.audit, flagctl.audit_head FROM PUBLIC;
