-- flagctl schema, version 15: four eyes, enforced by PostgreSQL.
--
-- requests: a change the manifest's `approvals:` says needs a second person waits here
-- until another database user approves it (`flagctl approve ID`), which applies it — checked
-- again at that moment — in the same transaction that marks the request approved.
-- reviews: every emergency action (a kill, a forced change, locks broken) is acknowledged
-- after the fact by someone other than the database user who did it.
-- Both rules are in triggers, so they hold in psql as in flagctl.

CREATE TABLE flagctl.requests (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system          text        NOT NULL,
    action          text        NOT NULL,       -- as the audit will record it: stage.set, set
    summary         text        NOT NULL,
    spec            jsonb       NOT NULL,       -- how to build the change again
    why             text        NOT NULL,       -- why it needs approval
    reason          text        NOT NULL,
    requested_by    text        NOT NULL DEFAULT session_user,
    requested_actor text,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved')),
    approved_by     text,
    approved_actor  text,
    approved_at     timestamptz,
    txid            bigint                      -- the transaction that applied it
);
CREATE INDEX requests_pending ON flagctl.requests (system) WHERE status = 'pending';

CREATE FUNCTION flagctl.guard_request() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.requested_by := session_user;
        NEW.requested_at := now();
        NEW.status := 'pending';
        NEW.approved_by := NULL;
        RETURN NEW;
    END IF;
    IF OLD.status <> 'pending' OR NEW.status <> 'approved' OR NEW.spec IS DISTINCT FROM OLD.spec
       OR NEW.requested_by IS DISTINCT FROM OLD.requested_by THEN
        RAISE EXCEPTION 'flagctl: request % is %; only a pending request can be approved, as it is', OLD.id, OLD.status
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.expires_at <= now() THEN
        RAISE EXCEPTION 'flagctl: request % expired at %', OLD.id, OLD.expires_at
            USING ERRCODE = 'insufficient_privilege', HINT = 'ask for the change again';
    END IF;
    IF session_user = OLD.requested_by THEN
        RAISE EXCEPTION 'flagctl: % requested change % and cannot approve it too (four eyes)', session_user, OLD.id
            USING ERRCODE = 'insufficient_privilege', HINT = 'another database user approves it';
    END IF;
    NEW.approved_by := session_user;
    NEW.approved_at := now();
    NEW.txid := txid_current();
    RETURN NEW;
END
$$;
CREATE TRIGGER flagctl_guard BEFORE INSERT OR UPDATE ON flagctl.requests
    FOR EACH ROW EXECUTE FUNCTION flagctl.guard_request();
CREATE TRIGGER flagctl_no_delete BEFORE DELETE OR TRUNCATE ON flagctl.requests
    FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_append_only();
CREATE TRIGGER flagctl_audit AFTER INSERT OR UPDATE ON flagctl.requests
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();

CREATE TABLE flagctl.reviews (
    audit_seq   bigint      PRIMARY KEY,       -- the first audit row of the emergency action
    system      text,
    reviewed_by text        NOT NULL DEFAULT session_user,
    actor       text,
    note        text        NOT NULL CHECK (length(note) BETWEEN 1 AND 2000),
    reviewed_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION flagctl.guard_review() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    by_user text;
BEGIN
    SELECT a.db_user INTO by_user FROM flagctl.audit a WHERE a.seq = NEW.audit_seq;
    IF by_user IS NULL THEN
        RAISE EXCEPTION 'flagctl: there is no audit row %', NEW.audit_seq USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF by_user = session_user THEN
        RAISE EXCEPTION 'flagctl: % did audit row % and cannot review it too', session_user, NEW.audit_seq
            USING ERRCODE = 'insufficient_privilege', HINT = 'someone other than the actor reviews it';
    END IF;
    NEW.reviewed_by := session_user;
    NEW.reviewed_at := now();
    RETURN NEW;
END
$$;
CREATE TRIGGER flagctl_guard BEFORE INSERT ON flagctl.reviews
    FOR EACH ROW EXECUTE FUNCTION flagctl.guard_review();
CREATE TRIGGER flagctl_append_only BEFORE UPDATE OR DELETE ON flagctl.reviews
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_append_only();
CREATE TRIGGER flagctl_audit AFTER INSERT ON flagctl.reviews
    FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row();

REVOKE ALL ON flagctl.requests, flagctl.reviews FROM PUBLIC;
DO $$
BEGIN
    IF to_regrole('flagctl_viewer') IS NOT NULL THEN
        GRANT SELECT ON flagctl.requests, flagctl.reviews TO flagctl_viewer;
        GRANT INSERT, UPDATE ON flagctl.requests TO flagctl_release;
        GRANT INSERT ON flagctl.reviews TO flagctl_release, flagctl_security, flagctl_ops;
    END IF;
    IF to_regrole('flagctl_operator') IS NOT NULL THEN
        GRANT SELECT, INSERT, UPDATE ON flagctl.requests, flagctl.reviews TO flagctl_operator;
    END IF;
EXCEPTION
    WHEN insufficient_privilege OR undefined_object THEN
        RAISE NOTICE 'grants on requests and reviews not given (%)', SQLERRM;
END
$$;
