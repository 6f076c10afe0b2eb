-- Four eyes: requests, approvals and post-action reviews (schemas 15, 21).
--
-- The current definition of each function; `flagctl db init` re-applies this folder after
-- the migrations whenever it changed (flagctl/sql/README.md). Grants stay in the migrations.

-- Ask for a change a second person must approve. The summary is derived from the exact
-- changes planned (flag, scope, before → after), the expiry is the published approvals'
-- `expire` (24 hours without one), the requester is the session's user (guard_request).
CREATE OR REPLACE FUNCTION flagctl.create_request(p_system text, p_action text, p_spec jsonb, p_why text, p_reason text,
                                       p_actor text, p_changes jsonb)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    rules   jsonb := (flagctl.published(p_system)).catalogue->'approvals';
    summary text;
    made    bigint;
BEGIN
    IF NOT flagctl.may(p_action) THEN
        RAISE EXCEPTION 'flagctl: % may not ask for %: it needs the role %', session_user, p_action,
            flagctl.role_for(p_action)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_changes IS NULL OR jsonb_typeof(p_changes) <> 'array' OR jsonb_array_length(p_changes) = 0 THEN
        RAISE EXCEPTION 'flagctl: a request holds the exact changes it asks for' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(format('%s at %s: %s → %s', c->>'flag', c->>'scope',
                             coalesce(c->'before', 'null'::jsonb), coalesce(c->'after', 'null'::jsonb)), '; '
                      ORDER BY c->>'flag', c->>'scope')
      INTO summary FROM jsonb_array_elements(p_changes) AS c;
    -- The table's own guard fills requested_by, requested_at and the status.
    INSERT INTO flagctl.requests (system, action, summary, spec, why, reason, requested_actor, expires_at, changes)
    VALUES (p_system, p_action, left(p_action || ': ' || summary, 2000), p_spec, p_why, p_reason, nullif(p_actor, ''),
            now() + make_interval(secs => coalesce((rules->>'expire_seconds')::double precision, 86400)), p_changes)
    RETURNING id INTO made;
    RETURN made;
END
$$;

-- Approve a pending request, by another database user (guard_request refuses the requester,
-- an expired and a decided request); the caller then applies it in the same transaction.
CREATE OR REPLACE FUNCTION flagctl.approve_request(p_id bigint, p_system text, p_actor text) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, flagctl
AS $$
DECLARE
    req flagctl.requests;
BEGIN
    SELECT * INTO req FROM flagctl.requests r WHERE r.id = p_id AND r.system = p_system FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'flagctl: no request % for system %', p_id, p_system USING ERRCODE = 'no_data_found';
    END IF;
    IF NOT flagctl.may(req.action) THEN
        RAISE EXCEPTION 'flagctl: % may not approve %: it needs the role %', session_user, req.action,
            flagctl.role_for(req.action)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- The guard on the table refuses the requester, an expired and a decided request.
    UPDATE flagctl.requests SET status = 'approved', approved_actor = nullif(p_actor, '') WHERE id = p_id;
    RETURN p_id;
END
$$;

-- BEFORE INSERT or UPDATE of flagctl.requests: only create_request and approve_request
-- (running as the owner) write requests; an approval is by another user, of a pending,
-- unexpired request left as it was asked for.
CREATE OR REPLACE FUNCTION flagctl.guard_request() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, flagctl
AS $$
BEGIN
    -- current_user is the schema's owner inside flagctl's SECURITY DEFINER functions (or for the owner itself)
    IF NOT pg_has_role(current_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'flagctl'), 'MEMBER') THEN
        RAISE EXCEPTION 'flagctl: requests are made by flagctl.create_request and approved by flagctl.approve_request'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.requested_by := session_user;
        NEW.requested_at := now();
        NEW.status := 'pending';
        NEW.approved_by := NULL;
        RETURN NEW;
    END IF;
    IF OLD.status <> 'pending' OR NEW.status <> 'approved' OR NEW.spec IS DISTINCT FROM OLD.spec
       OR NEW.changes IS DISTINCT FROM OLD.changes OR NEW.requested_by IS DISTINCT FROM OLD.requested_by THEN
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

-- Two stored values are the same value of a flag of this type (a bound rollout may lack
-- the internal column: it is false).
CREATE OR REPLACE FUNCTION flagctl.same_value(p_type text, a jsonb, b jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog
AS $$
    SELECT CASE
        WHEN nullif(a, 'null'::jsonb) IS NULL OR nullif(b, 'null'::jsonb) IS NULL
            THEN nullif(a, 'null'::jsonb) IS NULL AND nullif(b, 'null'::jsonb) IS NULL
        WHEN p_type = 'rollout' THEN
            (a->>'enabled')::boolean = (b->>'enabled')::boolean AND (a->>'percent')::int = (b->>'percent')::int
            AND coalesce((a->>'internal')::boolean, false) = coalesce((b->>'internal')::boolean, false)
        ELSE a = b
    END
$$;

-- The guard's four eyes: a request approved in this transaction holds this very change (the
-- same flag and scope, from the value it was planned on, to the same value).
CREATE OR REPLACE FUNCTION flagctl.approved_here(p_system text, p_flag text, p_scope text, p_type text,
                                                 p_before jsonb, p_after jsonb)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, flagctl
AS $$
    SELECT EXISTS (
        SELECT 1 FROM flagctl.requests r, jsonb_array_elements(r.changes) AS c
         WHERE r.txid = txid_current_if_assigned() AND r.status = 'approved' AND r.system = p_system
           AND c->>'flag' = p_flag AND c->>'scope' = p_scope
           AND flagctl.same_value(p_type, c->'before', p_before) AND flagctl.same_value(p_type, c->'after', p_after))
$$;

-- BEFORE INSERT of flagctl.reviews: an emergency action is reviewed by someone other than
-- the database user who did it; reviewer and time are the database's.
CREATE OR REPLACE FUNCTION flagctl.guard_review() RETURNS trigger
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
